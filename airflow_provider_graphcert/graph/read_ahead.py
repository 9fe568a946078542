"""Fetch the next pages of a listing while the caller works through the current one.

A paged export spends its time in two places that can overlap: waiting for Graph to build the
next page, and parsing and writing the current one (docs/benchmarks.md: 100,000-user export). A
helper thread runs the page generator at most ``ahead`` pages in front of the caller, so memory
stays bounded; pages, the end, and any error arrive in order, exactly as without it.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")
# One page in front: fetched while the caller works through the current one (a second one added
# about 6 MB of peak RSS to the 100,000-user export and no speed).
PAGES_AHEAD = 1


@dataclass(frozen=True)
class _End:
    error: BaseException | None = None


def read_ahead(pages: Iterator[T], *, name: str, ahead: int = PAGES_AHEAD) -> Iterator[T]:
    """Yield what ``pages`` yields, producing up to ``ahead`` of them in a helper thread meanwhile.

    Closing the result early (a ``break``, an error or a task timeout in the caller) stops the
    helper after the request it is in, and closes ``pages`` there.
    """
    arrived: queue.SimpleQueue[Any] = queue.SimpleQueue()
    room = threading.Semaphore(ahead)
    stopped = threading.Event()

    def produce() -> None:
        try:
            while True:
                room.acquire()
                if stopped.is_set():
                    return
                try:
                    page = next(pages)
                except StopIteration:
                    arrived.put(_End())
                    return
                except BaseException as exc:  # handed to the caller, raised there in order
                    arrived.put(_End(exc))
                    return
                arrived.put(page)
        finally:
            if isinstance(pages, Generator):
                pages.close()  # in this thread, where it ran: ends its open response

    helper = threading.Thread(target=produce, name=f"graphcert-pages-{name}"[:60], daemon=True)
    helper.start()
    try:
        while True:
            got = arrived.get()
            if isinstance(got, _End):
                if got.error is not None:
                    raise got.error
                return
            room.release()
            yield got
    finally:
        stopped.set()
        room.release()  # wakes the helper if it waits for room, so it sees the stop
