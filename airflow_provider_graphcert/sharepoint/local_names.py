"""Map remote item paths to local paths without ever leaving the target directory.

Names come from the service and are not trusted: ``..``, separators, control characters and
names the local filesystem cannot hold are refused, each with a reason, instead of written.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from airflow_provider_graphcert.errors import GraphCertError

# Most local filesystems cap a single name at 255 bytes.
MAX_NAME_BYTES = 255
# SharePoint Online refuses this anywhere in a name (see files.OWN_FILE_PREFIX), so our own state
# files carry it; a remote item with it is a broken or hostile listing and could pose as our state.
RESERVED_FRAGMENT = "_vti_"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_WINDOWS_RESERVED = re.compile(r"^(con|prn|aux|nul|com[1-9]|lpt[1-9])(\..*)?$", re.IGNORECASE)


class UnsafeNameError(GraphCertError):
    """A remote name that cannot be written safely under the target directory."""


def safe_segment(name: str) -> str:
    if name in ("", ".", ".."):
        raise UnsafeNameError(f"refusing the name {name!r}: it would point outside its folder")
    if "/" in name or "\\" in name:
        raise UnsafeNameError(f"refusing the name {name!r}: it contains a path separator")
    if _CONTROL.search(name):
        raise UnsafeNameError(f"refusing the name {name.encode('unicode_escape').decode()!r}: control characters")
    if RESERVED_FRAGMENT in name.lower():
        raise UnsafeNameError(
            f"refusing the name {name!r}: SharePoint never allows {RESERVED_FRAGMENT!r} in a name, and we keep our own "
            "state files under such names"
        )
    if len(os.fsencode(name)) > MAX_NAME_BYTES:
        raise UnsafeNameError(f"refusing a name of {len(os.fsencode(name))} bytes: over {MAX_NAME_BYTES}")
    if os.name == "nt" and (_WINDOWS_RESERVED.match(name) or name.endswith((" ", "."))):
        raise UnsafeNameError(f"refusing the name {name!r}: reserved on Windows")
    return name


class LocalTree:
    """Local paths below one target folder, checked like :func:`local_path`, for one job.

    The target is resolved once and each folder below it once, not every file's whole path:
    ``Path.resolve`` costs one ``lstat`` per path component, which for a folder of small files was
    a good part of planning each download (docs/benchmarks.md, bulk small files). A name that is
    itself a symlink is still resolved and refused when it points outside the target.
    """

    def __init__(self, target: Path) -> None:
        self.target = target
        self._root: Path | None = None
        self._checked_folders: set[tuple[str, ...]] = set()

    def path(self, relative: str) -> Path:
        segments = [safe_segment(s) for s in relative.split("/") if s != ""]
        if not segments:
            raise UnsafeNameError("refusing an empty path")
        folder = tuple(segments[:-1])
        if folder not in self._checked_folders:
            self._check_inside(self.target.joinpath(*folder), relative)
            self._checked_folders.add(folder)
        candidate = self.target.joinpath(*segments)
        if os.path.islink(candidate):
            self._check_inside(candidate, relative)
        return candidate

    def _check_inside(self, path: Path, relative: str) -> None:
        if self._root is None:
            self._root = self.target.resolve()
        resolved = path.resolve()
        if resolved != self._root and self._root not in resolved.parents:
            raise UnsafeNameError(f"refusing {relative!r}: it resolves outside {self.target}")


def local_path(target: Path, relative: str) -> Path:
    """``target / relative`` after checking every segment and the resolved result."""
    return LocalTree(target).path(relative)
