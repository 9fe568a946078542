"""A pre-authenticated URL in a log line or a logged traceback keeps its place, not its credential."""

from __future__ import annotations

import logging

import pytest

from airflow_provider_graphcert.graph.redaction import install_url_redaction, redact_urls

URL = "https://contoso.sharepoint.com/_layouts/15/download.aspx?UniqueId=1&tempauth=eyJ0eXAi.secret&ApiVersion=2.0"


def test_credential_query_values_are_replaced_and_the_rest_kept() -> None:
    assert redact_urls(URL) == (
        "https://contoso.sharepoint.com/_layouts/15/download.aspx?UniqueId=1&tempauth=REDACTED&ApiVersion=2.0"
    )
    assert redact_urls("https://blob/x?sv=2024&sig=abc%2B123") == "https://blob/x?sv=2024&sig=REDACTED"
    assert redact_urls("no url here") == "no url here"


def test_a_traceback_logged_by_urllib3_is_redacted_too(caplog: pytest.LogCaptureFixture) -> None:
    install_url_redaction()
    caplog.set_level(logging.DEBUG)
    try:
        raise ConnectionError(f"Max retries exceeded with url: {URL}")
    except ConnectionError:
        logging.getLogger("urllib3.connectionpool").exception("Retrying %s", URL)
    assert "eyJ0eXAi.secret" not in caplog.text
    assert caplog.text.count("tempauth=REDACTED") == 2
