"""Run ``airflow tasks test`` for several tasks, each in its own process, without paying start-up each time.

    python airflow_tasks_test.py OUT_DIR DAG_ID LOGICAL_DATE TASK [TASK ...]

LOGICAL_DATE ``none`` triggers a run without a logical date (the REST API's default in Airflow 3),
named ``manual__no_logical_date``.

The interpreter imports Airflow once; every command then runs in a freshly forked child that
executes the real Airflow command line (so each task has its own masker, as in a separate
process), with its output in OUT_DIR/TASK.out. First ``airflow dags reserialize`` and ``airflow
dags trigger`` create the DAG run the tasks then run in: a run that ``tasks test`` finds is kept,
so its XCom values and rendered template fields stay in the database to be inspected (a temporary
run would be deleted). Prints the tasks' exit codes as JSON.
"""

from __future__ import annotations

import json
import os
import sys
import traceback

import airflow.__main__ as airflow_cli
import airflow.api_fastapi.execution_api.app
import airflow.cli.commands.task_command
import airflow.sdk.execution_time.supervisor
import airflow.sdk.execution_time.task_runner  # noqa: F401 - imported once, before the forks


def run_in_child(output: str, *command: str) -> int:
    pid = os.fork()
    if pid == 0:
        fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        sys.argv = ["airflow", *command]
        code = 0
        try:
            airflow_cli.main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException:
            traceback.print_exc()
            code = 1
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


NO_LOGICAL_DATE_RUN_ID = "manual__no_logical_date"


def main() -> None:
    out_dir, dag_id, logical_date, *tasks = sys.argv[1:]
    run = logical_date
    for step, command in (("reserialize", ["dags", "reserialize"]), ("trigger", ["dags", "trigger", dag_id])):
        if step == "trigger" and logical_date == "none":
            command += ["--run-id", NO_LOGICAL_DATE_RUN_ID]
            run = NO_LOGICAL_DATE_RUN_ID
        elif step == "trigger":
            command += ["--logical-date", logical_date]
        code = run_in_child(os.path.join(out_dir, f"{step}.out"), *command)
        if code:
            sys.exit(f"airflow {' '.join(command)} failed ({code}); see {out_dir}/{step}.out")
    codes = {}
    for task in tasks:
        codes[task] = run_in_child(os.path.join(out_dir, f"{task}.out"), "tasks", "test", dag_id, task, run)
    print(json.dumps(codes))


if __name__ == "__main__":
    main()
