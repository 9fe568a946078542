"""Delete, copy and move driveItems inside SharePoint, without the bytes passing through the worker.

- delete: ``DELETE /drives/{d}/items/{id}``; a folder goes with everything below it.
- copy: ``POST /drives/{d}/items/{id}/copy`` with the target folder's drive and id, answered
  ``202 Accepted`` with a monitor URL that is polled, without the token, until the copy is done
  (https://learn.microsoft.com/graph/api/driveitem-copy,
  https://learn.microsoft.com/graph/long-running-actions-overview).
- move / rename: ``PATCH /drives/{d}/items/{id}`` with a new ``parentReference`` and ``name``;
  only inside one drive (https://learn.microsoft.com/graph/api/driveitem-move).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from airflow_provider_graphcert.errors import GraphCertError, GraphConflictError, GraphRequestError
from airflow_provider_graphcert.graph.client import GraphClient
from airflow_provider_graphcert.graph.retry import parse_retry_after
from airflow_provider_graphcert.sharepoint.item_actions import ItemActions

log = logging.getLogger(__name__)

# Monitor statuses of a long-running action (asyncJobStatus) that mean "not finished yet".
_COPY_PENDING = frozenset({"notStarted", "inProgress", "waiting", "cancelPending"})
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


@dataclass(frozen=True)
class CopyWait:
    """How long to poll a copy's monitor URL: growing pauses, Retry-After honoured, a total bound."""

    first_pause: float = 0.25
    max_pause: float = 5.0
    max_total: float = 1800.0


class CopyFailedError(GraphCertError):
    """Graph accepted a copy and then reported it failed (or never finished within the wait)."""


class ItemOperations:
    def __init__(self, client: GraphClient, *, copy_wait: CopyWait | None = None) -> None:
        self.client = client
        self.copy_wait = copy_wait or CopyWait()

    def delete(self, drive_id: str, item_id: str) -> None:
        """Delete; an item already gone raises GraphNotFoundError (rm of a missing path)."""
        ItemActions(self.client).delete(drive_id, item_id, missing_ok=False)

    def move(self, drive_id: str, item_id: str, parent_id: str, name: str, *, replaces: str | None = None) -> None:
        """Rename and/or move inside one drive; ``replaces`` is the id of a file already at the target.

        The same PATCH as the hook's move (sharepoint/item_actions.py), refusing a taken name; a
        file in the way is deleted once Graph refused the move (409), and the move is sent again:
        if that fails, the source is still in place.
        """
        actions = ItemActions(self.client)
        try:
            actions.move(drive_id, item_id, parent_id=parent_id, parent_path="", new_name=name, conflict="fail")
        except GraphConflictError:
            if replaces is None:
                raise
            self.delete(drive_id, replaces)
            actions.move(drive_id, item_id, parent_id=parent_id, parent_path="", new_name=name, conflict="fail")

    def copy(self, drive_id: str, item_id: str, target_drive_id: str, parent_id: str, name: str) -> None:
        """Copy an item (a folder with its contents) under ``parent_id``, replacing a same-named file."""
        response = self.client.request(
            "POST",
            f"drives/{drive_id}/items/{item_id}/copy",
            params={"@microsoft.graph.conflictBehavior": "replace"},
            json={"parentReference": {"driveId": target_drive_id, "id": parent_id}, "name": name},
            allow_redirects=False,
            # With 'replace', a copy repeated after a lost reply lands on the same name and content.
            idempotent=True,
        )
        response.close()
        monitor = response.headers.get("Location")
        if response.status_code != 202 or not monitor:
            raise GraphRequestError(
                f"Graph did not accept the copy of item {item_id} for monitoring (HTTP {response.status_code}, "
                f"{'a' if monitor else 'no'} Location header).",
                status=response.status_code,
                request_id=response.headers.get("request-id"),
            )
        self._wait_for_copy(monitor, name)

    def _wait_for_copy(self, monitor: str, name: str) -> None:
        waited, pause = 0.0, self.copy_wait.first_pause
        while True:
            # The monitor URL is pre-authenticated and may be on another host: no token goes there.
            response = self.client.request("GET", monitor, authenticated=False, raise_for_status=False)
            response.close()
            if response.status_code in _REDIRECTS:
                return  # the finished item; older services redirect there instead of reporting "completed"
            status = _status(response.json() if response.content else {})
            if response.status_code >= 400 or status == "failed":
                raise CopyFailedError(
                    f"Graph could not copy {name!r}: the copy ended as {status or 'HTTP ' + str(response.status_code)}."
                )
            if status == "completed":
                return
            if status not in _COPY_PENDING:
                raise CopyFailedError(f"Graph's copy monitor for {name!r} answered an unknown status {status!r}.")
            delay = parse_retry_after(response.headers.get("Retry-After"))
            delay = min(delay if delay is not None else pause, self.copy_wait.max_pause)
            if waited + delay > self.copy_wait.max_total:
                raise CopyFailedError(
                    f"The copy of {name!r} was still {status} after {waited:.0f} s; it may finish later on its own."
                )
            self.client.sleep(delay)
            waited += delay
            pause = min(pause * 2, self.copy_wait.max_pause)


def _status(report: Any) -> str | None:
    value = report.get("status") if isinstance(report, dict) else None
    return str(value) if value is not None else None
