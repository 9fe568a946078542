"""A bound on following ``@odata.nextLink``: no page twice, and no endless run of new links.

Graph pages a collection by handing back the next page's URL (Microsoft: "Paging Microsoft Graph
data in your app", https://learn.microsoft.com/graph/paging). A broken or hostile service can point
that link back at a page already read, which a naive loop follows forever (and a folder download
queues the same files again on every round). Every loop over next links (collections, children,
delta rounds) checks each link here before following it.
"""

from __future__ import annotations

import hashlib

from airflow_provider_graphcert.errors import GraphPagingError

# 200,000 pages is 40 million items at Graph's usual 200 per page: far past any real listing,
# near enough that a service handing out fresh links forever is stopped within hours, not never.
MAX_PAGES = 200_000
# Graph may send an empty page with a next link now and then (delta does); a long run of them is a loop.
MAX_EMPTY_PAGES_IN_A_ROW = 1_000


class NextLinkGuard:
    """Remembers the links followed for one listing and refuses a repeat or a run without end.

    Links are kept as 16-byte digests, so a listing of a million pages holds 16 MB at most.
    """

    def __init__(
        self, what: str, *, max_pages: int = MAX_PAGES, max_empty_pages: int = MAX_EMPTY_PAGES_IN_A_ROW
    ) -> None:
        self.what = what
        self.max_pages = max_pages
        self.max_empty_pages = max_empty_pages
        self.pages = 0
        self._empty_in_a_row = 0
        self._seen: set[bytes] = set()

    def start(self, first_url: str) -> None:
        """Record the first page's URL, so a link back to it is a repeat too."""
        self._seen.add(_digest(first_url))

    def follow(self, next_link: str, *, items_on_page: int) -> None:
        """Check the next link of a page that held ``items_on_page`` items; raise rather than loop."""
        self.pages += 1
        self._empty_in_a_row = 0 if items_on_page else self._empty_in_a_row + 1
        digest = _digest(next_link)
        if digest in self._seen:
            raise GraphPagingError(
                f"Graph's @odata.nextLink for {self.what} points back to a page already read (after page "
                f"{self.pages}); stopping instead of reading the same pages forever. This is a fault of the "
                "service or of a proxy rewriting its answers; retry later and report it if it persists."
            )
        if self.pages >= self.max_pages or self._empty_in_a_row >= self.max_empty_pages:
            too_many = self.pages >= self.max_pages
            reason = f"{self.pages} pages" if too_many else f"{self._empty_in_a_row} empty pages in a row"
            raise GraphPagingError(
                f"Graph kept handing out new @odata.nextLink values for {self.what} ({reason}); stopping "
                "instead of paging without end. Narrow the listing (a folder, a filter) or report the fault."
            )
        self._seen.add(digest)


def _digest(link: str) -> bytes:
    return hashlib.blake2b(link.encode("utf-8"), digest_size=16).digest()
