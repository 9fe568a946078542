"""The floor for a cold start in Python: PyJWT signs the assertion, requests gets a token and one page.

No cache, no retries, no error handling: the least a certificate-authenticated Graph call can do.
"""

from __future__ import annotations

import sys
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
import requests
from _child import main


def cold(config: dict[str, Any]) -> dict[str, Any]:
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    key = load_pem_private_key(Path(config["certificate_pem"]).read_bytes(), password=None)
    now = int(time.time())
    claims = {
        "aud": config["token_endpoint"],
        "iss": config["client_id"],
        "sub": config["client_id"],
        "jti": str(uuid.uuid4()),
        "nbf": now,
        "exp": now + 300,
    }
    thumbprint = bytes.fromhex(config["certificate_sha1"])
    import base64

    header = {"x5t": base64.urlsafe_b64encode(thumbprint).decode().rstrip("=")}
    assertion = jwt.encode(claims, key, algorithm="RS256", headers=header)  # type: ignore[arg-type]
    token = requests.post(
        config["token_endpoint"],
        data={
            "client_id": config["client_id"],
            "scope": config["scope"],
            "grant_type": "client_credentials",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion,
        },
        verify=config["ca_bundle"],
        timeout=60,
    ).json()["access_token"]
    response = requests.get(
        f"{config['graph_url']}/v1.0/sites/root",
        headers={"Authorization": f"Bearer {token}"},
        verify=config["ca_bundle"],
        timeout=60,
    )
    response.raise_for_status()
    return {"first_response_at": time.time(), "ok": bool(response.json().get("id"))}


if __name__ == "__main__":
    sys.exit(main({"cold": cold}))
