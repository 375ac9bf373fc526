"""A window read as concurrent time slices: as many page-token chains at once as the org allows.

A single page-token chain moves one page per round trip, whatever the edition permits; a year's backfill of
a million records at about 0.4 s a page would take more than half an hour. So a window is cut in time into
slices read in parallel, each a :class:`~zoho_dagster.client.records.WindowReader` with its own chains (one
per field pass) from ``If-Modified-Since: slice start`` to the slice's end.

Slices are balanced by what they turn out to hold, with no count calls: the window starts as one slice, and
whenever a worker is free the slice with the most records still to come (estimated from the density read
so far) hands the later half of its remainder to a new slice (:meth:`WindowReader.split`). Nothing is split
before the first page shows there is more to read, so a window that fits in one page costs one call, and a
slice is split only while a few pages are still to come, so small windows stay at the floor of
``ceil(N/200) * ceil(F/50)`` calls. Each split may cost up to one extra page per pass.

Pages go through a bounded queue to the consumer (the IO manager's COPY), so memory stays at a few pages per
worker whatever the window's size. Records arrive in no particular order across slices; each record comes
exactly once per slice boundary, and a record modified while the window is read may come twice (old and new
version), as with one chain: the consumer keeps the newest.
"""

import logging
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future

from zoho_dagster.client.records import PER_PAGE, Record, WindowReader

log = logging.getLogger(__name__)

MIN_SPLIT_RECORDS = 4 * PER_PAGE
"""A slice is split only when at least this many records are estimated still to come: below it the extra page
a split may cost outweighs the time it saves."""
_POLL_SECONDS = 0.05


def _in_background(function: Callable[..., None], *args: object) -> "Future[None]":
    """Run ``function`` in a daemon thread; the future says when it is done.

    Not a thread pool: Python joins a pool's threads when it exits, and a slice whose consumer dropped the
    reader without closing it (a traceback that keeps it alive, say) waits for demand that never comes, so the
    process would never exit. The consumer's ``finally`` stops the slices whenever it runs.
    """
    future: Future[None] = Future()

    def run() -> None:
        future.set_running_or_notify_cancel()
        try:
            function(*args)
        except BaseException as error:  # read() hands its errors to the consumer; this is for anything else
            future.set_exception(error)
        else:
            future.set_result(None)

    threading.Thread(target=run, name="zoho-slice", daemon=True).start()
    return future


class _Failed:
    def __init__(self, error: BaseException) -> None:
        self.error = error


class SlicedReader:
    """Reads ``first`` (a whole window) as up to ``workers()`` concurrent slices; yields pages of records.

    ``workers`` is called once, when the first slice shows it holds more than a page: it may cost a call (the
    org's edition decides the concurrency), which a one-page window never pays. So is ``big_window``: given
    the first slice, it may take the rest of the window away (``WindowReader.split``) and return another
    reader for it, e.g. Bulk Read jobs, which then runs as one more worker.
    """

    def __init__(
        self,
        first: WindowReader,
        workers: Callable[[], int],
        big_window: Callable[[WindowReader], Iterable[list[Record]] | None] | None = None,
    ) -> None:
        self.first = first
        self.workers = workers
        self.big_window = big_window
        self.slices_read = 0

    def __iter__(self) -> Iterator[list[Record]]:
        if self.first.start >= self.first.end:
            return
        pages: queue.Queue[list[Record] | _Failed | None] = queue.Queue(maxsize=8)
        stop = threading.Event()
        # Set once the consumer asks for a second page and the window's reading is decided (how many slices,
        # whether the rest goes elsewhere): until then no worker reads ahead, so taking the first page of a
        # window costs one page per pass, and a rest handed to Bulk Read is cut where that page ended.
        demand = threading.Event()
        running: dict[Future[None], WindowReader] = {}
        elsewhere: list[Future[None]] = []
        target: int | None = None
        # The first page counts as taken only when the consumer comes back for more: a slice's passes show
        # ``started`` before its first page reaches the queue, so deciding on ``started`` alone could start
        # other slices while the consumer still holds only the first page.
        first_taken = False

        def read(window: Iterable[list[Record]]) -> None:
            try:
                for page in window:
                    while not stop.is_set():
                        try:
                            pages.put(page, timeout=_POLL_SECONDS)
                            break
                        except queue.Full:
                            continue
                    while not demand.is_set() and not stop.is_set():
                        demand.wait(_POLL_SECONDS)
                    if stop.is_set():
                        return
            except BaseException as error:  # handed to the consumer, who raises it
                pages.put(_Failed(error))

        def start(window: WindowReader) -> None:
            self.slices_read += 1
            running[_in_background(read, window)] = window

        try:
            start(self.first)
            while running or not all(f.done() for f in elsewhere) or not pages.empty():
                try:
                    item = pages.get(timeout=_POLL_SECONDS)
                except queue.Empty:
                    item = None
                if isinstance(item, _Failed):
                    raise item.error
                if item:
                    yield item
                    first_taken = True
                    if target is not None:
                        demand.set()
                for future in [f for f in running if f.done()]:
                    del running[future]
                if not running:
                    continue
                if target is None:
                    if not first_taken:
                        continue
                    if not any(w.started and not w.done for w in running.values()):
                        if all(w.done for w in running.values()):
                            demand.set()  # nothing to decide (a one-page window): let the slice finish
                        continue
                    target = max(1, self.workers())
                    log.info("%s: reading in up to %d concurrent slices.", self.first.module, target)
                    other = self.big_window(self.first) if self.big_window else None
                    if other is not None:
                        elsewhere.append(_in_background(read, other))
                        target = 1  # the rest of the window went elsewhere: nothing left to split
                    demand.set()
                while len(running) < target and self._split_one(running.values(), start):
                    pass
        finally:
            stop.set()

    @staticmethod
    def _split_one(windows: Iterable[WindowReader], start: Callable[[WindowReader], None]) -> bool:
        """Split the slice with the most records still to come, if any has enough; True when one was split."""
        candidates = sorted(windows, key=lambda w: w.remaining_estimate(), reverse=True)
        for window in candidates:
            if window.remaining_estimate() < MIN_SPLIT_RECORDS:
                return False
            later = window.split()
            if later is not None:
                start(later)
                return True
        return False
