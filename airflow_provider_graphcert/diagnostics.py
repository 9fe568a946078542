"""Explain what a working connection authenticated as (for test_connection and `graphcert check`)."""

from __future__ import annotations

from datetime import UTC, datetime

from airflow_provider_graphcert.auth.claims import token_claims
from airflow_provider_graphcert.auth.credentials import CertificateCredential
from airflow_provider_graphcert.settings import ConnectionSettings

__all__ = ["describe_success", "token_claims"]


def describe_success(settings: ConnectionSettings, access_token: str) -> str:
    claims = token_claims(access_token)
    app = claims.get("app_displayname")
    who = f"app {settings.client_id}" + (f" ({app})" if app else "")
    lines = [f"Authenticated as {who} in tenant {claims.get('tid', settings.tenant_id)}."]
    credential = settings.credential
    if isinstance(credential, CertificateCredential):
        cert = credential.certificate()
        days = (cert.not_valid_after - datetime.now(UTC)).days
        lines.append(
            f"Certificate thumbprint {cert.sha1_thumbprint} (SHA-256 {cert.sha256_thumbprint}), "
            f"signed {credential.algorithm}, expires {cert.not_valid_after:%Y-%m-%d} ({days} days left)."
        )
    else:
        lines.append(f"Credential: {credential.describe()}.")
    roles = claims.get("roles")
    if isinstance(roles, list) and roles:
        lines.append(f"Application permissions (roles): {', '.join(sorted(map(str, roles)))}.")
    elif claims:
        lines.append(
            "The token carries no application permissions (roles): add Microsoft Graph application "
            "permissions to the app registration and grant admin consent."
        )
    token_endpoint = f"{settings.authority_host}/{settings.tenant_id}/oauth2/v2.0/token"
    lines.append(f"Token endpoint {token_endpoint}; Graph {settings.graph_url}.")
    return " ".join(lines)
