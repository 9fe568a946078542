"""Asset events only when files moved: a nightly pull that found nothing new announces nothing.

Airflow registers one event per outlet of a successful task, read from the task's ``outlets``
when it finishes (Airflow's task runner, ``_handle_current_task_success``). A run that changed
nothing clears them for that run, so DAGs scheduled on the asset do not start for nothing; a run
that changed files puts its counts in the events' ``extra``.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import Asset, BaseOperator, Context

_CHANGE_COUNTS = ("downloaded", "deleted")


def announce_changes(task: BaseOperator, context: Context, summary: dict[str, Any]) -> dict[str, Any]:
    """Return ``summary`` after keeping or dropping the task's asset events by what it changed."""
    if not task.outlets:
        return summary
    changed = {name: int(summary.get(name) or 0) for name in _CHANGE_COUNTS}
    if not any(changed.values()):
        task.log.info("No file changed: no asset event from this run.")
        task.outlets = []
        return summary
    for outlet in task.outlets:
        if isinstance(outlet, Asset):
            context["outlet_events"][outlet].extra.update({**changed, "bytes": int(summary.get("bytes") or 0)})
    return summary
