"""A real Airflow API server (the React UI) and headless system Chromium driven by Playwright.

The API server runs in its own process group with a temporary AIRFLOW_HOME (SQLite) and the
SimpleAuthManager in all-admins mode, so the browser needs no login. Its log, the browser's
console errors and a screenshot are attached to the report of a failing test.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Page, Response

BIN = Path(sys.executable).parent
CHROMIUM = Path(os.environ.get("GRAPHCERT_CHROMIUM", "/usr/bin/chromium"))
# The flags a root CI container needs; Playwright adds --headless and its own temporary profile.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
MIGRATE_TIMEOUT_SECONDS = 180
STARTUP_TIMEOUT_SECONDS = 120
SHUTDOWN_TIMEOUT_SECONDS = 20
BROWSER_TIMEOUT_MS = 30_000
LOG_TAIL_CHARS = 30_000


@dataclass
class AirflowUI:
    """A running ``airflow api-server``: where it listens and where it logs."""

    base_url: str
    home: Path
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    def log_tail(self) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError as exc:
            return f"(no log: {exc})"
        return text[-LOG_TAIL_CHARS:]


@dataclass
class BrowserDiagnostics:
    """What the browser said while the test ran, for the failure report."""

    messages: list[str] = field(default_factory=list)
    screenshot: Path | None = None


AIRFLOW_UI_KEY = pytest.StashKey[AirflowUI]()
BROWSER_KEY = pytest.StashKey[BrowserDiagnostics]()
PAGE_KEY = pytest.StashKey["Page"]()


def pytest_configure(config: pytest.Config) -> None:
    # Also registered in pyproject.toml; repeated here so that these files work on their own.
    config.addinivalue_line(
        "markers", "ui: drives the Airflow web UI in headless Chromium (scripts/install-browser.sh)"
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, object, object]:
    report = yield
    assert isinstance(report, pytest.TestReport)
    if report.failed:
        page = item.stash.get(PAGE_KEY, None)
        diagnostics = item.stash.get(BROWSER_KEY, None)
        if page is not None and diagnostics is not None and diagnostics.screenshot is not None:
            with contextlib.suppress(Exception):
                page.screenshot(path=str(diagnostics.screenshot))
                report.sections.append(("browser screenshot", str(diagnostics.screenshot)))
        if diagnostics is not None and diagnostics.messages:
            report.sections.append(("browser console", "\n".join(diagnostics.messages[-200:])))
        server = item.config.stash.get(AIRFLOW_UI_KEY, None) if "airflow_ui_url" in item.fixturenames else None
        if server is not None:
            report.sections.append((f"airflow api-server log ({server.log_path})", server.log_tail()))
    return report


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_until_healthy(ui: AirflowUI) -> None:
    assert ui.process is not None
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    url = f"{ui.base_url}/api/v2/monitor/health"
    while True:
        if ui.process.poll() is not None:
            raise RuntimeError(f"airflow api-server exited with {ui.process.returncode} during startup")
        with (
            contextlib.suppress(urllib.error.URLError, ConnectionError, TimeoutError),
            urllib.request.urlopen(url, timeout=5) as response,  # noqa: S310 (our own loopback URL)
        ):
            if response.status == 200:
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"airflow api-server did not answer {url} within {STARTUP_TIMEOUT_SECONDS} s")
        time.sleep(0.2)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's own process group (uvicorn and anything it forked), then SIGKILL."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(SHUTDOWN_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(SHUTDOWN_TIMEOUT_SECONDS)
    # Children left in the group after the leader exited.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def airflow_ui_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of ``airflow api-server`` (core API + UI) on a free loopback port, test_connection enabled."""
    home = tmp_path_factory.mktemp("airflow-ui-home")
    dags = home / "dags"
    dags.mkdir()
    port = _free_port()
    ui = AirflowUI(base_url=f"http://127.0.0.1:{port}", home=home, log_path=home / "api-server.log")
    request.config.stash[AIRFLOW_UI_KEY] = ui
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
        # SimpleAuthManager (the 3.3 default) without a login page: every request is an admin.
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__API__BASE_URL": ui.base_url,
    }
    with ui.log_path.open("wb") as log:
        migrate = subprocess.run(
            [str(BIN / "airflow"), "db", "migrate"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            timeout=MIGRATE_TIMEOUT_SECONDS,
            check=False,
        )
        if migrate.returncode != 0:
            raise RuntimeError(f"airflow db migrate failed with {migrate.returncode}")
        log.write(b"\n--- airflow api-server ---\n")
        log.flush()
        ui.process = subprocess.Popen(
            [
                str(BIN / "airflow"),
                "api-server",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                "1",
                "--apps",
                "core",
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        _wait_until_healthy(ui)
        yield ui.base_url
    finally:
        _stop(ui.process)
        del request.config.stash[AIRFLOW_UI_KEY]


def _record_http_error(diagnostics: BrowserDiagnostics, response: Response) -> None:
    if response.status < 400:
        return
    body = "(no body)"
    with contextlib.suppress(Exception):
        body = response.text()[:2000]
    sent = response.request.post_data or ""
    diagnostics.messages.append(
        f"HTTP {response.status} for {response.request.method} {response.url}\n  sent: {sent[:2000]}\n  got: {body}"
    )


@pytest.fixture(scope="session")
def chromium_executable() -> Path:
    """The system Chromium; fails (never skips) when it or Playwright is missing: CI installs both.

    Session-scoped so that it is checked before the (slower) API server starts.
    """
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.fail("Playwright is not installed: pip install -e '.[test]'", pytrace=False)
    if not CHROMIUM.exists():
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: run scripts/install-browser.sh as root "
            "(Debian chromium + chromium-driver), or set GRAPHCERT_CHROMIUM to a Chromium binary.",
            pytrace=False,
        )
    return CHROMIUM


@pytest.fixture
def ui_page(request: pytest.FixtureRequest, tmp_path: Path, chromium_executable: Path) -> Iterator[Page]:
    """A Playwright page (1280x2600, so that the whole connection form fits) in headless system Chromium."""
    from playwright.sync_api import sync_playwright

    diagnostics = BrowserDiagnostics(screenshot=tmp_path / "failure.png")
    request.node.stash[BROWSER_KEY] = diagnostics
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(chromium_executable), args=CHROMIUM_ARGS, timeout=60_000
        )
        try:
            context = browser.new_context(
                viewport={"width": 1280, "height": 2600}, locale="en-US", timezone_id="UTC", color_scheme="light"
            )
            context.set_default_timeout(BROWSER_TIMEOUT_MS)
            page = context.new_page()
            page.on(
                "console",
                lambda m: m.type in ("error", "warning") and diagnostics.messages.append(f"console.{m.type}: {m.text}"),
            )
            page.on("pageerror", lambda e: diagnostics.messages.append(f"page error: {e}"))
            page.on(
                "requestfailed",
                lambda r: diagnostics.messages.append(f"request failed: {r.method} {r.url} {r.failure}"),
            )
            page.on("response", lambda r: _record_http_error(diagnostics, r))
            request.node.stash[PAGE_KEY] = page
            yield page
            context.close()
        finally:
            browser.close()
