"""One authenticated Graph call as the handlers see it: roles, body reading, common errors."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from airflow_provider_graphcert.testing.emulator.graph.addressing import ItemAddress
from airflow_provider_graphcert.testing.emulator.graph.common import GraphError, Identity, invalid_request
from airflow_provider_graphcert.testing.emulator.graph.drives import Drive, Item
from airflow_provider_graphcert.testing.emulator.graph.render import actor_from_claims
from airflow_provider_graphcert.testing.emulator.graph.state import GraphState

ValidateToken: TypeAlias = Callable[[str], dict[str, Any]]
Handler: TypeAlias = Callable[["GraphCall"], Awaitable[Response]]

# Application permissions per resource (least privileged first, as in each API page's table).
SITE_READ_ROLES = frozenset({"Sites.Read.All", "Sites.ReadWrite.All", "Sites.Manage.All", "Sites.FullControl.All"})
SITE_WRITE_ROLES = frozenset({"Sites.ReadWrite.All", "Sites.Manage.All", "Sites.FullControl.All"})
FILES_READ_ROLES = SITE_READ_ROLES | {"Files.Read.All", "Files.ReadWrite.All"}
FILES_WRITE_ROLES = SITE_WRITE_ROLES | {"Files.ReadWrite.All"}
USERS_READ_ROLES = frozenset({"User.Read.All", "User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"})
GROUPS_READ_ROLES = frozenset(
    {"Group.Read.All", "Group.ReadWrite.All", "GroupMember.Read.All", "Directory.Read.All", "Directory.ReadWrite.All"}
)


class TokenRejected(Exception):
    """Raised by ``validate_token``: the bearer token is not acceptable (rendered as a Graph error)."""

    def __init__(self, status: int, code: str, message: str, *, www_authenticate: str | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.www_authenticate = www_authenticate


# -- request plumbing ----------------------------------------------------------------------------


@dataclass
class GraphCall:
    """One authenticated Graph request as the handlers see it."""

    request: Request
    request_id: str
    claims: dict[str, Any]
    options: dict[str, str] = field(default_factory=dict)

    @property
    def method(self) -> str:
        return self.request.method.upper()

    @property
    def actor(self) -> Identity:
        return actor_from_claims(self.claims)

    def require(self, allowed: frozenset[str], *, directory: bool = False) -> None:
        """Application roles (``roles``) or, for delegated tokens, scopes (``scp``) must grant access."""
        roles = self.claims.get("roles")
        scopes = self.claims.get("scp")
        if not isinstance(roles, list) and not isinstance(scopes, str):
            raise GraphError(403, "accessDenied", "Either scp or roles claim need to be present in the token.")
        granted = {str(role) for role in (roles if isinstance(roles, list) else [])}
        granted |= set(scopes.split()) if isinstance(scopes, str) else set()
        if allowed & granted:
            return
        if directory:
            raise GraphError(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
        raise GraphError(403, "accessDenied", "Access denied")


def site_reads_site_data(rest: str) -> bool:
    """The site object and its lists need Sites.* roles; its drives also accept Files.* (API pages)."""
    return not (rest == "/drives" or rest.startswith(("/drive/", "/drives/")) or rest == "/drive")


def method_not_allowed() -> GraphError:
    return GraphError(405, "Request_BadRequest", "Specified HTTP method is not allowed for the request target.")


def segment_not_found(segment: str) -> GraphError:
    return GraphError(400, "BadRequest", f"Resource not found for the segment '{segment}'.")


async def read_json(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        raise invalid_request("Unable to read JSON request payload.") from None
    if not isinstance(data, dict):
        raise invalid_request("The request body must be a JSON object.")
    return data


async def receive_body(request: Request, sink: Callable[[bytes], None]) -> GraphError | None:
    """Feed the body to ``sink``; after a sink error keep draining so the client can read the answer."""
    failure: GraphError | None = None
    async for chunk in request.stream():
        if failure is None and chunk:
            try:
                sink(chunk)
            except GraphError as exc:
                failure = exc
    return failure


async def drain(request: Request) -> None:
    """Read what is left of a body we answer early, so the client can send it all and read our reply."""
    try:
        async for _ in request.stream():
            pass
    except (RuntimeError, ClientDisconnect):
        # Already consumed, or the client went away: nothing left to read.
        pass


def bearer_token(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if not header or not token.strip():
        raise TokenRejected(401, "InvalidAuthenticationToken", "Access token is empty.")
    if scheme.lower() != "bearer":
        raise TokenRejected(401, "InvalidAuthenticationToken", "Access token validation failure. Invalid audience.")
    return token.strip()


class RouteBase:
    """What every Graph route set shares: the state, the files host and method checks."""

    state: GraphState
    files_url: Callable[[], str]

    def files_base(self) -> str:
        return self.files_url().rstrip("/")

    @staticmethod
    def _only(call: GraphCall, *methods: str) -> None:
        if call.method not in methods and not (call.method == "HEAD" and "GET" in methods):
            raise method_not_allowed()

    @staticmethod
    def resolve(drive: Drive, address: ItemAddress) -> Item:
        """The item an address names: from the root or an item id, then down its relative path."""
        base = drive.item(address.item_id) if address.item_id is not None else drive.root
        return drive.resolve(address.path, base=base) if address.path is not None else base
