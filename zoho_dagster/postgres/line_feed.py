"""COPY lines rendered in a background thread and handed out in rounds, so rendering goes on while the
connection is busy with something else.

Why: the record writer merges what it has staged every :data:`zoho_dagster.postgres.writer.MERGE_EVERY`
records while the window is still being read (Postgres writing the target's rows took 6.4 s after the last
page of a 100,000-Lead backfill). During such a merge the connection cannot take COPY data; without this
thread the consumer would stop pulling pages, the readers' bounded queue would fill and the read would stall
for the merge's length. Here the thread keeps pulling pages and rendering lines into a bounded buffer
(:data:`BUFFERED_BATCHES` batches of :data:`BATCH_LINES` lines, a few tens of MB), so the read, the rendering
and Postgres all work at once.

The thread owns the line iterator from start to end: it closes it when it stops (so a sliced reader's
threads stop too), and an error raised by the iterator reaches the consumer as that same exception, at the
point where the lines ran out.
"""

import queue
import threading
from collections.abc import Iterable, Iterator
from types import TracebackType

BATCH_LINES = 200
"""Lines per hand-over between the threads (about a page of records)."""
BUFFERED_BATCHES = 32
"""Rendered batches waiting for COPY at most: about 6,400 records, 20 to 40 MB of Leads."""
_POLL_SECONDS = 0.05
_STOP_WAIT_SECONDS = 5.0


class _End:
    pass


class _Failed:
    def __init__(self, error: BaseException) -> None:
        self.error = error


class LineFeed:
    """Renders ``lines`` in a daemon thread; :meth:`take` yields them in rounds of a given size.

    Use as a context manager: leaving it stops the thread, whether or not every line was taken.
    """

    def __init__(self, lines: Iterable[str]) -> None:
        self._lines = lines
        self._batches: queue.Queue[list[str] | _End | _Failed] = queue.Queue(maxsize=BUFFERED_BATCHES)
        self._left: list[str] = []
        self._stop = threading.Event()
        self.exhausted = False
        self._thread = threading.Thread(target=self._render, name="zoho-render", daemon=True)

    def __enter__(self) -> "LineFeed":
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        # A thread still waiting for a page (a slow call, a retry) notices the stop when that page comes and
        # then closes the iterator on its own; the consumer need not wait that long to fail.
        self._thread.join(None if self.exhausted else _STOP_WAIT_SECONDS)

    def take(self, limit: int | None = None) -> Iterator[str]:
        """The next ``limit`` lines (all that are left with ``None``); sets :attr:`exhausted` at the end."""
        taken = 0
        while limit is None or taken < limit:
            if self._left:
                batch, self._left = self._left, []
            else:
                item = self._batches.get()
                if isinstance(item, _End):
                    self.exhausted = True
                    return
                if isinstance(item, _Failed):
                    self.exhausted = True
                    raise item.error
                batch = item
            if limit is not None and taken + len(batch) > limit:
                batch, self._left = batch[: limit - taken], batch[limit - taken :]
            yield from batch
            taken += len(batch)

    def _put(self, item: list[str] | _End | _Failed) -> bool:
        while not self._stop.is_set():
            try:
                self._batches.put(item, timeout=_POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False

    def _render(self) -> None:
        lines = iter(self._lines)
        try:
            batch: list[str] = []
            for line in lines:
                batch.append(line)
                if len(batch) >= BATCH_LINES:
                    if not self._put(batch):
                        return
                    batch = []
            if batch and not self._put(batch):
                return
            self._put(_End())
        except BaseException as error:  # handed to the consumer, who raises it where the lines ran out
            self._put(_Failed(error))
        finally:
            close = getattr(lines, "close", None)
            if close is not None:
                close()
