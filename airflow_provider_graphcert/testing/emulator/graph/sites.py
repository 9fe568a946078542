"""SharePoint sites and their generic lists (docs/microsoft-rules.md §B6, §B11)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from airflow_provider_graphcert.testing.emulator.graph.common import item_not_found, name_already_exists, split_path
from airflow_provider_graphcert.testing.emulator.graph.drives import Drive

if TYPE_CHECKING:
    from airflow_provider_graphcert.testing.emulator.graph.state import GraphState


# -- sites and lists ---------------------------------------------------------------------------


@dataclass(eq=False)
class ListItem:
    id: str
    fields: dict[str, Any]
    created: dt.datetime
    modified: dt.datetime
    etag_guid: str = field(default_factory=lambda: str(uuid.uuid4()))
    version: int = 1

    @property
    def etag(self) -> str:
        return f'"{self.etag_guid},{self.version}"'


class SharePointList:
    """A generic list: columns and items whose ``fields`` hold the column values."""

    def __init__(self, site: Site, name: str, columns: Sequence[str], description: str = "") -> None:
        self.site = site
        self.id = str(uuid.uuid4())
        self.name = name.replace(" ", "")
        self.display_name = name
        self.description = description
        self.columns = list(columns)
        # Columns SharePoint can filter and sort by without the non-indexed-query header (ID always).
        self.indexed_columns: set[str] = set()
        self.created = site.state.now()
        self.modified = self.created
        self.items: dict[int, ListItem] = {}
        self._next_id = 1

    @property
    def web_url(self) -> str:
        return self.site.web_url_for(f"Lists/{self.name}")

    def add_item(self, fields: Mapping[str, Any]) -> ListItem:
        with self.site.state.lock:
            now = self.site.state.now()
            item = ListItem(str(self._next_id), dict(fields), now, now)
            self.items[self._next_id] = item
            self._next_id += 1
            self.modified = now
            return item

    def update_fields(self, item: ListItem, fields: Mapping[str, Any]) -> ListItem:
        """PATCH …/items/{id}/fields: merge the values in; a new version and eTag."""
        with self.site.state.lock:
            item.fields.update(fields)
            item.version += 1
            item.modified = self.site.state.now()
            self.modified = item.modified
            return item

    def delete_item(self, item: ListItem) -> None:
        with self.site.state.lock:
            self.items.pop(int(item.id), None)
            self.modified = self.site.state.now()

    def item(self, item_id: str) -> ListItem:
        try:
            return self.items[int(item_id)]
        except (KeyError, ValueError):
            raise item_not_found(f"List item {item_id} not found.") from None

    def items_page(self, *, after: int, top: int) -> tuple[list[ListItem], int | None]:
        """Items with id > ``after`` in id order, and the last id when more follow."""
        with self.site.state.lock:
            ids = sorted(i for i in self.items if i > after)
            chosen = ids[:top]
            return [self.items[i] for i in chosen], (chosen[-1] if len(ids) > top else None)


class Site:
    """A SharePoint site: ``id`` is "{hostname},{siteCollectionGuid},{webGuid}" (B6)."""

    def __init__(self, state: GraphState, hostname: str, path: str, display_name: str) -> None:
        self.state = state
        self.hostname = hostname.lower()
        self.path = "/" + "/".join(split_path(path))
        self.id = f"{self.hostname},{uuid.uuid4()},{uuid.uuid4()}"
        self.display_name = display_name
        self.description = ""
        self.created = state.now()
        self.drives: dict[str, Drive] = {}
        self.lists: dict[str, SharePointList] = {}

    @property
    def name(self) -> str:
        segments = split_path(self.path)
        return segments[-1] if segments else self.display_name

    @property
    def is_root(self) -> bool:
        return self.path == "/"

    @property
    def web_url(self) -> str:
        return f"https://{self.hostname}{'' if self.is_root else self.path}"

    def web_url_for(self, relative: str) -> str:
        return f"{self.web_url}/{quote(relative)}"

    def add_library(self, name: str, *, description: str = "", rewrite_office_documents: bool = True) -> Drive:
        """A document library. 'Documents' lives at 'Shared Documents', as on every real site.

        ``rewrite_office_documents``: Office files uploaded through Graph are stored with
        SharePoint's metadata added, so their size and quickXorHash differ from what was sent, as
        on real SharePoint. Pass False (or set ``drive.rewrite_office_documents``) to store bytes as sent.
        """
        with self.state.lock:
            if any(d.name.casefold() == name.casefold() for d in self.drives.values()):
                raise name_already_exists(name)
            url_name = "Shared Documents" if name == "Documents" else name
            drive = Drive(self, name, url_name, description)
            drive.rewrite_office_documents = rewrite_office_documents
            self.drives[drive.id] = drive
            self.state.drives[drive.id] = drive
            return drive

    @property
    def default_drive(self) -> Drive:
        """/sites/{id}/drive: the 'Documents' library, else the first one added."""
        with self.state.lock:
            drives = list(self.drives.values())
        for drive in drives:
            if drive.name == "Documents":
                return drive
        if not drives:
            raise item_not_found(f"The site {self.web_url} has no document library.")
        return drives[0]

    def add_list(
        self,
        name: str,
        columns: Sequence[str] = (),
        items: Iterable[Mapping[str, Any]] = (),
        *,
        indexed: Iterable[str] = (),
    ) -> SharePointList:
        """A generic list. ``indexed`` names the columns SharePoint has an index on: $filter and
        $orderby on any other column need ``Prefer: HonorNonIndexedQueriesWarningMayFailRandomly``."""
        with self.state.lock:
            sp_list = SharePointList(self, name, columns)
            sp_list.indexed_columns = set(indexed)
            self.lists[sp_list.id] = sp_list
            for fields in items:
                sp_list.add_item(fields)
            return sp_list

    def find_list(self, key: str) -> SharePointList:
        """A list by id, display name or URL name (Graph accepts the title in place of the id)."""
        with self.state.lock:
            if key.lower() in self.lists:
                return self.lists[key.lower()]
            for sp_list in self.lists.values():
                if key.casefold() in {sp_list.display_name.casefold(), sp_list.name.casefold()}:
                    return sp_list
        raise item_not_found(f"List '{key}' does not exist at site with URL '{self.web_url}'.")
