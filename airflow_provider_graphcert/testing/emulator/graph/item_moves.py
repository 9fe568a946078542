"""Moving, renaming and copying driveItems: the writes a pipeline does around its transfers.

https://learn.microsoft.com/graph/api/driveitem-move and
https://learn.microsoft.com/graph/api/driveitem-copy
"""

from __future__ import annotations

from airflow_provider_graphcert.testing.emulator.graph.common import (
    Identity,
    invalid_request,
    name_already_exists,
    validate_name,
)
from airflow_provider_graphcert.testing.emulator.graph.drives import Drive, Item
from airflow_provider_graphcert.testing.emulator.graph.state import GraphState


def check_not_into_itself(item: Item, parent: Item) -> None:
    """A folder cannot be moved or copied into itself or one of its subfolders."""
    if parent.drive is item.drive and any(a.id == item.id for a in item.drive.ancestors(parent.id)):
        raise invalid_request("A folder cannot be moved or copied into itself or one of its subfolders.")


def move_item(
    drive: Drive, item: Item, *, parent: Item | None, name: str | None, conflict: str, actor: Identity
) -> Item:
    """PATCH {name, parentReference}: rename and/or move within the drive; same id, new eTag."""
    with drive.lock:
        if item.parent_id is None:
            raise invalid_request("The root of a drive cannot be moved or renamed.")
        old_parent = drive.items[item.parent_id]
        new_parent = parent or old_parent
        if new_parent.drive is not drive:
            raise invalid_request("An item cannot be moved to another drive; copy it instead.")
        if not new_parent.is_folder:
            raise invalid_request("The new parent is a file, so it cannot contain items.")
        check_not_into_itself(item, new_parent)
        new_name = item.name if name is None else name
        validate_name(new_name, is_folder=item.is_folder)
        existing = drive.child(new_parent, new_name)
        if existing is not None and existing is not item:
            final_name, replaced = drive.resolve_conflict(new_parent, new_name, conflict)
            if replaced is not None:
                drive.delete_item(replaced)
            new_name = final_name
        key = next(k for k, child_id in old_parent.children.items() if child_id == item.id)
        del old_parent.children[key]
        drive.adjust_folder_sizes(old_parent.id, -item.size)
        item.name = new_name
        item.parent_id = new_parent.id
        new_parent.children[new_name.casefold()] = item.id
        drive.adjust_folder_sizes(new_parent.id, item.size)
        item.version += 1
        item.modified = drive.state.now()
        item.modified_by = actor
        drive.touch(item)
        return item


def copy_item(state: GraphState, item: Item, *, parent: Item, name: str, conflict: str, actor: Identity) -> Item:
    """POST …/copy: a new item (new id) with the same content, in any drive of the emulator."""
    target = parent.drive
    with state.lock:
        if not parent.is_folder:
            raise invalid_request("The copy's parent is a file, so it cannot contain items.")
        if item.parent_id is None:
            raise invalid_request("The root of a drive cannot be copied.")
        check_not_into_itself(item, parent)
        validate_name(name, is_folder=item.is_folder)
        if conflict == "fail" and target.child(parent, name) is not None:
            # Graph refuses a copy onto a name in use before accepting the job.
            raise name_already_exists(name)
        final_name, replaced = target.resolve_conflict(parent, name, conflict)
        if replaced is not None:
            target.delete_item(replaced)
        return _copy_tree(state, item, parent, final_name, actor)


def _copy_tree(state: GraphState, item: Item, parent: Item, name: str, actor: Identity) -> Item:
    drive = parent.drive
    if item.is_folder:
        folder = drive.create_folder(parent, name, conflict="fail", actor=actor)
        for child_id in list(item.children.values()):
            child = item.drive.items[child_id]
            _copy_tree(state, child, folder, child.name, actor)
        return folder
    assert item.blob is not None
    body = state.store_body(item.blob)
    try:
        created, _ = drive.commit_file(parent, name, body, conflict="fail", actor=actor, mime_type=item.mime_type)
    except BaseException:
        body.path.unlink(missing_ok=True)
        raise
    return created
