"""A data engineer defines one msgraph_cert connection and every task gets valid Graph tokens."""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jwt
import pytest

from airflow_provider_graphcert.auth.selfsigned import SelfSignedCertificate, create_self_signed
from airflow_provider_graphcert.auth.token_cache import TokenCache
from airflow_provider_graphcert.errors import TokenRequestError
from airflow_provider_graphcert.hooks.graph_cert import GraphCertHook
from airflow_provider_graphcert.testing.emulator.server import GraphEmulator
from airflow_provider_graphcert.testing.emulator.state import App, Tenant

ConnectionFactory = Callable[..., str]


def claims(token: str) -> dict[str, object]:
    return jwt.decode(token, options={"verify_signature": False})


def test_certificate_file_connection_gets_a_graph_token(
    graph_emulator: GraphEmulator, app: App, airflow_connection: ConnectionFactory, pem_file: Path
) -> None:
    airflow_connection(app, certificate_path=str(pem_file))
    token = GraphCertHook().get_access_token()
    granted = claims(token)
    assert granted["appid"] == app.client_id
    assert granted["tid"] == app.tenant_id
    assert granted["roles"] == ["Sites.Read.All", "User.Read.All"]
    assert graph_emulator.state.validate_access_token(token)["appid"] == app.client_id


def test_tokens_are_cached_per_process(
    graph_emulator: GraphEmulator, app: App, airflow_connection: ConnectionFactory, pem_file: Path
) -> None:
    airflow_connection(app, certificate_path=str(pem_file))
    first = GraphCertHook().get_access_token()
    # A second hook (the next task in the same worker process) reuses the token.
    assert GraphCertHook().get_access_token() == first
    assert graph_emulator.state.token_requests.count(app) == 1


def test_many_threads_share_one_token_request(
    graph_emulator: GraphEmulator, app: App, airflow_connection: ConnectionFactory, pem_file: Path
) -> None:
    airflow_connection(app, certificate_path=str(pem_file))
    hook = GraphCertHook()
    barrier = threading.Barrier(12)

    def get() -> str:
        barrier.wait()
        return hook.get_access_token()

    with ThreadPoolExecutor(12) as pool:
        tokens = set(pool.map(lambda _: get(), range(12)))
    assert len(tokens) == 1
    assert graph_emulator.state.token_requests.count(app) == 1


def test_short_lived_tokens_are_renewed_before_they_expire(
    graph_emulator: GraphEmulator, app: App, airflow_connection: ConnectionFactory, pem_file: Path
) -> None:
    graph_emulator.token_lifetime = 2
    airflow_connection(app, certificate_path=str(pem_file))
    hook = GraphCertHook()
    skipped = 0.0
    # The cache's injected clock: time moves on when the test says so, not while it sleeps.
    hook.token_provider.cache = TokenCache(lambda: time.time() + skipped)
    first = hook.get_access_token()
    assert hook.get_access_token() == first  # still fresh: from the cache
    skipped = 1.2  # past half the 2 s lifetime: the cache must fetch a new one
    second = hook.get_access_token()
    assert second != first
    assert graph_emulator.state.validate_access_token(second)
    assert graph_emulator.state.token_requests.count(app) == 2


@pytest.mark.parametrize("algorithm", ["PS256", "RS256"])
def test_both_signing_modes_are_accepted(
    graph_emulator: GraphEmulator,
    app: App,
    airflow_connection: ConnectionFactory,
    pem_file: Path,
    algorithm: str,
) -> None:
    airflow_connection(app, certificate_path=str(pem_file), signing_algorithm=algorithm)
    assert GraphCertHook().get_access_token()
    (record,) = graph_emulator.state.token_requests.records(app)
    assert record.succeeded


def test_pfx_with_password_inline_from_a_secrets_backend(
    graph_emulator: GraphEmulator, app: App, airflow_connection: ConnectionFactory, rsa_cert: SelfSignedCertificate
) -> None:
    data = base64.b64encode(rsa_cert.pfx("pfx-secret-pw")).decode()
    airflow_connection(app, certificate_data=data, password="pfx-secret-pw")
    assert claims(GraphCertHook().get_access_token())["appid"] == app.client_id


def test_subject_name_issuer_app_needs_the_chain(
    graph_emulator: GraphEmulator,
    tenant: Tenant,
    airflow_connection: ConnectionFactory,
    rsa_cert: SelfSignedCertificate,
    pem_file: Path,
) -> None:
    sni = graph_emulator.add_app(tenant, rsa_cert.certificate, subject_name_issuer=True)
    airflow_connection(sni, conn_id="sni_off", certificate_path=str(pem_file))
    with pytest.raises(TokenRequestError) as info:
        GraphCertHook("sni_off").get_access_token()
    assert info.value.aadsts == 700027
    assert "send_certificate_chain=true" in str(info.value)
    airflow_connection(sni, conn_id="sni_on", certificate_path=str(pem_file), send_certificate_chain=True)
    assert GraphCertHook("sni_on").get_access_token()


def test_unregistered_certificate_explains_what_to_upload(
    graph_emulator: GraphEmulator, app: App, airflow_connection: ConnectionFactory, tmp_path: Path
) -> None:
    stranger = create_self_signed("CN=not-uploaded")
    path = tmp_path / "stranger.pem"
    path.write_bytes(stranger.key_pem() + stranger.cert_pem())
    airflow_connection(app, certificate_path=str(path))
    hook = GraphCertHook()
    with pytest.raises(TokenRequestError) as info:
        hook.get_access_token()
    error = info.value
    assert (error.status, error.error, error.aadsts) == (401, "invalid_client", 700027)
    message = str(error)
    thumbprint = hook.settings.credential.certificate().sha1_thumbprint  # type: ignore[attr-defined]
    assert thumbprint in message and "upload the .cer" in message
    assert error.trace_id and error.trace_id in message
    assert "BEGIN" not in message


def test_unknown_app_and_unknown_tenant(
    graph_emulator: GraphEmulator, app: App, airflow_connection: ConnectionFactory, pem_file: Path
) -> None:
    conn = graph_emulator.connection(app, certificate_path=str(pem_file))
    import json
    import os

    conn["login"] = "99999999-9999-9999-9999-999999999999"
    os.environ["AIRFLOW_CONN_WRONG_APP"] = json.dumps(conn)
    try:
        with pytest.raises(TokenRequestError) as info:
            GraphCertHook("wrong_app").get_access_token()
        assert info.value.aadsts == 700016
        assert "99999999-9999-9999-9999-999999999999" in str(info.value)
    finally:
        del os.environ["AIRFLOW_CONN_WRONG_APP"]
    airflow_connection(app, conn_id="wrong_tenant", certificate_path=str(pem_file), tenant_id="nobody.onmicrosoft.com")
    with pytest.raises(TokenRequestError) as tenant_info:
        GraphCertHook("wrong_tenant").get_access_token()
    assert tenant_info.value.aadsts == 90002


def test_test_connection_says_who_authenticated_and_what_it_may_do(
    graph_emulator: GraphEmulator, app: App, airflow_connection: ConnectionFactory, pem_file: Path
) -> None:
    airflow_connection(app, certificate_path=str(pem_file))
    ok, message = GraphCertHook().test_connection()
    assert ok, message
    assert app.client_id in message and "nightly-etl" in message and app.tenant_id in message
    assert "Sites.Read.All, User.Read.All" in message
    assert "thumbprint" in message and "days left" in message


def test_test_connection_never_raises(
    graph_emulator: GraphEmulator, app: App, airflow_connection: ConnectionFactory, tmp_path: Path
) -> None:
    airflow_connection(app, certificate_path=str(tmp_path / "missing.pem"))
    ok, message = GraphCertHook().test_connection()
    assert not ok
    assert "does not exist" in message
