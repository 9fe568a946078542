"""After a download: archive (move) or delete, in SharePoint, the files this run landed and verified.

The usual SharePoint ETL pattern: pull the new files, then move them to ``Archive`` (or delete
them) so the next run does not see them again. Only files that landed in this run and were
verified by QuickXorHash are touched: a failed, skipped-unchanged or unverified file stays where
it is (unverified ones only with ``include_unverified``). Every action carries ``If-Match`` with
the eTag seen at download, so a file saved again since is left in place for the next run
(sharepoint/item_actions.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_graphcert.errors import ConfigurationError, GraphCertError
from airflow_provider_graphcert.graph.client import GraphClient
from airflow_provider_graphcert.sharepoint.download import DownloadedFile
from airflow_provider_graphcert.sharepoint.item_actions import ItemActions, ItemChangedError
from airflow_provider_graphcert.sharepoint.progress import InfoLogger
from airflow_provider_graphcert.sharepoint.resolver import Drive, SharePointResolver
from airflow_provider_graphcert.sharepoint.upload import ConflictBehavior, FolderMaker, check_conflict_behavior

FIELD = "after_download"
_KEYS = frozenset({"move_to", "delete", "conflict_behavior", "include_unverified"})
# How many paths a summary lists (XCom stays small); the counts are always complete.
_LISTED = 1000


class AfterDownloadError(GraphCertError):
    """Some landed files could not be archived or deleted; they are still in place in SharePoint."""

    def __init__(self, message: str, report: dict[str, Any]) -> None:
        super().__init__(message)
        self.report = report


@dataclass(frozen=True)
class AfterDownload:
    """What to do with each landed file: move it below ``move_to``, or ``delete`` it.

    ``move_to`` is a folder path from the library root (``"Archive/2026-01-01"``) or a folder URL
    in the same library, created if missing; files keep their sub-folders below it.
    """

    move_to: str | None = None
    delete: bool = False
    conflict_behavior: ConflictBehavior = "fail"
    include_unverified: bool = False

    @property
    def action(self) -> str:
        return "delete" if self.delete else "move"

    @classmethod
    def parse(cls, value: Mapping[str, Any] | AfterDownload | None) -> AfterDownload | None:
        """The checked option; one error naming the key and the fix for anything else."""
        if value is None or isinstance(value, AfterDownload):
            return value
        if not isinstance(value, Mapping):
            raise ConfigurationError(
                f"{FIELD} must be a dict such as {{'move_to': 'Archive/{{{{ ds }}}}'}} or {{'delete': True}}, "
                f"not {type(value).__name__}.",
                field=FIELD,
            )
        unknown = sorted(str(k) for k in value if k not in _KEYS)
        if unknown:
            raise ConfigurationError(
                f"{FIELD} has unknown key(s) {', '.join(unknown)}; use move_to or delete (and optionally "
                "conflict_behavior, include_unverified).",
                field=FIELD,
            )
        move_to, delete = value.get("move_to"), value.get("delete", False)
        if not isinstance(delete, bool):
            raise ConfigurationError(f"{FIELD}['delete'] must be True or False, not {delete!r}.", field=FIELD)
        if move_to is not None and (not isinstance(move_to, str) or not move_to.strip("/ ")):
            raise ConfigurationError(
                f"{FIELD}['move_to'] must name a folder (e.g. 'Archive/{{{{ ds_nodash }}}}'); got {move_to!r}. "
                "Did a template render to nothing?",
                field=FIELD,
            )
        if (move_to is None) == (not delete):
            raise ConfigurationError(
                f"{FIELD} needs exactly one action: 'move_to' (a folder) or 'delete': True.", field=FIELD
            )
        include_unverified = value.get("include_unverified", False)
        if not isinstance(include_unverified, bool):
            raise ConfigurationError(f"{FIELD}['include_unverified'] must be True or False.", field=FIELD)
        if delete and "conflict_behavior" in value:
            raise ConfigurationError(f"{FIELD}['conflict_behavior'] applies to move_to only.", field=FIELD)
        conflict = check_conflict_behavior(str(value.get("conflict_behavior", "fail")))
        return cls(move_to=move_to, delete=delete, conflict_behavior=conflict, include_unverified=include_unverified)


@dataclass
class AfterDownloadReport:
    action: str
    done: list[str] = field(default_factory=list)
    changed_since: list[str] = field(default_factory=list)  # saved again after download: left for the next run
    unverified_kept: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "done": len(self.done),
            "changed_since": sorted(self.changed_since)[:_LISTED],
            "unverified_kept": sorted(self.unverified_kept)[:_LISTED],
            "failed": dict(sorted(self.failed.items())[:_LISTED]),
        }


@dataclass
class AfterDownloadRunner:
    """Applies one :class:`AfterDownload` to the files of one download, inside one drive."""

    client: GraphClient
    drive: Drive
    spec: AfterDownload
    archive_root: str  # move_to as a path from the library root ('' when deleting)
    logger: InfoLogger
    _folder_ids: dict[str, str] = field(default_factory=dict)

    @property
    def drive_id(self) -> str:
        return self.drive.id

    def run(self, landed: Sequence[DownloadedFile]) -> AfterDownloadReport:
        report = AfterDownloadReport(self.spec.action)
        actions = ItemActions(self.client)
        folders = FolderMaker(self.client, self.drive_id)
        for done in landed:
            relative = done.relative or done.path.rsplit("/", 1)[-1]
            if not done.verified and not self.spec.include_unverified:
                report.unverified_kept.append(relative)
                continue
            try:
                if self.spec.delete:
                    actions.delete(self.drive_id, done.item_id, if_match=done.e_tag)
                else:
                    self._move(actions, folders, done, relative)
                report.done.append(relative)
            except ItemChangedError:
                report.changed_since.append(relative)
            except GraphCertError as exc:
                report.failed[relative] = str(exc)
        self._log(report)
        return report

    def _move(self, actions: ItemActions, folders: FolderMaker, done: DownloadedFile, relative: str) -> None:
        sub_folder = relative.rpartition("/")[0]
        parent_path = "/".join(p for p in (self.archive_root, sub_folder) if p)
        if parent_path not in self._folder_ids:
            folders.ensure(parent_path)
            target = SharePointResolver(self.client).item(self.drive, parent_path, field="after_download")
            if not target.is_folder:
                raise ConfigurationError(f"'{parent_path}' is a file, not a folder.", field=FIELD)
            self._folder_ids[parent_path] = target.id
        actions.move(
            self.drive_id,
            done.item_id,
            parent_id=self._folder_ids[parent_path],
            parent_path=parent_path,
            new_name=None,
            conflict=self.spec.conflict_behavior,
            if_match=done.e_tag,
        )

    def _log(self, report: AfterDownloadReport) -> None:
        verb = "Deleted" if self.spec.delete else f"Moved to '{self.archive_root}'"
        self.logger.info("%s: %d file(s) this run landed and verified.", verb, len(report.done))
        if report.changed_since:
            self.logger.info(
                "Left in place, changed in SharePoint since they were downloaded (the next run fetches them): %s",
                ", ".join(sorted(report.changed_since)[:20]),
            )
        if report.unverified_kept:
            self.logger.info(
                "Left in place, landed without a hash check (include_unverified=True acts on them too): %s",
                ", ".join(sorted(report.unverified_kept)[:20]),
            )


def failure_message(report: AfterDownloadReport) -> str:
    listed = "; ".join(f"{path}: {reason}" for path, reason in sorted(report.failed.items())[:20])
    verb = "deleted" if report.action == "delete" else "moved"
    return (
        f"The files landed, but {len(report.failed)} could not be {verb} "
        f"in SharePoint and are still in the source folder ({len(report.done)} done): {listed}. Fix the cause "
        "(permissions, a name already in the archive: conflict_behavior 'rename' or 'replace'); the next run "
        "downloads these files again and retries."
    )
