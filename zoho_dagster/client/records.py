"""Reading a module's records in a ``Modified_Time`` window ``[start, end)``, complete and lazily.

The shape follows docs/design.md §3 and Zoho's limits (docs/zoho-crm-api.md §2):

- one *pass* per group of ≤50 fields (``fields`` is capped at 50), each with ``Modified_Time`` so it can stop
  at ``end``; sorted ``Modified_Time asc``, filtered by ``If-Modified-Since: start`` (inclusive), 200 per
  page, following ``next_page_token`` (``page`` stops at 2,000 records);
- fields whose COQL value is the list API's (``coql_fields``) that do not fit the records passes' 50 slots
  are read by *COQL passes* instead (:mod:`zoho_dagster.client.coql_pass`): 2,000 records per call instead
  of 200, so a second pass costs a tenth of the round trips;
- passes advance together, each at most 200 records ahead of the slowest (a COQL pass's page of 2,000 waits
  for the others to reach it), and are joined on ``id``: a record is emitted when every pass delivered it,
  so memory holds about two pages per pass, never the module;
- the first pass is always a records API pass, asked for every record (``converted=both&approved=both``,
  :mod:`zoho_dagster.client.visibility`): it is the window's spine. COQL may leave out converted records or
  records awaiting approval (UNCONFIRMED, docs/zoho-crm-api.md §3.8), so no record depends on a COQL pass;
- a record one pass missed (it was modified while the passes ran and moved, or the pass's route leaves it
  out) or whose passes disagree on ``Modified_Time`` is completed with ``ids=`` calls, so every emitted
  record is one version of that record, with every field; a record a pass has already gone past is
  completed as soon as 100 such are waiting, so such records never pile up in memory until the window ends;
- a page-token chain that hits Zoho's cap (``PAGINATION_LIMIT_EXCEEDED``) or an expired token restarts from
  the last ``Modified_Time`` seen, skipping the ids already emitted at that instant: split in time, never cut.

A record modified while the window is read can appear twice (its old and its new version, the latter with the
newer ``Modified_Time``); consumers keep the newest, as the IO manager's upsert does.
"""

import logging
import threading
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from zoho_dagster.client.coql import COQL_COLUMNS, COQL_FIRST_PAGE, COQL_NEXT_PAGE
from zoho_dagster.client.errors import ZohoAPIError
from zoho_dagster.client.full_text import FullText
from zoho_dagster.client.http import Need, ZohoHttp
from zoho_dagster.client.timeutil import as_utc, header_datetime, parse_datetime
from zoho_dagster.client.visibility import EVERY_RECORD

if TYPE_CHECKING:
    from zoho_dagster.client.coql_pass import CoqlSwitch

log = logging.getLogger(__name__)

PER_PAGE = 200
MAX_FIELDS_PER_CALL = 50
MAX_IDS_PER_CALL = 100
CURSOR_FIELD = "Modified_Time"
# Codes after which a page-token chain cannot go on but a fresh chain from the last instant seen can.
RESTART_CODES = frozenset({"PAGINATION_LIMIT_EXCEEDED", "EXPIRED_VALUE"})

Record = dict[str, Any]


@dataclass(frozen=True)
class FieldPass:
    """One pass's fields (``Modified_Time`` first) and whether COQL reads them (else the records API)."""

    fields: list[str]
    coql: bool = False


def plan_passes(fields: Sequence[str], coql_fields: Collection[str] = ()) -> list[FieldPass]:
    """``fields`` in passes: records API passes of at most 50 fields for those COQL may not read, filled up
    with COQL-readable ones, then COQL passes of at most 48 for the rest (50 columns with ``id`` and
    ``Modified_Time``, docs/zoho-crm-api.md §3.8). Without ``coql_fields``, records API passes only. There is
    always a records API pass first."""
    listed: list[str] = []
    readable: list[str] = []
    for name in fields:
        if name not in (CURSOR_FIELD, "id") and name not in listed and name not in readable:
            (readable if name in coql_fields else listed).append(name)
    size = MAX_FIELDS_PER_CALL - 1
    # The first pass is a records API pass even when COQL could read every field: it is the one route that
    # surely returns every record of the window (docs/zoho-crm-api.md §3.8, COQL and hidden records).
    room = -len(listed) % size if listed else size
    listed, readable = listed + readable[:room], readable[room:]
    coql_size = COQL_COLUMNS - 2
    passes = [FieldPass([CURSOR_FIELD, *listed[i : i + size]]) for i in range(0, len(listed), size)]
    passes += [
        FieldPass([CURSOR_FIELD, *readable[i : i + coql_size]], coql=True)
        for i in range(0, len(readable), coql_size)
    ]
    return passes or [FieldPass([CURSOR_FIELD])]


def field_passes(fields: Sequence[str]) -> list[list[str]]:
    """``fields`` in groups of at most 50, each holding ``Modified_Time`` (``id`` always comes back anyway).
    """
    return [each.fields for each in plan_passes(fields)]


def _one_version(parts: dict[int, Record]) -> bool:
    """Whether the parts of a record carry one ``Modified_Time``: the same text, or the same instant written
    another way (COQL's rendering of a date-time is UNCONFIRMED, docs/zoho-crm-api.md §3.8)."""
    stamps = {part[CURSOR_FIELD] for part in parts.values()}
    return len(stamps) == 1 or len({_version_key(part) for part in parts.values()}) == 1


def modified_time(record: Record) -> datetime:
    """The record's ``Modified_Time`` in UTC."""
    return parse_datetime(str(record[CURSOR_FIELD]))


def readable_modified_time(record: Record) -> datetime | None:
    """The record's ``Modified_Time`` in UTC, or ``None`` when Zoho sent something that is not a date-time.

    Such a record is still read and handed on (the writer keeps it with its ``_raw`` and says so in one
    sentence): a reader must never fail a window, or lose a record, because of one bad value.
    """
    try:
        return modified_time(record)
    except (KeyError, TypeError, ValueError):
        return None


def _version_key(record: Record) -> tuple[int, datetime | str]:
    """Orders the versions of one record: readable times by instant, above any unreadable text."""
    when = readable_modified_time(record)
    return (1, when) if when is not None else (0, str(record.get(CURSOR_FIELD)))


class PassReader:
    """One field pass over the window: its own page-token chain, restarted in time when the chain breaks."""

    def __init__(
        self,
        http: ZohoHttp,
        module: str,
        fields: list[str],
        start: datetime,
        end: datetime,
        need: Need,
        scope: Mapping[str, str] = EVERY_RECORD,
    ) -> None:
        self.http = http
        self.module = module
        self.fields = fields
        self.scope = scope
        self.start = start
        self.end = end
        self.need = need
        self.since = start
        self.page_token: str | None = None
        self.done = False
        self.last_seen: datetime | None = None
        self.ids_at_last_seen: set[str] = set()
        self.pages = 0
        self.accepted = 0
        # Held while a page is accepted and while the window's end moves (WindowReader.split): a record is
        # judged against one end only, so a split never loses or doubles a record.
        self.lock = threading.Lock()

    @property
    def pages_of_200(self) -> bool:
        """Whether this pass reads the records API's pages of 200 (a COQL pass reads 2,000 a call)."""
        return True

    def _params(self) -> dict[str, Any]:
        params: dict[str, Any] = {
            "fields": ",".join(self.fields),
            "sort_by": CURSOR_FIELD,
            "sort_order": "asc",
            "per_page": PER_PAGE,
            **self.scope,
        }
        if self.page_token:
            params["page_token"] = self.page_token
        return params

    def _restart(self, error: ZohoAPIError) -> None:
        if self.last_seen is None or self.last_seen <= self.since:
            raise ZohoAPIError(
                f"Reading {self.module} from {header_datetime(self.since)} cannot make progress: Zoho ended "
                f"the page-token chain ({error.code}) before any later Modified_Time; more records share "
                "one second than a chain can return.",
                code=error.code,
                status=error.status,
            ) from None
        log.info(
            "%s: page-token chain ended (%s); restarting from %s.",
            self.module,
            error.code,
            header_datetime(self.last_seen),
        )
        self.since = self.last_seen
        self.page_token = None

    def next_page(self) -> list[Record]:
        """The next page's records inside the window (possibly empty); sets ``done`` at the end."""
        while not self.done:
            try:
                answer = self.http.get(
                    f"/{self.module}",
                    self.need,
                    params=self._params(),
                    headers={"If-Modified-Since": header_datetime(self.since)},
                )
            except ZohoAPIError as error:
                if error.code in RESTART_CODES and self.page_token:
                    self._restart(error)
                    continue
                raise
            if answer.body is None:
                self.done = True
                return []
            return self._accept(answer.body)
        return []

    def _accept(self, body: dict[str, Any]) -> list[Record]:
        with self.lock:
            kept = self._accept_locked(body)
            self.pages += 1
            self.accepted += len(kept)
            return kept

    def _accept_locked(self, body: dict[str, Any]) -> list[Record]:
        kept = self._keep(body.get("data") or [])
        info = body.get("info") or {}
        token = info.get("next_page_token")
        if not self.done and (not info.get("more_records") or not token):
            self.done = True
        self.page_token = None if self.done else str(token)
        return kept

    def _keep(self, records: list[Record]) -> list[Record]:
        """The records of a page inside the window and not yet emitted; ``done`` once one is past its end.
        Called with ``lock`` held."""
        kept: list[Record] = []
        for record in records:
            when = readable_modified_time(record)
            if when is None:
                kept.append(record)  # served inside this chain's order; the writer reports the bad value
                continue
            if when >= self.end:
                self.done = True
                break
            if when < self.start:
                continue
            if self.last_seen is not None and when == self.last_seen:
                if record["id"] in self.ids_at_last_seen:
                    continue  # already emitted before a restart from this instant
                self.ids_at_last_seen.add(record["id"])
            elif self.last_seen is None or when > self.last_seen:
                self.last_seen, self.ids_at_last_seen = when, {record["id"]}
            kept.append(record)
        return kept


class WindowReader:
    """Joins the passes of one window on ``id`` and yields complete records page by page."""

    def __init__(
        self,
        http: ZohoHttp,
        module: str,
        fields: Sequence[str],
        start: datetime,
        end: datetime,
        need: Need,
        parallelism: int = 1,
        coql_fields: Collection[str] = (),
        coql_switch: "CoqlSwitch | None" = None,
        coql_first_page: int = COQL_FIRST_PAGE,
        scope: Mapping[str, str] = EVERY_RECORD,
        full_text_fields: Sequence[str] = (),
    ) -> None:
        # coql_pass builds on PassReader, defined here, so it is imported when a window is made.
        from zoho_dagster.client.coql_pass import CoqlPassReader, CoqlSwitch

        self.http = http
        self.module = module
        self.need = need
        self.start, self.end = as_utc(start), as_utc(end)
        self.fields = list(fields)
        self.scope = scope
        # COQL has no equivalent of the list API's ``converted`` and ``approved``: a read of a hidden set
        # (visibility.HIDDEN_SETS) uses the records API only.
        self.coql_fields = frozenset(coql_fields) if scope == EVERY_RECORD else frozenset()
        self.coql_switch = coql_switch or CoqlSwitch()
        self.passes: list[PassReader] = [
            CoqlPassReader(
                http, module, each.fields, self.start, self.end, need, self.coql_switch, coql_first_page
            )
            if each.coql
            else PassReader(http, module, each.fields, self.start, self.end, need, scope)
            for each in plan_passes(fields, self.coql_fields)
        ]
        self.parallelism = max(1, min(parallelism, len(self.passes)))
        self.full_text_fields = tuple(name for name in full_text_fields if name in self.fields)
        self.full_text = FullText(http, module, self.full_text_fields, need)
        # Each pass's (last_seen, done) as of the last page the join has taken in, not the pass's live state:
        # a pass reading its next page in a pool thread moves past records the join has not received yet.
        self._reached: list[tuple[datetime | None, bool]] = [(None, False)] * len(self.passes)

    @property
    def call_weight(self) -> int:
        """The page-token chains of this window that keep a call slot busy: its records API passes (a COQL
        pass calls once per 2,000 records, a tenth as often), at least 1."""
        return max(1, sum(1 for reader in self.passes if reader.pages_of_200))

    def sibling(self, start: datetime, end: datetime) -> "WindowReader":
        """A reader of the same module, fields and pass plan over ``[start, end)``: a slice of a window known
        to hold more than a page, so its COQL passes start with pages of 2,000."""
        return WindowReader(
            self.http,
            self.module,
            self.fields,
            start,
            end,
            self.need,
            self.parallelism,
            self.coql_fields,
            self.coql_switch,
            COQL_NEXT_PAGE,
            self.scope,
            self.full_text_fields,
        )

    @property
    def started(self) -> bool:
        """Whether every pass has read its first page (so the window's size is no longer a guess)."""
        return all(reader.pages > 0 for reader in self.passes)

    @property
    def done(self) -> bool:
        return all(reader.done for reader in self.passes)

    def remaining_estimate(self) -> float:
        """Records still to come, guessed from the density read so far (0 when nothing is known yet)."""
        reader = self.passes[0]
        last = reader.last_seen
        if not self.started or self.done or last is None or last <= self.start:
            return 0.0
        density = reader.accepted / (last - self.start).total_seconds()
        return density * (self.end - last).total_seconds()

    def progress(self) -> datetime:
        """The latest ``Modified_Time`` any pass has accepted (the window's start before the first page)."""
        return max((r.last_seen for r in self.passes if r.last_seen is not None), default=self.start)

    def split(self, fraction: float = 0.5) -> "WindowReader | None":
        """Hand the later part of what is left of this window to a new reader, or ``None`` if it cannot.

        ``fraction`` places the cut within what is left: 0.5 halves it; 0 keeps only the second just after
        the progress here (the rest goes to Bulk Read, say).

        The split instant ``m`` lies after every record any pass has accepted (the passes' locks are held),
        so this reader stops before ``m`` and the new one starts at ``m`` (``If-Modified-Since`` is
        inclusive): each record belongs to exactly one of the two. The chain that continues here may fetch up
        to one page beyond ``m`` per pass: the price of splitting without knowing the distribution.
        """
        for reader in self.passes:
            reader.lock.acquire()
        try:
            if not self.started or self.done:
                return None
            progress = self.progress()
            middle = progress + (self.end - progress) * fraction
            cut = middle.replace(microsecond=0) + timedelta(seconds=1)  # Zoho's times are whole seconds
            if cut <= progress or cut >= self.end:
                return None
            later = self.sibling(cut, self.end)
            self.end = cut
            for reader in self.passes:
                reader.end = cut
            return later
        finally:
            for reader in self.passes:
                reader.lock.release()

    def __iter__(self) -> Iterator[list[Record]]:
        """Complete records page by page, rich text whole (:mod:`zoho_dagster.client.full_text`)."""
        for page in self._pages():
            yield self.full_text.complete(page)

    def _pages(self) -> Iterator[list[Record]]:
        if self.start >= self.end:
            return
        if len(self.passes) == 1:
            reader = self.passes[0]
            while not reader.done:
                page = reader.next_page()
                if page:
                    yield page
            return
        if self.parallelism > 1:
            with ThreadPoolExecutor(self.parallelism, thread_name_prefix="zoho-pass") as pool:
                yield from self._overlapped(pool)
        else:
            yield from self._joined(lambda readers: [reader.next_page() for reader in readers])

    def _joined(self, fetch: Callable[[list[PassReader]], list[list[Record]]]) -> Iterator[list[Record]]:
        pending: dict[str, dict[int, Record]] = {}
        while not all(reader.done for reader in self.passes):
            active = [(index, reader) for index, reader in enumerate(self.passes) if not reader.done]
            pages = fetch([reader for _, reader in active])
            for (index, _), page in zip(active, pages, strict=True):
                self._take_in(index, page, pending)
            page = self._take_complete(pending)
            if page:
                yield page
        yield from self._leftovers(pending)

    def _overlapped(self, pool: ThreadPoolExecutor) -> Iterator[list[Record]]:
        """The passes read in parallel, each up to one page (200 records) ahead of the slowest once a page
        is out; ahead is counted in records, since a COQL pass's page holds 2,000.

        Why: in lockstep, the pass that answered first left its call slot idle while it waited for the other
        pass and for the join; a 300 ms read kept 86% of its slots busy. Until the first page is handed out
        no pass reads ahead, so taking it costs one page per pass.
        """
        pending: dict[str, dict[int, Record]] = {}
        in_flight: dict[Future[list[Record]], int] = {}
        ahead = 0

        def refill() -> None:
            active = [index for index, reader in enumerate(self.passes) if not reader.done]
            if not active:
                return
            slowest = min(self.passes[index].accepted for index in active)
            busy = set(in_flight.values())
            for index in active:
                if index not in busy and self.passes[index].accepted <= slowest + ahead * PER_PAGE:
                    in_flight[pool.submit(self.passes[index].next_page)] = index

        refill()
        while in_flight:
            finished, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            for future in finished:
                index = in_flight.pop(future)
                self._take_in(index, future.result(), pending)
            page = self._take_complete(pending)
            if page and not ahead:  # the first page: nothing is read ahead while the consumer holds it
                yield page
                ahead, page = 1, []
            refill()
            if page:
                yield page
        yield from self._leftovers(pending)

    def _take_in(self, index: int, page: list[Record], pending: dict[str, dict[int, Record]]) -> None:
        """Hold pass ``index``'s page for the join and note how far that pass has delivered. Called while the
        pass is idle (its page is in hand), so its ``last_seen`` and ``done`` describe what it has given."""
        for record in page:
            pending.setdefault(str(record["id"]), {})[index] = record
        reader = self.passes[index]
        self._reached[index] = (reader.last_seen, reader.done)

    def read_ids(self, ids: Sequence[str]) -> list[Record]:
        """The records ``ids`` (at most 100) with every pass's fields, one version each, rich text whole:
        the completion step of a window, for a reader of given ids (change notifications). Ids Zoho no longer
        holds are left out."""
        return self.full_text.complete(self._merge_all({str(rid): {} for rid in ids}))

    def _take_complete(self, pending: dict[str, dict[int, Record]]) -> list[Record]:
        """Merge and remove the records every pass has delivered, and, once 100 are waiting, those a pass
        has gone past without delivering them (completed by ``ids=``)."""
        complete = {rid: parts for rid, parts in pending.items() if len(parts) == len(self.passes)}
        overtaken = self._overtaken(pending) if len(pending) - len(complete) >= MAX_IDS_PER_CALL else {}
        if len(overtaken) >= MAX_IDS_PER_CALL:
            complete.update(overtaken)
        for rid in complete:
            del pending[rid]
        return self._merge_all(complete)

    def _overtaken(self, pending: dict[str, dict[int, Record]]) -> dict[str, dict[int, Record]]:
        """The incomplete records every pass that lacks them has read past: such a pass will not deliver them
        (its route leaves them out, e.g. COQL and a converted lead, or they moved), so waiting for the end of
        the window would only hold them in memory. A pass counts as past a record only by the pages the join
        has taken in (``_reached``): judged by its live state, a page still in flight would deliver the record
        after it was completed and emitted, and the record would come twice."""
        found: dict[str, dict[int, Record]] = {}
        for rid, parts in pending.items():
            if len(parts) == len(self.passes):
                continue
            when = readable_modified_time(next(iter(parts.values())))
            if when is None:
                continue
            missing = (i for i in range(len(self.passes)) if i not in parts)
            if all(self._past(i, when) for i in missing):
                found[rid] = parts
        return found

    def _past(self, index: int, when: datetime) -> bool:
        """Whether pass ``index`` has delivered everything it will before ``when`` and a record after it."""
        last_seen, done = self._reached[index]
        return done or (last_seen is not None and last_seen > when)

    def _leftovers(self, pending: dict[str, dict[int, Record]]) -> Iterator[list[Record]]:
        while pending:  # seen by some passes only: modified while the passes ran
            batch = dict(list(pending.items())[:MAX_IDS_PER_CALL])
            for rid in batch:
                del pending[rid]
            page = self._merge_all(batch)
            if page:
                yield page

    def _merge_all(self, parts_by_id: dict[str, dict[int, Record]]) -> list[Record]:
        """Merge complete, consistent parts; complete the others by ``ids=`` until they are consistent."""
        ready: list[Record] = []
        todo: dict[str, dict[int, Record]] = {}
        for rid, parts in parts_by_id.items():
            if len(parts) == len(self.passes) and _one_version(parts):
                ready.append(self._merge(parts))
            else:
                todo[rid] = parts
        for _ in range(5):
            if not todo:
                break
            self._complete(todo)
            for rid in list(todo):
                parts = todo[rid]
                if not parts:
                    del todo[rid]  # gone from Zoho (deleted meanwhile): the deletions stream handles it
                    continue
                versions = {_version_key(part) for part in parts.values()}
                if len(parts) == len(self.passes) and len(versions) == 1:
                    ready.append(self._merge(parts))
                    del todo[rid]
                else:  # keep only the newest version's parts; fetch the rest again
                    newest = max(versions)
                    todo[rid] = {i: p for i, p in parts.items() if _version_key(p) == newest}
        if todo:
            raise ZohoAPIError(
                f"{self.module}: {len(todo)} record(s) kept changing while their fields were read in "
                "passes; run the window again."
            )
        return ready

    def _complete(self, todo: dict[str, dict[int, Record]]) -> None:
        """Fetch each pass's fields for the ids that lack them (``ids=``, 100 per call)."""
        gone: set[str] = set()
        for index, reader in enumerate(self.passes):
            missing = [rid for rid, parts in todo.items() if index not in parts and rid not in gone]
            for offset in range(0, len(missing), MAX_IDS_PER_CALL):
                chunk = missing[offset : offset + MAX_IDS_PER_CALL]
                answer = self.http.get(
                    f"/{self.module}",
                    self.need,
                    params={"ids": ",".join(chunk), "fields": ",".join(reader.fields), **EVERY_RECORD},
                )
                found = {str(r["id"]): r for r in (answer.body or {}).get("data") or []}
                for rid in chunk:
                    if rid in found:
                        todo[rid][index] = found[rid]
                    else:
                        gone.add(rid)
        for rid in gone:
            todo[rid].clear()

    @staticmethod
    def _merge(parts: dict[int, Record]) -> Record:
        """One record from its passes' parts; ``id`` and ``Modified_Time``, in every part, as the first pass
        (a records API pass when there is one) wrote them."""
        merged: Record = {}
        for index in sorted(parts, reverse=True):
            merged.update(parts[index])
        return merged
