"""SharePointFileSystem: fsspec over the provider's Graph client (no Airflow here).

Paths are ``host/sites/<site>/<library>/<folders>/<file>``, the browser address without its
scheme (addressing.py). A path that stops at a site lists the site's document libraries as
directories. Listings are cached for ``listings_expiry_time`` seconds (60 by default: SharePoint
is shared, other people change it) and dropped for every path this file system writes, moves or
removes. Copies and moves run server-side in Graph; deletes of folders are one request.
"""

from __future__ import annotations

import errno
import logging
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from fsspec.spec import AbstractFileSystem
from fsspec.utils import other_paths

from airflow_provider_graphcert.errors import ConfigurationError, GraphConflictError, GraphNotFoundError
from airflow_provider_graphcert.fs import addressing
from airflow_provider_graphcert.fs.files import SharePointFile, TextWriter
from airflow_provider_graphcert.fs.server_side import ItemOperations
from airflow_provider_graphcert.graph.client import GraphClient
from airflow_provider_graphcert.sharepoint.download import FileDownloader, remote_hash, remote_mtime
from airflow_provider_graphcert.sharepoint.locations import encode_path
from airflow_provider_graphcert.sharepoint.resolver import Drive, SharePointResolver
from airflow_provider_graphcert.sharepoint.upload import ConflictBehavior, FileUploader, FolderMaker

log = logging.getLogger(__name__)

DEFAULT_LISTINGS_EXPIRY_SECONDS = 60
# Graph's own driveItem fields worth keeping in info(); pre-authenticated URLs are left out (secrets).
_INFO_FIELDS = ("id", "eTag", "cTag", "webUrl", "createdDateTime", "lastModifiedDateTime")


@dataclass(frozen=True)
class SitePlace:
    """A path that stops at a site: its document libraries are its directories."""

    site_id: str
    web_url: str


@dataclass(frozen=True)
class DrivePlace:
    """A path inside a document library: ``inner`` is relative to the library root ('' for it)."""

    drive: Drive
    inner: str

    @property
    def address(self) -> str:
        if not self.inner:
            return f"drives/{self.drive.id}/root"
        return f"drives/{self.drive.id}/root:/{encode_path(self.inner)}:"

    @property
    def parent_inner(self) -> str:
        return self.inner.rpartition("/")[0]

    @property
    def name(self) -> str:
        return self.inner.rpartition("/")[2]


class SharePointFileSystem(AbstractFileSystem):  # type: ignore[misc]  # fsspec is untyped
    protocol = (addressing.PROTOCOL,)
    root_marker = ""
    # An instance holds a live client; the Airflow-facing subclass (spo.py) is the cachable one.
    cachable = False

    def __init__(self, client: GraphClient, *, spool_dir: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("listings_expiry_time", DEFAULT_LISTINGS_EXPIRY_SECONDS)
        super().__init__(**kwargs)
        self.client = client
        self.spool_dir = spool_dir
        self.resolver = SharePointResolver(client)
        self.operations = ItemOperations(client)
        self._folder_makers: dict[str, FolderMaker] = {}

    # -- addressing ------------------------------------------------------------------------------

    @classmethod
    def _strip_protocol(cls, path: Any) -> Any:
        if isinstance(path, list):
            return [cls._strip_protocol(p) for p in path]
        return addressing.strip_protocol(os.fspath(path) if isinstance(path, os.PathLike) else str(path))

    @staticmethod
    def _get_kwargs_from_urls(path: str) -> dict[str, Any]:
        return {}

    def place(self, path: str) -> SitePlace | DrivePlace:
        """The site or library location of a path (cached per file system after the first call)."""
        spo = addressing.split_path(path)
        if spo.is_host:
            raise FileNotFoundError(
                f"{spo.path}: name a site, e.g. {spo.hostname}/sites/Finance (listing every site of a host is "
                "not supported)."
            )
        site_path, rest = spo.site_path, list(spo.rest)
        site = self.resolver.site(spo.hostname, site_path)
        if site is None:
            raise FileNotFoundError(f"{spo.path}: no site at https://{spo.hostname}/{site_path}.{spo.hint()}")
        while rest:
            drive = self._library(str(site["id"]), rest[0])
            if drive is not None:
                return DrivePlace(drive, "/".join(rest[1:]))
            site_path = f"{site_path}/{rest[0]}".strip("/")
            subsite = self.resolver.site(spo.hostname, site_path)
            if subsite is None:
                raise FileNotFoundError(
                    f"{spo.path}: '{rest[0]}' is neither a document library nor a subsite.{spo.hint()}"
                )
            site, rest = subsite, rest[1:]
        return SitePlace(str(site["id"]), str(site.get("webUrl", "")))

    def drive_place(self, path: str) -> DrivePlace:
        place = self.place(path)
        if isinstance(place, SitePlace):
            raise IsADirectoryError(
                errno.EISDIR, "Is a site; name a document library and a path in it", self._strip_protocol(path)
            )
        return place

    def _library(self, site_id: str, name: str) -> Drive | None:
        wanted = name.casefold()
        for drive in self.resolver.drives(site_id):
            if wanted in (drive.url_name.casefold(), drive.name.casefold()):
                return drive
        return None

    # -- items and listings ----------------------------------------------------------------------

    def item(self, place: DrivePlace, path: str) -> dict[str, Any]:
        """The driveItem at a place, straight from Graph (fresh size, hash and download URL)."""
        try:
            item: dict[str, Any] = self.client.get_json(place.address)
        except GraphNotFoundError:
            raise FileNotFoundError(errno.ENOENT, "No such file or folder", path) from None
        return item

    @staticmethod
    def item_info(name: str, item: dict[str, Any]) -> dict[str, Any]:
        """fsspec's info dict: name, size, type, plus mtime, eTag, quickXorHash and Graph's ids."""
        is_folder = "folder" in item
        info: dict[str, Any] = {
            "name": name,
            "size": int(item.get("size") or 0),
            "type": "directory" if is_folder else "file",
            "mtime": remote_mtime(item),
            "quickXorHash": remote_hash(item),
            "mimetype": (item.get("file") or {}).get("mimeType"),
        }
        for field in _INFO_FIELDS:
            info[field] = item.get(field)
        info["driveId"] = (item.get("parentReference") or {}).get("driveId")
        if is_folder:
            info["childCount"] = (item.get("folder") or {}).get("childCount")
        return info

    def ls(self, path: str, detail: bool = True, refresh: bool = False, **kwargs: Any) -> list[Any]:
        path = self._strip_protocol(path)
        listing = None if refresh else self.dircache.get(path)
        if listing is None:
            listing = self._list(path)
            self.dircache[path] = listing
        return listing if detail else [entry["name"] for entry in listing]

    def _list(self, path: str) -> list[dict[str, Any]]:
        place = self.place(path)
        if isinstance(place, SitePlace):
            return [_library_info(f"{path}/{drive.url_name}", drive) for drive in self.resolver.drives(place.site_id)]
        item = self.item(place, path)
        if "folder" not in item:
            return [self.item_info(path, item)]
        children = self.client.iter_items(f"drives/{place.drive.id}/items/{item['id']}/children")
        return [self.item_info(f"{path}/{child['name']}", child) for child in children]

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        path = self._strip_protocol(path)
        parent = self._parent(path)
        cached = self.dircache.get(parent) if parent and not kwargs.get("refresh") else None
        if cached is not None:
            for entry in cached:
                if entry["name"] == path:
                    return dict(entry)
        place = self.place(path)
        if isinstance(place, SitePlace):
            return {"name": path, "size": 0, "type": "directory", "id": place.site_id, "webUrl": place.web_url}
        return self.item_info(path, self.item(place, path))

    def invalidate_cache(self, path: str | None = None) -> None:
        if path is None:
            self.dircache.clear()
        else:
            path = self._strip_protocol(path)
            for key in list(self.dircache):
                if key == path or key.startswith(f"{path}/"):
                    self.dircache.pop(key, None)
            self.dircache.pop(self._parent(path), None)
        super().invalidate_cache(path)

    def created(self, path: str) -> datetime:
        return _timestamp(self.info(path).get("createdDateTime"), path)

    def modified(self, path: str) -> datetime:
        return _timestamp(self.info(path).get("lastModifiedDateTime"), path)

    def ukey(self, path: str) -> str:
        """Changes whenever the file does: Graph's eTag."""
        return str(self.info(path).get("eTag") or super().ukey(path))

    # -- files -----------------------------------------------------------------------------------

    def open(self, path: str, mode: str = "rb", **kwargs: Any) -> Any:
        if "b" in mode or "r" in mode:
            return super().open(path, mode, **kwargs)
        text_options = {name: kwargs.pop(name) for name in ("encoding", "errors", "newline") if name in kwargs}
        return TextWriter(super().open(path, mode.replace("t", "") + "b", **kwargs), **text_options)

    def _open(
        self,
        path: str,
        mode: str = "rb",
        block_size: int | None = None,
        autocommit: bool = True,
        cache_options: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> SharePointFile:
        path = self._strip_protocol(path)
        place = self.drive_place(path)
        item = None
        if mode == "rb":
            item = self.item(place, path)
            if "folder" in item:
                raise IsADirectoryError(errno.EISDIR, "Is a folder", path)
        return SharePointFile(
            self,
            path,
            place,
            mode,
            item=item,
            block_size=block_size,
            autocommit=autocommit,
            cache_options=cache_options,
            **kwargs,
        )

    def upload_file(self, local: Path, place: DrivePlace, *, conflict: ConflictBehavior = "replace") -> None:
        """A local file to ``place``, creating its folders: the provider's uploader, hash-checked."""
        self._folder_maker(place.drive).ensure(place.parent_inner)
        FileUploader(self.client).upload(place.drive.id, place.inner, local, conflict=conflict)

    def put_file(self, lpath: str, rpath: str, callback: Any = None, mode: str = "overwrite", **kwargs: Any) -> None:
        rpath = self._strip_protocol(rpath)
        if os.path.isdir(lpath):
            self.makedirs(rpath, exist_ok=True)
            return
        try:
            self.upload_file(Path(lpath), self.drive_place(rpath), conflict="fail" if mode == "create" else "replace")
        except GraphConflictError:
            raise FileExistsError(errno.EEXIST, "Already exists", rpath) from None
        finally:
            self.invalidate_cache(rpath)

    def get_file(self, rpath: str, lpath: str, callback: Any = None, outfile: Any = None, **kwargs: Any) -> None:
        """To a local path: the provider's downloader (atomic, QuickXorHash-checked, mtime kept)."""
        rpath = self._strip_protocol(rpath)
        if outfile is not None or not isinstance(lpath, (str, os.PathLike)):
            super().get_file(rpath, lpath, outfile=outfile, **kwargs)
            return
        place = self.place(rpath)
        item = self.item(place, rpath) if isinstance(place, DrivePlace) else {"folder": {}}
        if "folder" in item:
            os.makedirs(lpath, exist_ok=True)
            return
        assert isinstance(place, DrivePlace)
        target = Path(lpath)
        target.parent.mkdir(parents=True, exist_ok=True)
        FileDownloader(self.client).download(place.drive.id, item, target)

    # -- folders ---------------------------------------------------------------------------------

    def _folder_maker(self, drive: Drive) -> FolderMaker:
        maker = self._folder_makers.get(drive.id)
        if maker is None:
            maker = self._folder_makers[drive.id] = FolderMaker(self.client, drive.id)
        return maker

    def mkdir(self, path: str, create_parents: bool = True, **kwargs: Any) -> None:
        path = self._strip_protocol(path)
        if self.exists(path):
            raise FileExistsError(errno.EEXIST, "Already exists", path)
        place = self.drive_place(path)
        if not create_parents and not self.isdir(self._parent(path)):
            raise FileNotFoundError(errno.ENOENT, "Its parent folder does not exist", path)
        self._folder_maker(place.drive).ensure(place.inner)
        self.invalidate_cache(path)

    def makedirs(self, path: str, exist_ok: bool = False) -> None:
        path = self._strip_protocol(path)
        if self.exists(path):
            if not exist_ok or not self.isdir(path):
                raise FileExistsError(errno.EEXIST, "Already exists", path)
            return
        place = self.drive_place(path)
        self._folder_maker(place.drive).ensure(place.inner)
        self.invalidate_cache(path)

    def rmdir(self, path: str) -> None:
        path = self._strip_protocol(path)
        place = self.drive_place(path)
        item = self.item(place, path)
        if "folder" not in item:
            raise NotADirectoryError(errno.ENOTDIR, "Is a file", path)
        if not place.inner:
            raise PermissionError(errno.EPERM, "Is a library's root; it cannot be removed here", path)
        if (item.get("folder") or {}).get("childCount"):
            raise OSError(errno.ENOTEMPTY, "Is not empty; use rm(path, recursive=True)", path)
        self._delete(place, item, path)

    # -- removing, copying, moving ---------------------------------------------------------------

    def rm_file(self, path: str) -> None:
        path = self._strip_protocol(path)
        place = self.drive_place(path)
        item = self.item(place, path)
        if "folder" in item:
            raise IsADirectoryError(errno.EISDIR, "Is a folder; use rm(path, recursive=True)", path)
        self._delete(place, item, path)

    def rm(self, path: str | list[str], recursive: bool = False, maxdepth: int | None = None) -> None:
        """Files, or folders with ``recursive=True``: one DELETE per folder, Graph removes what is below."""
        if maxdepth is not None:
            super().rm(path, recursive=recursive, maxdepth=maxdepth)
            return
        for target in self.expand_path(path, recursive=False):
            place = self.drive_place(target)
            item = self.item(place, target)
            if "folder" in item:
                if not recursive:
                    raise IsADirectoryError(errno.EISDIR, "Is a folder; use rm(path, recursive=True)", target)
                if not place.inner:
                    raise PermissionError(errno.EPERM, "Is a library's root; it cannot be removed", target)
            self._delete(place, item, target)

    def _delete(self, place: DrivePlace, item: dict[str, Any], path: str) -> None:
        try:
            self.operations.delete(place.drive.id, str(item["id"]))
        except GraphNotFoundError as exc:
            if exc.attempts > 1:
                return  # the reply to an earlier attempt was lost: that attempt deleted it
            raise FileNotFoundError(errno.ENOENT, "No such file or folder", path) from None
        finally:
            self.invalidate_cache(path)

    def cp_file(self, path1: str, path2: str, **kwargs: Any) -> None:
        """One file (or an empty folder) copied by Graph, server-side, replacing what is at ``path2``."""
        path1, path2 = self._strip_protocol(path1), self._strip_protocol(path2)
        source = self.drive_place(path1)
        item = self.item(source, path1)
        if "folder" in item:
            self.makedirs(path2, exist_ok=True)
            return
        self._copy_item(source, item, self.drive_place(path2))
        self.invalidate_cache(path2)

    def _copy_item(self, source: DrivePlace, item: dict[str, Any], target: DrivePlace) -> None:
        self._folder_maker(target.drive).ensure(target.parent_inner)
        parent = self.client.get_json(DrivePlace(target.drive, target.parent_inner).address)
        self.operations.copy(source.drive.id, str(item["id"]), target.drive.id, str(parent["id"]), target.name)

    def mv(self, path1: Any, path2: Any, recursive: bool = False, maxdepth: int | None = None, **kwargs: Any) -> None:
        """Move or rename by Graph: within a library one PATCH (folders whole), across libraries copy + delete."""
        if not isinstance(path2, str):
            raise ValueError("spo:// mv takes one destination path.")
        sources = self.expand_path(path1, recursive=False)
        target_is_dir = self.isdir(path2)
        if len(sources) > 1 and not target_is_dir:
            raise NotADirectoryError(errno.ENOTDIR, "Moving several items needs a folder as the target", path2)
        targets = other_paths(sources, path2, exists=target_is_dir, flatten=False) if target_is_dir else [path2]
        for source, target in zip(sources, targets, strict=True):
            self._move_one(source, self._strip_protocol(target))

    def _move_one(self, path1: str, path2: str) -> None:
        if path1 == path2:
            return
        source = self.drive_place(path1)
        item = self.item(source, path1)
        target = self.drive_place(path2)
        if target.drive.id != source.drive.id:
            # Graph moves only inside a drive (driveitem-move); across libraries: copy, then delete.
            self._copy_item(source, item, target)
            self._delete(source, item, path1)
        else:
            self._folder_maker(target.drive).ensure(target.parent_inner)
            parent = self.client.get_json(DrivePlace(target.drive, target.parent_inner).address)
            replaced = self._existing_file(target, path2)
            self.operations.move(source.drive.id, str(item["id"]), str(parent["id"]), target.name, replaces=replaced)
        self.invalidate_cache(path1)
        self.invalidate_cache(path2)

    def _existing_file(self, place: DrivePlace, path: str) -> str | None:
        """The id of a file at ``place`` (that a move replaces); a folder there is an error."""
        try:
            existing = self.item(place, path)
        except FileNotFoundError:
            return None
        if "folder" in existing:
            raise IsADirectoryError(errno.EISDIR, "Is a folder; it is not replaced by a move", path)
        return str(existing["id"])


def _library_info(name: str, drive: Drive) -> dict[str, Any]:
    return {"name": name, "size": 0, "type": "directory", "id": drive.id, "webUrl": drive.web_url}


def _timestamp(value: Any, path: str) -> datetime:
    if not value:
        raise ConfigurationError(f"Graph reported no timestamp for {path}.", field="path")
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
