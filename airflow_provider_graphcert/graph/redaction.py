"""Keep pre-authenticated URLs out of logs: their query (``tempauth=...``) is a credential.

Graph's download URLs and upload session URLs need no token because the URL itself grants access
for a while (Microsoft: "driveItem: content" and "createUploadSession", which say to treat them as
secrets). urllib3 logs every request's full URL at DEBUG, and its retry and warning lines carry it
too, so a filter on those loggers rewrites each record before any handler (Airflow's task log, a
file, the console) sees it. Our own modules log URLs without their query (``display_url``).
"""

from __future__ import annotations

import logging
import re
from urllib.parse import urlsplit

REDACTED = "REDACTED"
# Query parameters that carry a credential in the URLs Graph, SharePoint and Azure storage hand out.
CREDENTIAL_QUERY_PARAMETERS = (
    "tempauth",
    "sig",
    "signature",
    "token",
    "access_token",
    "code",
    "client_assertion",
    "client_secret",
)
_CREDENTIAL_QUERY = re.compile(r"(?i)([?&](?:amp;)?(?:" + "|".join(CREDENTIAL_QUERY_PARAMETERS) + r")=)[^&#\s'\"<>]+")
# Every logger that writes a request URL: urllib3's pool, connection, retry and response modules.
URL_LOGGERS = (
    "urllib3",
    "urllib3.connectionpool",
    "urllib3.connection",
    "urllib3.poolmanager",
    "urllib3.response",
    "urllib3.util.retry",
    "requests",
    "airflow_provider_graphcert",
)


def redact_urls(text: str) -> str:
    """``text`` with the value of every credential query parameter replaced by REDACTED."""
    return _CREDENTIAL_QUERY.sub(r"\1" + REDACTED, text)


def display_url(url: str) -> str:
    """The URL without its query and fragment, for messages: pre-authenticated URLs carry credentials there."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


class PreAuthenticatedUrlFilter(logging.Filter):
    """Rewrites a record's message (and its traceback text) so no credential query value remains."""

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken record is the handler's to report, not ours
            return True
        redacted = redact_urls(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_urls(record.exc_text)
        return True


_FILTER = PreAuthenticatedUrlFilter()


def install_url_redaction() -> None:
    """Add the filter to every logger that may write a request URL (idempotent, cheap to repeat).

    A logger's filters do not apply to its children's records, so each URL-writing logger gets it;
    existing loggers of this package too, as a second line behind ``display_url``.
    """
    names = set(URL_LOGGERS)
    names.update(name for name in logging.root.manager.loggerDict if name.startswith("airflow_provider_graphcert."))
    for name in names:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
