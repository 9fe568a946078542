"""HTTP face of the emulated Entra ID authority: token endpoint, discovery and signing keys.

Routes only parse requests and render responses in Microsoft's shapes (docs/microsoft-rules.md §A5, §A6, §A8);
the decisions are made in ``assertions.py`` and the data lives in ``state.py``.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from airflow_provider_graphcert.testing.emulator.entra.assertions import (
    MULTI_TENANT_ALIASES,
    EntraError,
    authenticate_token_request,
    resolve_tenant,
)
from airflow_provider_graphcert.testing.emulator.entra.state import EmulatorState, Tenant, TokenRequestRecord
from airflow_provider_graphcert.testing.emulator.faults import FaultResponse, Scope

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
# A8: what Entra's discovery document advertises.
TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_post", "private_key_jwt", "client_secret_basic"]
ID_TOKEN_SIGNING_ALGORITHMS = ["RS256"]
CLOUD_INSTANCE_NAME = "microsoftonline.com"
TENANT_REGION_SCOPE = "NA"
# A8: the claims Entra's v2.0 discovery document lists, in its order.
CLAIMS_SUPPORTED = [
    "sub", "iss", "cloud_instance_name", "cloud_instance_host_name", "cloud_graph_host_name", "msgraph_host",
    "aud", "exp", "iat", "auth_time", "acr", "nonce", "preferred_username", "name", "tid", "ver", "at_hash",
    "c_hash", "email",
]  # fmt: skip
# A8: instance discovery answers with api-version 1.1.
INSTANCE_DISCOVERY_API_VERSION = "1.1"
# Not in the reference: "Unknown or invalid instance" is AADSTS50049 in Entra's code table.
AADSTS_UNKNOWN_INSTANCE = 50049
# Faults on the authority origin answer with Entra-shaped errors. The codes come from Entra's
# code table (90055 TenantThrottlingError, 90006 ExternalServerRetryableError); that Entra uses
# them for these statuses is UNCONFIRMED.
AADSTS_THROTTLED = 90055
AADSTS_TEMPORARILY_UNAVAILABLE = 90006
NO_CACHE_HEADERS = {"cache-control": "no-store, no-cache", "pragma": "no-cache"}


@dataclass(frozen=True)
class RequestIds:
    """Entra's correlation identifiers: trace_id (x-ms-request-id) and the client's correlation id."""

    trace_id: str
    correlation_id: str
    client_request_id: str | None

    @classmethod
    def for_headers(cls, headers: Mapping[str, str]) -> RequestIds:
        client_request_id = headers.get("client-request-id")
        return cls(str(uuid.uuid4()), client_request_id or str(uuid.uuid4()), client_request_id)

    def response_headers(self) -> dict[str, str]:
        headers = {"x-ms-request-id": self.trace_id, **NO_CACHE_HEADERS}
        if self.client_request_id:
            headers["client-request-id"] = self.client_request_id
        return headers


def entra_timestamp(moment: dt.datetime | None = None) -> str:
    """A6: ``YYYY-MM-DD HH:MM:SSZ``."""
    return (moment or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%d %H:%M:%SZ")


def entra_error_body(error: EntraError, ids: RequestIds, authority_host: str) -> dict[str, Any]:
    """A6: the error JSON, with the trace block appended to error_description."""
    timestamp = entra_timestamp()
    return {
        "error": error.error,
        "error_description": (
            f"{error.message}\r\nTrace ID: {ids.trace_id}\r\nCorrelation ID: {ids.correlation_id}\r\n"
            f"Timestamp: {timestamp}"
        ),
        "error_codes": [error.aadsts],
        "timestamp": timestamp,
        "trace_id": ids.trace_id,
        "correlation_id": ids.correlation_id,
        "error_uri": f"{authority_host}/error?code={error.aadsts}",
    }


def _scope_headers(scope: Scope) -> dict[str, str]:
    return {bytes(k).decode("latin-1").lower(): bytes(v).decode("latin-1") for k, v in scope.get("headers", [])}


class EntraRoutes:
    """The authority origin's routes, bound to one state and the emulator's public origins."""

    def __init__(self, state: EmulatorState, *, authority_host: str, graph_url: str) -> None:
        self.state = state
        self.authority_host = authority_host
        self.graph_url = graph_url

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/common/discovery/instance", self.instance_discovery, methods=["GET"]),
                Route("/{tenant}/oauth2/v2.0/token", self.token, methods=["POST"]),
                Route("/{tenant}/v2.0/.well-known/openid-configuration", self.openid_configuration, methods=["GET"]),
                Route("/{tenant}/discovery/v2.0/keys", self.keys, methods=["GET"]),
                Route("/{tenant}/discovery/keys", self.keys, methods=["GET"]),
            ]
        )

    # -- rendering ------------------------------------------------------------------------------

    def error_response(self, error: EntraError, ids: RequestIds) -> JSONResponse:
        return JSONResponse(
            entra_error_body(error, ids, self.authority_host),
            status_code=error.http_status,
            headers=ids.response_headers(),
        )

    def fault_response(self, scope: Scope, status: int) -> FaultResponse:
        """Renderer for the fault switchboard: Entra-shaped bodies on the authority origin."""
        ids = RequestIds.for_headers(_scope_headers(scope))
        if status == 429:
            error = EntraError(
                AADSTS_THROTTLED, "temporarily_unavailable", status, "There are too many incoming requests."
            )
        else:
            error = EntraError(
                AADSTS_TEMPORARILY_UNAVAILABLE,
                "temporarily_unavailable",
                status,
                "The service is temporarily unavailable.",
            )
        body = json.dumps(entra_error_body(error, ids, self.authority_host)).encode()
        headers = [("content-type", "application/json; charset=utf-8"), *ids.response_headers().items()]
        return FaultResponse(body, headers)

    # -- token endpoint -------------------------------------------------------------------------

    async def token(self, request: Request) -> Response:
        ids = RequestIds.for_headers(request.headers)
        segment = request.path_params["tenant"]
        form = await _read_form(request)
        try:
            tenant = resolve_tenant(self.state, segment)
            client = authenticate_token_request(
                self.state, tenant, form, token_endpoints=self._accepted_audiences(request, segment, tenant)
            )
            issued = self.state.issue_access_token(client.app, client.resource)
        except EntraError as error:
            self._record(segment, form, ids, status=error.http_status, error=error)
            return self.error_response(error, ids)
        self._record(segment, form, ids, status=200, algorithm=client.algorithm, access_token=issued.access_token)
        body: dict[str, Any] = {
            "token_type": "Bearer",
            "expires_in": issued.expires_in,
            "ext_expires_in": issued.ext_expires_in,
            "access_token": issued.access_token,
        }
        if issued.refresh_in is not None:
            body["refresh_in"] = issued.refresh_in
        return JSONResponse(body, headers=ids.response_headers())

    def _accepted_audiences(self, request: Request, segment: str, tenant: Tenant) -> list[str]:
        """A4: the token endpoint URL, as addressed (host and tenant) or with the tenant GUID.

        UNCONFIRMED in the reference whether Entra accepts the domain-name form; accepted here.
        """
        origins = {self.authority_host, _request_origin(request)}
        return [f"{origin}/{name}/oauth2/v2.0/token" for origin in origins for name in {segment, tenant.tenant_id}]

    def _record(
        self,
        segment: str,
        form: Mapping[str, str],
        ids: RequestIds,
        *,
        status: int,
        error: EntraError | None = None,
        algorithm: str | None = None,
        access_token: str | None = None,
    ) -> None:
        self.state.token_requests.append(
            TokenRequestRecord(
                timestamp=self.state.now(),
                tenant=segment,
                client_id=(form.get("client_id") or "").strip().lower() or None,
                status=status,
                error=error.error if error else None,
                aadsts=error.aadsts if error else None,
                request_id=ids.trace_id,
                algorithm=algorithm,
                client_assertion=form.get("client_assertion") or None,
                access_token=access_token,
            )
        )

    # -- discovery ------------------------------------------------------------------------------

    async def openid_configuration(self, request: Request) -> Response:
        ids = RequestIds.for_headers(request.headers)
        segment = request.path_params["tenant"]
        if segment.lower() in MULTI_TENANT_ALIASES:
            path_tenant, issuer_tenant = segment.lower(), "{tenantid}"
        else:
            try:
                tenant = resolve_tenant(self.state, segment)
            except EntraError as error:
                return self.error_response(error, ids)
            path_tenant = issuer_tenant = tenant.tenant_id
        return JSONResponse(self._openid_document(_request_origin(request), path_tenant, issuer_tenant))

    def _openid_document(self, origin: str, tenant: str, issuer_tenant: str) -> dict[str, Any]:
        base = f"{origin}/{tenant}"
        return {
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": TOKEN_ENDPOINT_AUTH_METHODS,
            "jwks_uri": f"{base}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ID_TOKEN_SIGNING_ALGORITHMS,
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": f"{origin}/{issuer_tenant}/v2.0",
            "request_uri_parameter_supported": False,
            "userinfo_endpoint": f"{self.graph_url}/oidc/userinfo",
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
            "http_logout_supported": True,
            "frontchannel_logout_supported": True,
            "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
            "claims_supported": CLAIMS_SUPPORTED,
            "tenant_region_scope": TENANT_REGION_SCOPE,
            "cloud_instance_name": CLOUD_INSTANCE_NAME,
            "cloud_graph_host_name": "graph.windows.net",
            "msgraph_host": urlsplit(self.graph_url).netloc,
            "rbac_url": "https://pas.windows.net",
        }

    async def keys(self, request: Request) -> Response:
        segment = request.path_params["tenant"]
        if segment.lower() not in MULTI_TENANT_ALIASES:
            try:
                resolve_tenant(self.state, segment)
            except EntraError as error:
                return self.error_response(error, RequestIds.for_headers(request.headers))
        return JSONResponse(self.state.jwks())

    async def instance_discovery(self, request: Request) -> Response:
        """A8: msal's instance discovery; it drops the port from authorization_endpoint (D)."""
        ids = RequestIds.for_headers(request.headers)
        endpoint = urlsplit(request.query_params.get("authorization_endpoint", ""))
        own_hosts = {urlsplit(self.authority_host).hostname, request.url.hostname, "localhost", "127.0.0.1"}
        if endpoint.scheme != "https" or endpoint.hostname not in own_hosts:
            error = EntraError(AADSTS_UNKNOWN_INSTANCE, "invalid_instance", 400, "Unknown or invalid instance.")
            return self.error_response(error, ids)
        origin = _request_origin(request)
        tenant = (endpoint.path.strip("/").split("/") or ["common"])[0] or "common"
        netloc = urlsplit(origin).netloc
        return JSONResponse(
            {
                "tenant_discovery_endpoint": f"{origin}/{tenant}/v2.0/.well-known/openid-configuration",
                "api-version": INSTANCE_DISCOVERY_API_VERSION,
                "metadata": [{"preferred_network": netloc, "preferred_cache": netloc, "aliases": [netloc]}],
            }
        )


def _request_origin(request: Request) -> str:
    return f"https://{request.headers.get('host') or request.url.netloc}"


async def _read_form(request: Request) -> dict[str, str]:
    """Form fields, first value each; a body of another type reads as empty (then 900144)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != FORM_CONTENT_TYPE:
        return {}
    body = (await request.body()).decode("utf-8", errors="replace")
    return {name: values[0] for name, values in parse_qs(body, keep_blank_values=True).items()}
