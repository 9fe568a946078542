"""Named content for a fresh emulator: what `graphcert emulator --seed NAME` puts in Graph.

A seed only calls the public GraphState API (sites, libraries, files, lists, users), the same way
a test seeds its own data, so the emulator's rules apply to seeded content too.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from airflow_provider_graphcert.testing.emulator.graph_state import GraphState

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


SEEDS: dict[str, Callable[[GraphState], None]] = {"demo": seed_demo}
