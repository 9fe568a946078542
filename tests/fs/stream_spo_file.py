"""Run in a fresh process: stream one spo:// file and report its digest and peak memory growth.

argv: the spo:// URL. Prints JSON: bytes, sha256, baseline and peak RSS (KiB, from getrusage).
The baseline is taken after a stat() of the file, so imports, the token and the TLS session are in
it, and everything the open file holds is counted as growth.
"""

from __future__ import annotations

import hashlib
import json
import resource
import sys

from spo_entry_points import register_declared_entry_points

CHUNK_BYTES = 64 * 1024  # what shutil.copyfileobj uses on Linux


def main(url: str) -> None:
    register_declared_entry_points()
    from airflow.sdk import ObjectStoragePath

    path = ObjectStoragePath(url)
    path.stat()
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    digest = hashlib.sha256()
    total = 0
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            digest.update(chunk)
            total += len(chunk)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"bytes": total, "sha256": digest.hexdigest(), "baseline_kib": baseline, "peak_kib": peak}))


if __name__ == "__main__":
    main(sys.argv[1])
