"""Named content for a fresh emulator: what `graphcert emulator --seed NAME` puts in Graph.

A seed only calls the public GraphState API (sites, libraries, files, lists, users), the same way
a test seeds its own data, so the emulator's rules apply to seeded content too.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable

from airflow_provider_graphcert.testing.emulator.graph.state import GraphState

DEMO_HOSTNAME = "contoso.sharepoint.com"
DEMO_SITE_PATH = "/sites/Finance"
DEMO_REPORT_FILES = 300
DEMO_USERS = 1200
DEMO_GROUPS = 40
DEMO_LIST_ITEMS = 500


def _content(name: str, size: int) -> bytes:
    seed = hashlib.sha256(name.encode()).digest()
    return (seed * (size // len(seed) + 1))[:size]


def seed_demo(graph: GraphState) -> None:
    """The Finance site of the demo and example DAGs: reports, an inbox, a list, users and groups."""
    site = graph.add_site(DEMO_HOSTNAME, DEMO_SITE_PATH, "Finance")
    documents = site.add_library("Documents")
    regions = ("North", "South", "East", "West", "Zürich & Genève")
    for i in range(DEMO_REPORT_FILES):
        region = regions[i % len(regions)]
        name = f"Reports/{region}/2026-{1 + i % 12:02d}/report {i:03d}.csv"
        documents.put_file(name, _content(name, 2_000 + (i * 397) % 30_000))
    documents.put_file("Reports/README #1.txt", b"Monthly regional reports.\n")
    documents.put_file("Inbox/daily-2026-01-01.csv", b"id,amount\n1,10\n2,20\n")
    documents.mkdir("Outbox")
    site.add_list(
        "Invoices",
        columns=["Title", "Customer", "Amount", "Status"],
        items=[
            {
                "Title": f"INV-{i:05d}",
                "Customer": f"Customer {i % 37}",
                "Amount": round(i * 13.37, 2),
                "Status": ("Open", "Paid", "Overdue")[i % 3],
            }
            for i in range(1, DEMO_LIST_ITEMS + 1)
        ],
    )
    graph.add_users(DEMO_USERS)
    graph.add_groups(DEMO_GROUPS)


# The benchmark's content (bench/, docs/benchmarks.md): one site with a folder of many small files,
# one large file and a large directory for paged listings.
BENCH_SITE_PATH = "/sites/Bench"
BENCH_SMALL_FOLDER = "small"
BENCH_LARGE_PATH = "large/big.bin"
BENCH_UPLOAD_FOLDER = "uploads"
BENCH_SMALL_FILES = 2_000
BENCH_SMALL_FILE_BYTES = 16 * 1024
BENCH_LARGE_FILE_BYTES = 1024**3
BENCH_USERS = 100_000
_PATTERN_BLOCK_BYTES = 1024 * 1024


class PatternStream(io.RawIOBase):
    """``size`` deterministic bytes (one pseudo-random 1 MiB block, repeated) read like a file.

    Large seeds stream through ``put_file`` without ever being held in memory.
    """

    def __init__(self, size: int, label: str = "bench") -> None:
        super().__init__()
        self._block = hashlib.shake_256(label.encode()).digest(_PATTERN_BLOCK_BYTES)
        self._size = size
        self._position = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        """At most one block's worth per call, as a raw stream may."""
        left = self._size - self._position
        start = self._position % _PATTERN_BLOCK_BYTES
        count = min(left, _PATTERN_BLOCK_BYTES - start, size if size >= 0 else left)
        self._position += count
        if start == 0 and count == _PATTERN_BLOCK_BYTES:
            return self._block
        return self._block[start : start + count]

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        chunk = self.read(len(buffer))
        memoryview(buffer).cast("B")[: len(chunk)] = chunk
        return len(chunk)


def seed_bench(
    graph: GraphState,
    *,
    small_files: int = BENCH_SMALL_FILES,
    small_file_bytes: int = BENCH_SMALL_FILE_BYTES,
    large_file_bytes: int = BENCH_LARGE_FILE_BYTES,
    users: int = BENCH_USERS,
) -> None:
    """The Bench site: ``small/`` with many small files, ``large/big.bin``, an empty ``uploads/``, users."""
    site = graph.add_site(DEMO_HOSTNAME, BENCH_SITE_PATH, "Bench")
    documents = site.add_library("Documents")
    for i in range(small_files):
        name = f"{BENCH_SMALL_FOLDER}/file-{i:05d}.bin"
        documents.put_file(name, _content(name, small_file_bytes))
    documents.put_file(BENCH_LARGE_PATH, io.BufferedReader(PatternStream(large_file_bytes), _PATTERN_BLOCK_BYTES))
    documents.mkdir(BENCH_UPLOAD_FOLDER)
    graph.add_users(users)


SEEDS: dict[str, Callable[[GraphState], None]] = {"demo": seed_demo, "bench": seed_bench}
