"""After-transfer actions on a driveItem: move to another folder, rename, delete.

The usual SharePoint ETL pattern: pull the new files, then move them to ``Archive`` (or delete
them) so the next run does not see them again. Graph moves and renames with one PATCH of
``parentReference`` and ``name`` (https://learn.microsoft.com/graph/api/driveitem-move), within one
drive only, and deletes with DELETE (https://learn.microsoft.com/graph/api/driveitem-delete; the
item goes to the site's recycle bin). Both take ``If-Match`` with the eTag a job saw, so a file
that changed since it was downloaded is left where it is instead of being archived unread.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from airflow_provider_graphcert.errors import (
    ConfigurationError,
    GraphCertError,
    GraphConflictError,
    GraphNotFoundError,
    GraphRequestError,
)
from airflow_provider_graphcert.graph.client import GraphClient
from airflow_provider_graphcert.sharepoint.local_names import UnsafeNameError, safe_segment
from airflow_provider_graphcert.sharepoint.upload import ConflictBehavior

log = logging.getLogger(__name__)

# Graph's answer when If-Match no longer matches the item's eTag.
PRECONDITION_FAILED = 412


class ItemChangedError(GraphCertError):
    """The item changed since the job read it (If-Match failed): the action was not done."""


@dataclass(frozen=True)
class MovedItem:
    item_id: str
    name: str
    parent_path: str  # where it is now, relative to the library root
    etag: str | None

    def as_dict(self) -> dict[str, Any]:
        return {"item_id": self.item_id, "name": self.name, "folder": self.parent_path, "eTag": self.etag}


def check_new_name(name: str | None) -> str | None:
    if name is None:
        return None
    try:
        return safe_segment(name.strip()) if name.strip() else _empty_name()
    except UnsafeNameError as exc:
        raise ConfigurationError(f"new_name: {exc}; give a file name without a folder.", field="new_name") from None


def _empty_name() -> str:
    raise ConfigurationError("new_name is empty; give the item's new file name, or leave it out.", field="new_name")


class ItemActions:
    def __init__(self, client: GraphClient) -> None:
        self.client = client

    def move(
        self,
        drive_id: str,
        item_id: str,
        *,
        parent_id: str | None,
        parent_path: str,
        new_name: str | None,
        conflict: ConflictBehavior = "fail",
        if_match: str | None = None,
    ) -> MovedItem:
        """Move into the folder ``parent_id`` and/or rename; ``parent_path`` only names it in messages."""
        body: dict[str, Any] = {}
        if parent_id is not None:
            body["parentReference"] = {"id": parent_id}
        if new_name is not None:
            body["name"] = new_name
        if not body:
            raise ConfigurationError("Give a destination folder, a new name, or both.", field="to_folder")
        address = f"drives/{drive_id}/items/{item_id}"
        try:
            item = self.client.send_json(
                "PATCH",
                address,
                body,
                params={"@microsoft.graph.conflictBehavior": conflict},
                headers={"If-Match": if_match} if if_match else None,
                # The same PATCH twice leaves the item where the first put it, except with 'rename'
                # ("name 1.ext" for a name the first attempt itself took).
                idempotent=conflict != "rename",
            )
        except GraphConflictError as exc:
            landed = self._own_earlier_move(address, exc, parent_id, new_name)
            if landed is None:
                raise GraphConflictError(
                    f"Cannot move to '{_joined(parent_path, new_name)}': an item with that name is already there and "
                    f"conflict_behavior is '{conflict}'; use 'replace' or 'rename', or choose another name. "
                    f"[request-id={exc.request_id}]",
                    status=exc.status,
                    code=exc.code,
                    request_id=exc.request_id,
                ) from None
            item = landed
        except GraphRequestError as exc:
            if exc.status == PRECONDITION_FAILED:
                raise ItemChangedError(
                    f"Not moved: the item {item_id} changed since this job read it (eTag {if_match}); it stays where "
                    "it is so that the next run sees the new version."
                ) from None
            raise
        return _moved(item, parent_path, new_name)

    def _own_earlier_move(
        self, address: str, exc: GraphConflictError, parent_id: str | None, new_name: str | None
    ) -> dict[str, Any] | None:
        """After a lost reply, the repeated PATCH may meet the item its first attempt already moved."""
        if exc.attempts < 2:
            return None
        item: dict[str, Any] = self.client.get_json(address)
        parent = (item.get("parentReference") or {}).get("id")
        if (parent_id is None or parent == parent_id) and (new_name is None or item.get("name") == new_name):
            return item
        return None

    def delete(self, drive_id: str, item_id: str, *, if_match: str | None = None, missing_ok: bool = True) -> bool:
        """Delete (to the recycle bin); False when it was already gone before this call.

        With ``missing_ok=False`` an item that was already gone raises GraphNotFoundError.
        """
        try:
            self.client.request(
                "DELETE", f"drives/{drive_id}/items/{item_id}", headers={"If-Match": if_match} if if_match else None
            ).close()
        except GraphNotFoundError as exc:
            # A repeat after a lost reply meets the deletion its first attempt did: that is success.
            if exc.attempts >= 2:
                return True
            if missing_ok:
                return False
            raise
        except GraphRequestError as exc:
            if exc.status == PRECONDITION_FAILED:
                raise ItemChangedError(
                    f"Not deleted: the item {item_id} changed since this job read it (eTag {if_match}); it is kept "
                    "so that the next run sees the new version."
                ) from None
            raise
        return True


def _joined(folder: str, name: str | None) -> str:
    return "/".join(p for p in (folder, name or "") if p) or "/"


def _moved(item: Any, parent_path: str, new_name: str | None) -> MovedItem:
    if not isinstance(item, dict) or not isinstance(item.get("id"), str):
        raise GraphCertError(
            "Graph's reply to a move is not a driveItem; check the destination folder in SharePoint "
            f"('{_joined(parent_path, new_name)}')."
        )
    return MovedItem(
        item_id=item["id"],
        name=str(item.get("name", new_name or "")),
        parent_path=parent_path,
        etag=item.get("eTag") if isinstance(item.get("eTag"), str) else None,
    )
