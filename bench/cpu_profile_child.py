"""Run a client script under yappi's CPU clock (all threads) and print where its CPU went.

``python bench/cpu_profile_child.py OUTPUT SCRIPT WORKLOAD CONFIG``; used by
``python -m bench.profile --cpu``. yappi is a bench-only tool (``pip install yappi``).
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

_COLUMNS = {0: ("name", 110), 1: ("ncall", 10), 2: ("tsub", 8), 3: ("ttot", 8)}


def main() -> None:
    import yappi

    output, script, *rest = sys.argv[1:]
    sys.argv = [script, *rest]
    sys.path.insert(0, str(Path(script).parent))
    yappi.set_clock_type("cpu")
    yappi.start(builtins=True)
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit:
        pass
    finally:
        yappi.stop()
        stats = yappi.get_func_stats()
        with open(output, "w", encoding="utf-8") as out:
            stats.sort("tsub").print_all(out=out, columns=_COLUMNS)
            out.write("\n\n==== by total\n")
            stats.sort("ttot").print_all(out=out, columns=_COLUMNS)


if __name__ == "__main__":
    main()
