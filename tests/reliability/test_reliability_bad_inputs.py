"""Every mistake a user can make gets one clear error that names the field and the fix, and nothing is written.

Connection mistakes go through ``graphcert check CONN_ID`` (an Airflow connection defined the
usual way, AIRFLOW_CONN_* JSON): exit 1, one line on stderr, no traceback, and a local mistake
never reaches Entra ID. Job mistakes go through the operators, as a task runs them (templates
rendered by Airflow first): a GraphCertError naming the argument, raised without a chain of
internal exceptions, and no file written locally or in SharePoint.
"""

from __future__ import annotations

import base64
import contextlib
import os
import resource
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import ConnectionFactory
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from reliability_kit import LIBRARY_URL, SITE_URL, content_for, local_files, partial_files, tally

from airflow_provider_graphcert.auth.assertion import mint_assertion
from airflow_provider_graphcert.auth.certificates import load_client_certificate
from airflow_provider_graphcert.auth.selfsigned import SelfSignedCertificate, create_self_signed
from airflow_provider_graphcert.cli import main
from airflow_provider_graphcert.errors import GraphCertError
from airflow_provider_graphcert.operators.sharepoint import (
    SharePointDownloadOperator,
    SharePointListExportOperator,
    SharePointUploadOperator,
)
from airflow_provider_graphcert.testing.emulator.graph_state import Drive, Site
from airflow_provider_graphcert.testing.emulator.server import GraphEmulator
from airflow_provider_graphcert.testing.emulator.state import App, Tenant

PASSWORD = "correct-horse-battery-staple"
GUID = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"


# -- certificate material for every way it can be wrong ------------------------------------------


def _ec_pem() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ec")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return key_pem + certificate.public_bytes(serialization.Encoding.PEM)


@pytest.fixture(scope="module")
def material(
    tmp_path_factory: pytest.TempPathFactory, rsa_cert: SelfSignedCertificate, other_rsa_cert: SelfSignedCertificate
) -> dict[str, str]:
    """Paths (and inline values) of good and broken credentials."""
    root = tmp_path_factory.mktemp("material")
    now = datetime.now(UTC)
    files: dict[str, bytes] = {
        "good.pem": rsa_cert.key_pem() + rsa_cert.cert_pem(),
        "cert-only.pem": rsa_cert.cert_pem(),
        "key-only.pem": rsa_cert.key_pem(),
        "mismatch.pem": other_rsa_cert.key_pem() + rsa_cert.cert_pem(),
        "encrypted.pem": rsa_cert.key_pem(PASSWORD) + rsa_cert.cert_pem(),
        "app.pfx": rsa_cert.pfx(PASSWORD),
        "ec.pem": _ec_pem(),
        "small.pem": _pem(create_self_signed("CN=small", key_size=1024)),
        "expired.pem": _pem(create_self_signed("CN=old", days=30, not_before=now - timedelta(days=60))),
        "future.pem": _pem(create_self_signed("CN=future", not_before=now + timedelta(days=7))),
        "empty-assertion.jwt": b"\n",
    }
    for name, data in files.items():
        (root / name).write_bytes(data)
    (root / "a-directory").mkdir()
    signer = load_client_certificate(files["good.pem"])
    stale = mint_assertion(signer, client_id=GUID, audience="https://login/x", now=now.timestamp() - 3600)
    paths = {name: str(root / name) for name in [*files, "a-directory"]}
    return {**paths, "missing": str(root / "nope.pem"), "stale-assertion": stale}


def _pem(cert: SelfSignedCertificate) -> bytes:
    return cert.key_pem() + cert.cert_pem()


# -- connection mistakes, through `graphcert check` -----------------------------------------------


@dataclass(frozen=True)
class ConnectionMistake:
    """One wrong connection: how to build it and what the one line on stderr must say."""

    fields: Callable[[dict[str, str]], dict[str, Any]]
    says: tuple[str, ...]
    login: str | None = "app"  # "app" means the registered app's client id
    password: str | None = None
    reaches_entra: bool = False


def _cert(name: str, **more: Any) -> Callable[[dict[str, str]], dict[str, Any]]:
    return lambda m: {"certificate_path": m[name], **more}


CONNECTION_MISTAKES = {
    "missing tenant": ConnectionMistake(lambda m: {"certificate_path": m["good.pem"], "tenant_id": ""}, ("tenant_id",)),
    "malformed tenant GUID": ConnectionMistake(
        lambda m: {"certificate_path": m["good.pem"], "tenant_id": "aaaa-bbbb"}, ("tenant_id 'aaaa-bbbb'", "GUID")
    ),
    "multi-tenant alias": ConnectionMistake(
        lambda m: {"certificate_path": m["good.pem"], "tenant_id": "common"}, ("tenant_id", "multi-tenant alias")
    ),
    "missing client id": ConnectionMistake(_cert("good.pem"), ("Client ID", "login", "is empty"), login=None),
    "malformed client GUID": ConnectionMistake(
        _cert("good.pem"), ("Client ID (login) '1234-not-a-guid'", "not a GUID"), login="1234-not-a-guid"
    ),
    "no credential": ConnectionMistake(lambda m: {}, ("no credential", "certificate_path")),
    "two credentials": ConnectionMistake(
        lambda m: {"certificate_path": m["good.pem"], "client_assertion": m["stale-assertion"]},
        ("exactly one credential field",),
    ),
    "certificate path missing": ConnectionMistake(_cert("missing"), ("certificate_path", "does not exist")),
    "certificate path is a directory": ConnectionMistake(_cert("a-directory"), ("certificate_path", "is a directory")),
    "PEM without key": ConnectionMistake(_cert("cert-only.pem"), ("no private key", "key_path")),
    "PEM without certificate": ConnectionMistake(_cert("key-only.pem"), ("holds no certificate",)),
    "key and certificate mismatch": ConnectionMistake(_cert("mismatch.pem"), ("does not belong to its certificate",)),
    "encrypted key without password": ConnectionMistake(
        _cert("encrypted.pem"), ("is encrypted", "password field (Certificate password)")
    ),
    "encrypted key, wrong password": ConnectionMistake(
        _cert("encrypted.pem"), ("password does not decrypt", "Certificate password"), password="wrong"
    ),
    "wrong PFX password": ConnectionMistake(
        _cert("app.pfx"), ("could not be opened with the connection's password",), password="wrong"
    ),
    "PFX without its password": ConnectionMistake(_cert("app.pfx"), ("PKCS#12", "put the password")),
    "EC key": ConnectionMistake(_cert("ec.pem"), ("is an EC key", "only RSA keys")),
    "1024-bit RSA key": ConnectionMistake(_cert("small.pem"), ("has 1024 bits", "at least 2048")),
    "expired certificate": ConnectionMistake(_cert("expired.pem"), ("expired on", "upload its .cer")),
    "not-yet-valid certificate": ConnectionMistake(_cert("future.pem"), ("is not valid before", "clock")),
    "pre-signed assertion expired": ConnectionMistake(
        lambda m: {"client_assertion": m["stale-assertion"]}, ("client_assertion expired", "certificate_path")
    ),
    "pre-signed assertion not a JWT": ConnectionMistake(
        lambda m: {"client_assertion": "paste-here"}, ("client_assertion is not a JWT",)
    ),
    "assertion file missing": ConnectionMistake(
        lambda m: {"client_assertion_file": m["missing"]}, ("client_assertion_file", "does not exist")
    ),
    "assertion file empty": ConnectionMistake(
        lambda m: {"client_assertion_file": m["empty-assertion.jwt"]}, ("client_assertion_file", "is empty")
    ),
    "inline certificate_data garbage": ConnectionMistake(
        lambda m: {"certificate_data": "not pem, not base64 %%%"}, ("certificate_data is neither PEM",)
    ),
    "unknown cloud name": ConnectionMistake(_cert("good.pem", cloud="mars"), ("cloud 'mars' is not known",)),
    "authority URL not https": ConnectionMistake(
        _cert("good.pem", authority_host="http://127.0.0.1:1"), ("authority_host must be an https:// URL",)
    ),
    "graph URL not https": ConnectionMistake(
        _cert("good.pem", graph_url="http://127.0.0.1:1"), ("graph_url must be an https:// URL",)
    ),
    "CA bundle missing": ConnectionMistake(
        lambda m: {"certificate_path": m["good.pem"], "ca_bundle": m["missing"]}, ("ca_bundle", "does not exist")
    ),
    "scope without /.default": ConnectionMistake(
        _cert("good.pem", scope="https://graph.microsoft.com/User.Read"), ("scope", "/.default")
    ),
    "timeout not a number": ConnectionMistake(_cert("good.pem", timeout="soon"), ("timeout must be a number",)),
    "certificate not uploaded to the app": ConnectionMistake(
        lambda m: {"certificate_path": m["other.pem"]}, ("AADSTS700027", "upload the .cer"), reaches_entra=True
    ),
    "unknown tenant": ConnectionMistake(
        lambda m: {"certificate_path": m["good.pem"], "tenant_id": GUID},
        ("AADSTS90002", f"Tenant '{GUID}'", "check tenant_id"),
        reaches_entra=True,
    ),
}


@pytest.fixture
def check_material(material: dict[str, str], tmp_path: Path, other_rsa_cert: SelfSignedCertificate) -> dict[str, str]:
    other = tmp_path / "other.pem"
    other.write_bytes(_pem(other_rsa_cert))
    return {**material, "other.pem": str(other)}


@pytest.mark.parametrize("mistake", CONNECTION_MISTAKES.values(), ids=CONNECTION_MISTAKES.keys())
def test_a_connection_mistake_is_one_clear_line_from_graphcert_check(
    graph_emulator: GraphEmulator,
    app: App,
    check_material: dict[str, str],
    airflow_connection: ConnectionFactory,
    capsys: pytest.CaptureFixture[str],
    mistake: ConnectionMistake,
) -> None:
    extra = {"tenant_id": app.tenant_id, **mistake.fields(check_material)}
    conn_id = airflow_connection(app, password=mistake.password, **extra)
    if mistake.login != "app":
        os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"] = os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"].replace(
            app.client_id, mistake.login or ""
        )
    exit_code = main(["check", conn_id])
    out, err = capsys.readouterr()
    assert exit_code == 1
    assert err.strip() and "\n" not in err.strip(), err  # one line
    for fragment in mistake.says:
        assert fragment in err, (fragment, err)
    assert "Traceback" not in out + err and "Unexpected" not in err
    assert (graph_emulator.state.token_requests.count() > 0) == mistake.reaches_entra
    tally("bad inputs tried")


@pytest.mark.skipif(not hasattr(os, "geteuid"), reason="POSIX permissions")
def test_an_unreadable_certificate_file_names_the_field(
    graph_emulator: GraphEmulator, app: App, tmp_path: Path, rsa_cert: SelfSignedCertificate
) -> None:
    """Root reads anything; as root the check runs without the capabilities that bypass file modes."""
    pem = tmp_path / "locked.pem"
    pem.write_bytes(_pem(rsa_cert))
    pem.chmod(0o000)
    command = [sys.executable, "-m", "airflow_provider_graphcert.cli", "check", "locked"]
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv to drop CAP_DAC_OVERRIDE")
        drop = "-dac_override,-dac_read_search"
        command = [setpriv, f"--bounding-set={drop}", f"--inh-caps={drop}", *command]
    env = {**os.environ, "AIRFLOW_CONN_LOCKED": graph_emulator.connection_json(app, certificate_path=str(pem))}
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "certificate_path" in result.stderr and "not readable by this process" in result.stderr
    assert "Traceback" not in result.stderr
    assert graph_emulator.state.token_requests.count() == 0
    tally("bad inputs tried")


# -- job mistakes, through the operators --------------------------------------------------------


@pytest.fixture
def job(
    graph_emulator: GraphEmulator, app: App, pem_file: Path, airflow_connection: ConnectionFactory, documents: Drive
) -> Drive:
    airflow_connection(app, certificate_path=str(pem_file))
    documents.put_file("Exports/report.csv", b"a,b\n1,2\n")
    documents.put_file("Exports/big.bin", content_for("big.bin", 2 * 1024 * 1024))
    documents.put_file("Inbox/existing.csv", b"already here\n")
    return documents


def _run(operator: Any, context: dict[str, Any] | None = None) -> GraphCertError:
    """Render the templates as Airflow does, run the task, and return the error it must raise."""
    operator.render_template_fields({"ds": "2026-01-01", "params": {}, **(context or {})})
    with pytest.raises(GraphCertError) as info:
        operator.execute({})
    error = info.value
    # One error of ours, not a chain of internal exceptions in the task's log.
    assert error.__cause__ is None and (error.__context__ is None or error.__suppress_context__)
    tally("bad inputs tried")
    return error


def _remote_snapshot(drive: Drive) -> list[tuple[str, str | None]]:
    return sorted((drive.path_of(item), item.etag) for item in drive.items.values())


FOLDER = f"{LIBRARY_URL}/Exports"


@pytest.mark.parametrize(
    ("arguments", "field", "says"),
    [
        pytest.param({"url": "sharepoint/sites/Finance/Exports"}, "url", "is not a SharePoint URL", id="not a URL"),
        pytest.param(
            {"url": "https://contoso.sharepoint.com/sites/Nowhere/Shared Documents/x"},
            "url",
            "No SharePoint site at https://contoso.sharepoint.com/sites/Nowhere",
            id="site not found",
        ),
        pytest.param(
            {"url": f"{SITE_URL}/Missing Library/Exports"},
            "url",
            "neither a document library nor a subsite",
            id="library not found",
        ),
        pytest.param({"url": f"{LIBRARY_URL}/No Such Folder"}, "url", "does not exist in the library", id="folder"),
        pytest.param({"url": FOLDER, "include": ["[abc"]}, "include", "unclosed '['", id="invalid glob"),
        pytest.param({"url": FOLDER, "exclude": ["/etc/*"]}, "exclude", "relative to the folder", id="absolute glob"),
        pytest.param(
            {"url": FOLDER, "modified_since": "2026-01-01"}, "modified_since", "needs a time zone", id="naive date"
        ),
        pytest.param({"url": FOLDER, "max_workers": 0}, "max_workers", "at least 1", id="no workers"),
        pytest.param(
            {"url": FOLDER, "local_dir": "{{ params.get('landing', '') }}"},
            "local_dir",
            "is empty (did a template render to nothing?)",
            id="templated path renders empty",
        ),
    ],
)
def test_a_download_mistake_names_the_argument_and_writes_nothing(
    job: Drive, tmp_path: Path, arguments: dict[str, Any], field: str, says: str
) -> None:
    landing = tmp_path / "landing"
    operator = SharePointDownloadOperator(task_id="pull", **{"local_dir": str(landing), **arguments})
    cwd_before = sorted(os.listdir())
    error = _run(operator)
    assert says in str(error)
    assert getattr(error, "field", None) == field
    assert not landing.exists()
    assert sorted(os.listdir()) == cwd_before  # an empty path must not mean "here"


def test_a_local_target_that_is_not_writable(job: Drive, tmp_path: Path) -> None:
    with _unwritable_directory(tmp_path / "readonly") as readonly:
        error = _run(SharePointDownloadOperator(task_id="pull", url=FOLDER, local_dir=str(readonly / "landing")))
        assert error.field == "local_dir"  # type: ignore[attr-defined]
        assert f"Cannot write to {readonly / 'landing'}" in str(error) and "choose another local_dir" in str(error)
        assert not list(readonly.iterdir())


def test_a_local_target_that_is_a_file(job: Drive, tmp_path: Path) -> None:
    squatter = tmp_path / "landing"
    squatter.write_text("a file where the folder should be")
    error = _run(SharePointDownloadOperator(task_id="pull", url=FOLDER, local_dir=str(squatter)))
    assert error.field == "local_dir"  # type: ignore[attr-defined]
    assert "choose another local_dir" in str(error)
    assert squatter.read_text() == "a file where the folder should be"


def test_a_disk_that_fills_up_mid_download(job: Drive, tmp_path: Path) -> None:
    with _small_tmpfs(tmp_path / "tiny", size_kib=1024) as tiny:
        # One worker: the large file fills the disk (and is removed), then the small one still fits.
        operator = SharePointDownloadOperator(
            task_id="pull", url=FOLDER, local_dir=str(tiny / "landing"), max_workers=1
        )
        operator.render_template_fields({})
        with pytest.raises(GraphCertError) as info:
            operator.execute({})
        tally("bad inputs tried")
        message = str(info.value)
        assert "big.bin: Cannot write to" in message and "the disk is full" in message and "local_dir" in message
        assert local_files(tiny / "landing") == {"report.csv": b"a,b\n1,2\n"}  # what fitted landed whole
        assert not partial_files(tiny / "landing")


def test_a_file_size_limit_mid_download_of_a_single_file(job: Drive, tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    operator = SharePointDownloadOperator(task_id="pull", url=f"{FOLDER}/big.bin", local_dir=str(landing))
    with _file_size_limit(1024 * 1024):
        error = _run(operator)
    assert error.field == "local_dir"  # type: ignore[attr-defined]
    assert "File too large" in str(error) and "choose another local_dir" in str(error)
    assert local_files(landing) == {} and not partial_files(landing)


@pytest.mark.parametrize(
    ("arguments", "field", "says"),
    [
        pytest.param({"local_path": "{{ params.missing }}"}, "local_path", "is empty", id="templated source empty"),
        pytest.param({"local_path": "/nonexistent/out.csv"}, "local_path", "does not exist", id="source missing"),
        pytest.param(
            {"local_path": "existing.csv", "conflict_behavior": "fail"},
            "conflict_behavior",
            "already exists and conflict_behavior is 'fail'",
            id="conflict fail",
        ),
        pytest.param(
            {"local_path": "existing.csv", "conflict_behavior": "overwrite"},
            "conflict_behavior",
            "must be one of fail, replace, rename",
            id="unknown conflict behaviour",
        ),
        pytest.param(
            {"local_path": "existing.csv", "chunk_size": 1_000_000}, "chunk_size", "multiple of 327,680", id="chunk"
        ),
    ],
)
def test_an_upload_mistake_names_the_argument_and_writes_nothing(
    job: Drive, tmp_path: Path, arguments: dict[str, Any], field: str, says: str
) -> None:
    (tmp_path / "existing.csv").write_bytes(b"new contents\n")
    local = arguments["local_path"]
    arguments = {**arguments, "local_path": str(tmp_path / local) if local == "existing.csv" else local}
    before = _remote_snapshot(job)
    error = _run(SharePointUploadOperator(task_id="push", url=f"{LIBRARY_URL}/Inbox", **arguments))
    assert says in str(error)
    if field != "conflict_behavior" or "must be" in says:
        assert getattr(error, "field", None) == field
    assert _remote_snapshot(job) == before


def test_permission_denied_on_a_site_names_the_permission(
    graph_emulator: GraphEmulator,
    tenant: Tenant,
    rsa_cert: SelfSignedCertificate,
    pem_file: Path,
    airflow_connection: ConnectionFactory,
    documents: Drive,
    tmp_path: Path,
) -> None:
    reader = graph_emulator.add_app(tenant, rsa_cert.certificate, roles=["User.Read.All"], display_name="no-sites")
    conn_id = airflow_connection(reader, conn_id="no_sites", certificate_path=str(pem_file))
    operator = SharePointDownloadOperator(
        task_id="pull", url=FOLDER, local_dir=str(tmp_path / "landing"), msgraph_cert_conn_id=conn_id
    )
    error = _run(operator)
    assert "403" in str(error) and "Sites.Read.All" in str(error) and "admin consent" in str(error)
    assert not (tmp_path / "landing").exists()


def test_an_unknown_list_and_an_empty_output_path(job: Drive, site: Site, tmp_path: Path) -> None:
    unknown = SharePointListExportOperator(
        task_id="export", site_url=SITE_URL, list_name="Nope", output_path=str(tmp_path / "out.csv")
    )
    error = _run(unknown)
    assert getattr(error, "field", None) == "list_name" and "does not exist" in str(error)
    assert not (tmp_path / "out.csv").exists()
    empty = SharePointListExportOperator(task_id="export", site_url=SITE_URL, list_name="Nope", output_path="")
    error = _run(empty)
    assert getattr(error, "field", None) == "output_path" and "is empty" in str(error)


def test_a_template_that_does_not_parse_is_refused_by_airflow_naming_the_field(
    job: Drive, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    operator = SharePointDownloadOperator(task_id="pull", url=FOLDER, local_dir=str(tmp_path) + "/{{ ds ")
    with pytest.raises(Exception, match="unexpected end of template"):
        operator.render_template_fields({"ds": "2026-01-01"})
    tally("bad inputs tried")
    assert "field 'local_dir'" in caplog.text  # Airflow's own message, before any of our code runs
    assert not list(tmp_path.iterdir()) or all(p.name == "keys" for p in tmp_path.iterdir())


# -- environments for the local-disk cases ------------------------------------------------------


@contextlib.contextmanager
def _small_tmpfs(path: Path, *, size_kib: int) -> Iterator[Path]:
    """A real full disk: a tmpfs of ``size_kib`` (needs root; skipped elsewhere, the size-limit case stays)."""
    path.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_kib}k", "tmpfs", str(path)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.decode().strip()}); the size-limit case runs")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


@contextlib.contextmanager
def _unwritable_directory(path: Path) -> Iterator[Path]:
    """Read-only for this process: a read-only tmpfs as root (root ignores modes), else mode 0555."""
    path.mkdir()
    if os.geteuid() == 0:
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(path)], check=False)
        if mounted.returncode != 0:
            pytest.skip("running as root without permission to mount a read-only tmpfs")
        try:
            yield path
        finally:
            subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)
        return
    path.chmod(0o555)
    try:
        yield path
    finally:
        path.chmod(0o755)


@contextlib.contextmanager
def _file_size_limit(limit: int) -> Iterator[None]:
    """RLIMIT_FSIZE for this process: a write past ``limit`` fails with EFBIG (SIGXFSZ ignored)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)


def test_inline_pfx_with_the_wrong_password_names_the_password_field(
    graph_emulator: GraphEmulator,
    app: App,
    rsa_cert: SelfSignedCertificate,
    airflow_connection: ConnectionFactory,
    capsys: pytest.CaptureFixture[str],
) -> None:
    inline = base64.b64encode(rsa_cert.pfx(PASSWORD)).decode()
    conn_id = airflow_connection(app, password="not-it", certificate_data=inline)
    assert main(["check", conn_id]) == 1
    err = capsys.readouterr().err
    assert "certificate_data could not be opened with the connection's password" in err
    assert "not-it" not in err and inline[:40] not in err
    assert graph_emulator.state.token_requests.count() == 0
    tally("bad inputs tried")
