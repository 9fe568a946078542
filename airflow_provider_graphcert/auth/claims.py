"""Read an access token's claims (roles, tenant, app name) to explain a success or a refusal."""

from __future__ import annotations

from typing import Any

import jwt


def token_claims(access_token: str) -> dict[str, Any]:
    """Claims of a Graph access token, read without verification (Graph, not us, verifies it)."""
    try:
        claims = jwt.decode(access_token, options={"verify_signature": False, "verify_exp": False})
    except jwt.PyJWTError:
        return {}
    return claims if isinstance(claims, dict) else {}


def token_roles(access_token: str) -> list[str] | None:
    """The application permissions (``roles``) a token grants, or None when it says nothing."""
    roles = token_claims(access_token).get("roles")
    return [str(role) for role in roles] if isinstance(roles, list) else None
