"""The Graph origin (mounted under /v1.0): one handler class made of the per-resource route sets."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route, Router

from airflow_provider_graphcert.testing.emulator.graph.batch import BatchRoutes, InnerFaults
from airflow_provider_graphcert.testing.emulator.graph.calls import (
    GraphCall,
    Handler,
    TokenRejected,
    ValidateToken,
    bearer_token,
    drain,
    segment_not_found,
)
from airflow_provider_graphcert.testing.emulator.graph.common import GraphError, not_implemented
from airflow_provider_graphcert.testing.emulator.graph.directory_routes import DirectoryRoutes
from airflow_provider_graphcert.testing.emulator.graph.odata import query_options
from airflow_provider_graphcert.testing.emulator.graph.render import WWW_AUTHENTICATE, error_response, stamp
from airflow_provider_graphcert.testing.emulator.graph.site_routes import SiteRoutes
from airflow_provider_graphcert.testing.emulator.graph.state import GraphState

# Graph v1.0's other entity sets and singletons: a 501 names them, a misspelt segment stays a 400.
GRAPH_ENTITY_SETS = frozenset(
    {"admin", "agreements", "applications", "applicationTemplates", "auditLogs", "authenticationMethodPolicies",
     "chats", "communications", "compliance", "connections", "contacts", "contracts", "copilot", "dataPolicyOperations",
     "deviceAppManagement", "deviceManagement", "devices", "directory", "directoryObjects", "directoryRoles",
     "domains", "drive", "education", "employeeExperience", "external", "groupLifecyclePolicies", "identity",
     "identityGovernance", "identityProtection", "invitations", "oauth2PermissionGrants", "organization",
     "permissionGrants", "places", "planner", "policies", "print", "privacy", "reports", "roleManagement",
     "schemaExtensions", "search", "security", "servicePrincipals", "shares", "solutions", "storage",
     "subscribedSkus", "subscriptions", "teams", "teamwork", "tenantRelationships", "users", "groups",
     "sites", "drives", "workbooks"}
)  # fmt: skip


class GraphApi(SiteRoutes, DirectoryRoutes, BatchRoutes):
    """Handlers of the Graph origin; ``routes()`` lists them for a Mount at /v1.0."""

    def __init__(
        self,
        state: GraphState,
        validate_token: ValidateToken,
        files_url: Callable[[], str],
        inner_faults: InnerFaults | None = None,
    ) -> None:
        self.state = state
        self.validate_token = validate_token
        self.files_url = files_url
        self.inner_faults = inner_faults
        self.router: Router | None = None

    def routes(self) -> list[BaseRoute]:
        any_method = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]
        table: list[tuple[str, Handler]] = [
            ("/$batch", self.batch),
            ("/sites", self.site_collection),
            ("/sites/{rest:path}", self.sites),
            ("/drives", self.drive_collection),
            ("/drives/{rest:path}", self.drives),
            ("/users", self.list_users),
            ("/users/$count", self.count_users),
            ("/users/{key}", self.get_user),
            ("/users/{key}/{rest:path}", self.directory_relation),
            ("/groups", self.list_groups),
            ("/groups/$count", self.count_groups),
            ("/groups/{key}", self.get_group),
            ("/groups/{key}/{rest:path}", self.directory_relation),
            ("/me", self.me),
            ("/me/{rest:path}", self.me),
            ("/{rest:path}", self.unknown),
        ]
        routes: list[BaseRoute] = [Route(path, self.endpoint(handler), methods=any_method) for path, handler in table]
        # $batch replays inner requests through these same routes.
        self.router = Router(routes=list(routes))
        return routes

    def endpoint(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            request_id = str(uuid.uuid4())
            client_request_id = request.headers.get("client-request-id")
            try:
                claims = self.validate_token(bearer_token(request))
                call = GraphCall(request, request_id, claims, query_options(request))
                response = await handler(call)
            except TokenRejected as exc:
                headers = {"WWW-Authenticate": exc.www_authenticate or WWW_AUTHENTICATE}
                rejected = GraphError(exc.status, exc.code, exc.message, headers=headers)
                response = error_response(rejected, request_id, client_request_id)
                await drain(request)
            except GraphError as exc:
                response = error_response(exc, request_id, client_request_id)
                await drain(request)
            except ClientDisconnect:
                # The client gave up mid-request (its timeout, a cut connection): nobody is left to answer.
                response = Response(status_code=400)
            return stamp(response, request_id, client_request_id)

        return endpoint

    async def unknown(self, call: GraphCall) -> Response:
        segment = call.request.path_params.get("rest", "").split("/")[0]
        if segment in GRAPH_ENTITY_SETS:
            raise not_implemented(f"/{segment}")
        raise segment_not_found(segment)


def graph_routes(
    state: GraphState,
    *,
    validate_token: ValidateToken,
    files_url: Callable[[], str],
    inner_faults: InnerFaults | None = None,
) -> list[BaseRoute]:
    """Routes of the Graph origin, to mount at /v1.0.

    ``validate_token(bearer)`` returns the token's claims (with ``roles``) or raises
    ``TokenRejected``. ``files_url()`` gives the files origin (scheme://host:port) that download
    and upload-session URLs point to. ``inner_faults(method, path)``
    returns ``(status, retry_after)`` for a $batch inner request that should fail, else None.
    """
    return GraphApi(state, validate_token, files_url, inner_faults).routes()


def service_root_routes(graph: Sequence[BaseRoute]) -> list[BaseRoute]:
    """The Graph host: ``graph`` mounted at /v1.0, and Graph-shaped JSON errors for the rest.

    /v1.0/$metadata and /beta answer 501 (the emulator serves no CSDL and no beta API); any
    other version is Graph's 400.
    """

    async def refuse(request: Request, error: GraphError) -> Response:
        request_id = str(uuid.uuid4())
        client_request_id = request.headers.get("client-request-id")
        await drain(request)
        return stamp(error_response(error, request_id, client_request_id), request_id, client_request_id)

    async def metadata(request: Request) -> Response:
        return await refuse(request, not_implemented("the CSDL document ($metadata)"))

    async def beta(request: Request) -> Response:
        return await refuse(request, not_implemented("the beta API (/beta); use /v1.0"))

    async def other_version(request: Request) -> Response:
        version = request.path_params["rest"].split("/")[0]
        return await refuse(request, GraphError(400, "BadRequest", f"Invalid version: {version}"))

    methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]
    return [
        Route("/v1.0/$metadata", metadata, methods=methods),
        Mount("/v1.0", routes=list(graph)),
        Route("/beta", beta, methods=methods),
        Route("/beta/{rest:path}", beta, methods=methods),
        Route("/{rest:path}", other_version, methods=methods),
    ]
