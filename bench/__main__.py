"""``python -m bench``: see bench/harness.py and docs/benchmarks.md."""

import sys

from bench.harness import main

sys.exit(main())
