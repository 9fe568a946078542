"""Turn Entra ID token-endpoint errors into messages the connection's owner can act on.

Microsoft warns that AADSTS codes and texts change and that clients must branch only on
``error`` (docs/microsoft-rules.md §A6); the codes here only choose a hint, never control flow.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from airflow_provider_graphcert.errors import TokenRequestError

_AADSTS = re.compile(r"AADSTS(\d+)")


@dataclass(frozen=True)
class RequestContext:
    """What we know about the request, to make hints concrete. Holds no secrets."""

    client_id: str
    tenant_id: str
    token_endpoint: str
    credential: str  # human description, e.g. "certificate 'CN=x' (SHA-1 thumbprint ...)"


def _hint(code: int | None, error: str | None, ctx: RequestContext) -> str:
    hints: dict[int, str] = {
        700027: (
            f"The signing key is not registered on app {ctx.client_id}: upload the .cer of "
            f"{ctx.credential} under Certificates & secrets of the app registration (or, if the app "
            "uses subject name + issuer trust, set send_certificate_chain=true)."
        ),
        700024: (
            "The assertion was outside its valid time range when Entra ID checked it. Check this "
            "worker's clock (NTP); a pasted assertion must be replaced by certificate_path/_data."
        ),
        700016: (
            f"No application with client ID {ctx.client_id} exists in tenant {ctx.tenant_id}: check "
            "the Client ID (login) and tenant_id fields, and that the app was consented in that tenant."
        ),
        90002: (
            f"Tenant '{ctx.tenant_id}' does not exist in this cloud: check tenant_id, and the cloud "
            "setting for national clouds."
        ),
        70011: "The scope is not valid: for app-only tokens it must be '<resource>/.default'.",
        1002012: "Client credential flows need a scope ending in '/.default', e.g. https://graph.microsoft.com/.default.",
        700022: "The scope names more than one resource; app-only tokens are for a single resource.",
        500011: "The resource in the scope is not known in this tenant: check the scope and graph_url fields.",
        5002741: "The assertion's aud claim must be one value: the token endpoint URL.",
        50027: "The assertion is malformed. If it was pasted, create it again or switch to certificate_path.",
        70002: f"The assertion's aud claim must be exactly {ctx.token_endpoint}.",
        700023: f"The assertion's aud claim must be exactly {ctx.token_endpoint}.",
        700021: f"The assertion's iss and sub claims must both be the client ID {ctx.client_id}.",
        5002738: "Entra ID accepts only RS256 and PS256 signed assertions (set signing_algorithm).",
        5002730: "The key does not suit the signing algorithm: Entra ID needs an RSA key.",
        7000215: "A client secret was sent where a certificate was expected.",
        7000216: "No client assertion reached Entra ID.",
        7000218: "No client assertion reached Entra ID.",
        900144: "The request was missing a parameter; if a proxy rewrites requests, check it.",
        7000112: f"App {ctx.client_id} is disabled in tenant {ctx.tenant_id}.",
    }
    if code in hints:
        return hints[code]
    if error == "invalid_client":
        return f"Entra ID did not accept {ctx.credential} for app {ctx.client_id}."
    if error == "temporarily_unavailable":
        return "Entra ID is temporarily unavailable; the request can be retried later."
    return ""


def token_error(status: int, body: Any, ctx: RequestContext) -> TokenRequestError:
    """Build the exception for a non-200 token response (``body`` is parsed JSON or None)."""
    if not isinstance(body, dict) or "error" not in body:
        return TokenRequestError(
            f"The token endpoint {ctx.token_endpoint} answered HTTP {status} without an Entra ID error "
            "body. Check authority_host/cloud, and any proxy between this worker and Entra ID.",
            status=status,
        )
    error = str(body.get("error"))
    description = str(body.get("error_description") or "")
    first_line = description.split("\r\n")[0].split("\n")[0].strip()
    codes = body.get("error_codes") or []
    code: int | None = int(codes[0]) if codes and str(codes[0]).isdigit() else None
    if code is None and (match := _AADSTS.search(description)):
        code = int(match.group(1))
    trace_id = body.get("trace_id")
    correlation_id = body.get("correlation_id")
    parts = [
        f"Entra ID refused the token for app {ctx.client_id} in tenant {ctx.tenant_id} "
        f"(HTTP {status}, {error}): {first_line or '(no description)'}"
    ]
    if hint := _hint(code, error, ctx):
        parts.append(hint)
    if trace_id or correlation_id:
        parts.append(f"[trace_id={trace_id}, correlation_id={correlation_id}]")
    return TokenRequestError(
        " ".join(parts),
        status=status,
        error=error,
        aadsts=code,
        trace_id=str(trace_id) if trace_id else None,
        correlation_id=str(correlation_id) if correlation_id else None,
    )
