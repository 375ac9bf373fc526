"""One chunk of a window read with Bulk Read, whatever its fields and whatever Bulk Read leaves out.

Why: a Bulk Read job exports 200,000 records for a few calls, where the records API takes 1,000 calls per
50-field pass; but the CSV cannot carry every field as the records API renders it (uploads, reminders; a
layout whose name the layouts API does not give), and whether Bulk Read exports converted records and records
awaiting approval is UNCONFIRMED (docs/zoho-crm-api.md §4, :mod:`zoho_dagster.client.visibility`). Refusing
Bulk Read for any of these would put a million-record backfill back on the records API; ignoring them would
lose fields or records without an error. So a chunk ``[start, end)`` (at most 200,000 records,
``client._Counts.chunks``) is read in four parts, joined on ``id``:

1. **the job**: a Bulk Read job for the fields the CSV carries (``bulk_fields``), created first, since Zoho
   takes its time to run it;
2. **the other fields** (``other_fields``), read meanwhile over the same chunk by the cheapest other route:
   one COQL chain (2,000 rows a call) when every one of them has a type COQL returns as the list API does
   (:func:`zoho_dagster.client.coql.same_shape_fields`), else records API passes asking only for the records
   the list API shows by default (``converted=false&approved=true``, :data:`SHOWN_BY_DEFAULT`): the others
   come whole from part 3. They are kept in memory, id → values: the smaller side (a few fields of the
   chunk's records);
3. **the hidden sets**, once the job has completed: records API passes of every field with
   ``converted=true`` and with ``approved=false`` (:data:`~zoho_dagster.client.visibility.HIDDEN_SETS`; no
   COQL, which may leave them out too), emitted as they come, their ids and ``Modified_Time`` kept;
4. **the CSV**, streamed: a row whose id a hidden set gave with a ``Modified_Time`` at least as new is
   dropped (the records API's version, with Zoho's ``$`` keys, stands); the others take their other fields
   from memory. A row is emitted only whole and of one version: a row without its other fields, other fields
   without their row, a layout id the layouts API did not list, two parts of different ``Modified_Time``
   are completed with ``ids=`` calls (records API, 100 ids a call, every record visible), as
   ``WindowReader`` completes its passes. A record is never dropped because one side lacks it, and never
   emitted half-filled; one deleted meanwhile (``ids=`` no longer finds it) is left to the deletions stream.

Rich text is whole on every route (:mod:`zoho_dagster.client.full_text`): the CSV carries it whole, so a CSV
row needs nothing more, unless its value is exactly as long as the list API's cut (in case Zoho's CSV cuts
too, UNCONFIRMED); what the records API's lists gave (the hidden sets, ``ids=`` completions) is read again
whole where the list may have cut it, one single-record read per such record. A hidden-set record whose
value the list cut is held until the CSV has been read: if the job exported it after all (the permissive
reading), its row's value completes it for nothing; the rest are read one at a time at the end. So the
strict reading costs what it must and the permissive one nothing more than the all-exportable case.

A row of the CSV that no hidden set gave is, by construction, neither converted nor awaiting approval as of
the hidden sets' read, which comes after the job's snapshot. It gets ``$approved: true`` and
``$approval_state: "approved"`` and, in a module whose fields metadata lists ``Converted__s``,
``$converted: false`` and ``$converted_detail: {}`` (:func:`shown_system_keys`): the table's ``$`` columns
(:func:`~zoho_dagster.client.visibility.system_fields`) as the records API fills them for such a record
(docs/zoho-crm-api.md §5), so they are filled as on the records API route. A record completed by ``ids=``
carries the records API's own ``$`` keys instead.

The table comes out the same whichever way Zoho answers the UNCONFIRMED points: with hidden records in the
CSV, they are dropped for the hidden sets' versions; without them, the hidden sets bring them. Memory holds
the other fields of one chunk's shown records and the ids of its hidden ones, never the CSV (streamed from a
temporary file, :class:`~zoho_dagster.client.bulk.BulkReader`) or the emitted records.
"""

import json
import logging
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any

from zoho_dagster.client.bulk import BulkReader
from zoho_dagster.client.coql import COQL_COLUMNS, COQL_NEXT_PAGE
from zoho_dagster.client.coql_pass import CoqlPassReader, CoqlSwitch
from zoho_dagster.client.errors import ZohoAPIError
from zoho_dagster.client.full_text import LIST_TEXT_LIMIT, FullText, maybe_cut
from zoho_dagster.client.http import Need, ZohoHttp
from zoho_dagster.client.records import (
    CURSOR_FIELD,
    MAX_FIELDS_PER_CALL,
    MAX_IDS_PER_CALL,
    Record,
    WindowReader,
    readable_modified_time,
)
from zoho_dagster.client.timeutil import as_utc
from zoho_dagster.client.visibility import EVERY_RECORD, HIDDEN_SETS, system_fields

log = logging.getLogger(__name__)

SHOWN_BY_DEFAULT: Mapping[str, str] = MappingProxyType({"converted": "false", "approved": "true"})
"""Get Records' own defaults, spelt out: the records that neither hidden set holds (docs/zoho-crm-api.md
§2.1). Together with :data:`~zoho_dagster.client.visibility.HIDDEN_SETS` they are every record."""
COMPLETION_ROUNDS = 5
LEFTOVER_BATCH = 10 * MAX_IDS_PER_CALL
"""``ids=`` rounds for a record whose parts keep disagreeing (it is being modified while read)."""

Version = tuple[int, datetime | str]
"""Orders the versions of one record: a readable ``Modified_Time`` by instant, above unreadable text."""
SlicedRead = Callable[[WindowReader], Iterable[list[Record]]]
"""Reads a window, e.g. in concurrent slices (``client.SlicedReader``)."""


def version_of(record: Record) -> Version:
    """The version of a record (or part): its ``Modified_Time`` as an instant, or its text if unreadable."""
    when = readable_modified_time(record)
    return (1, when) if when is not None else (0, str(record.get(CURSOR_FIELD)))


SHOWN_VALUES: Mapping[str, Any] = MappingProxyType(
    {"$approved": True, "$approval_state": "approved", "$converted": False, "$converted_detail": {}}
)
"""The ``$`` keys of a record neither converted nor awaiting approval, as Zoho's sample Lead shows them
(docs/zoho-crm-api.md §5: ``"$approved":true``, ``"$approval_state":"approved"``, ``"$converted":false``;
``$converted_detail`` is ``{}`` until a conversion fills it)."""


def shown_system_keys(fields_metadata: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The ``$`` columns of the table (:func:`~zoho_dagster.client.visibility.system_fields`) as the records
    API fills them for a record that is neither converted nor awaiting approval: ``$approved: true`` and
    ``$approval_state: "approved"``, and where the metadata lists ``Converted__s``, ``$converted: false`` and
    ``$converted_detail: {}``. A fresh dict each call (values are copied per record by :func:`_shown`)."""
    return {
        str(meta["api_name"]): SHOWN_VALUES[str(meta["api_name"])] for meta in system_fields(fields_metadata)
    }


def _shown(record: Record, defaults: Mapping[str, Any]) -> None:
    for key, value in defaults.items():
        record[key] = dict(value) if isinstance(value, dict) else value


def _pack(record: Record) -> bytes:
    """A record as compact JSON, for the maps that hold up to a chunk's worth (:func:`_unpack` reverses it):
    a third of the memory of the dict, at a small cost in time."""
    return json.dumps(record, separators=(",", ":")).encode()


def _unpack(packed: bytes) -> Record:
    """A record (or its other fields) as :func:`_pack` packed it."""
    values: Record = json.loads(packed)
    return values


@dataclass
class _Pending:
    """A record waiting for ``ids=`` completion: its parts, newest version only, and whether it must carry
    the records API's ``$`` keys (it was in a hidden set: the defaults of a shown record may be wrong)."""

    parts: list[tuple[Record, bool]] = field(default_factory=list)
    """(part, from the records API asked for every record)."""
    needs_api: bool = False


class BulkJoin:
    """The records with ``start <= Modified_Time < end`` holding ``fields``, read as the module docstring
    says; yields pages of records in the records API's shape.

    ``bulk_fields`` go to the job, ``other_fields`` (the rest of ``fields``) to the other route, COQL when
    all of them are in ``coql_fields``. ``sliced`` reads a records API window (concurrent slices, say).
    ``bulk_options`` are passed to :class:`~zoho_dagster.client.bulk.BulkReader` (``fields_metadata`` and
    ``layouts_metadata`` among them). ``emitted`` says whether a page went out, for a caller that falls back
    to the records API if the job is refused (it is refused before any page).
    """

    def __init__(
        self,
        http: ZohoHttp,
        module: str,
        fields: Sequence[str],
        start: datetime,
        end: datetime,
        need: Need,
        *,
        fields_metadata: Sequence[Mapping[str, Any]],
        full_text_fields: Sequence[str],
        bulk_fields: Sequence[str],
        coql_fields: Collection[str] = (),
        coql_switch: CoqlSwitch | None = None,
        sliced: SlicedRead | None = None,
        bulk_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.http = http
        self.module = module
        self.need = need
        self.start, self.end = as_utc(start), as_utc(end)
        wanted = [name for name in dict.fromkeys(fields) if name not in ("id", CURSOR_FIELD)]
        self.fields = [CURSOR_FIELD, *wanted]
        self.bulk_fields = [name for name in wanted if name in set(bulk_fields)]
        self.other_fields = [name for name in wanted if name not in set(self.bulk_fields)]
        self.coql_fields = frozenset(coql_fields)
        self.coql_switch = coql_switch or CoqlSwitch()
        self.sliced: SlicedRead = sliced or (lambda window: window)
        self.defaults = shown_system_keys(fields_metadata)
        self.full_text_fields = [name for name in full_text_fields if name in wanted]
        self.full_text = FullText(http, module, self.full_text_fields, need)
        """Rich text a list answer (an ``ids=`` completion) cut, read again whole (client/full_text.py); and a
        CSV value exactly as long as the list's cut, in case Zoho's CSV cuts it too (UNCONFIRMED, §4.1)."""
        self.bulk = BulkReader(
            http,
            module,
            self.bulk_fields,
            self.start,
            self.end,
            need,
            fields_metadata=fields_metadata,
            partial=True,
            **dict(bulk_options or {}),
        )
        self.csv_text_fields = [name for name in self.full_text_fields if name in self.bulk_fields]
        """Rich text the CSV carries whole: a hidden-set record's cut value waits for the CSV's row."""
        self.emitted = False
        self.hidden: dict[str, Version] = {}
        """Ids a hidden set gave, with the newest version it gave."""
        self.held: dict[str, tuple[Version, bytes, set[str]]] = {}
        """Hidden-set records whose rich text the list cut (version, the record as compact JSON, the fields
        still cut), held until the CSV is read: if the job exported them (the permissive reading), their CSV
        row's whole value saves a single-record read each; else they are read whole at the end. About 15% of
        the hidden sets on the simulator: some 10,000 records of a 200,000-record chunk, packed like
        :attr:`other` (as dicts they added 200 MB to a million-lead read)."""
        self.other_by_coql = bool(self.other_fields) and (
            self.coql_fields.issuperset(self.other_fields) and len(self.other_fields) <= COQL_COLUMNS - 2
        )
        self.other: dict[str, bytes] = {}
        """Id → its ``Modified_Time`` and other fields as one compact JSON text: a chunk holds up to 200,000
        of them (160,000 Leads with rich text cut to 500 characters: about 80 MB; a tuple of the decoded
        values, about 90 MB). The standard library's encoder, since orjson's small outputs each kept a
        4 KB buffer."""
        self.counts = {
            "bulk rows": 0,
            "dropped": 0,
            "hidden": 0,
            "rich text from the CSV": 0,
            "completed": 0,
            "gone": 0,
        }

    # --- the parts -----------------------------------------------------------------------------------------

    def __iter__(self) -> Iterator[list[Record]]:
        if not self.bulk.prepare():
            return
        page = 1
        job_id = self.bulk.submit(page)  # BulkUnavailable here: nothing emitted, the caller re-plans
        if self.other_fields:
            self._read_other()
        job_id, result = self.bulk.wait(job_id, page)
        for output in self._read_hidden():
            yield self._emit(output)
        todo: dict[str, _Pending] = {}
        while True:
            pages = self.bulk.result_pages(job_id, result, page)
            while True:
                try:
                    rows = next(pages)
                except StopIteration as stop:
                    result = stop.value
                    break
                output = self._join(rows, todo)
                if len(todo) >= MAX_IDS_PER_CALL:
                    output += self._complete(todo)
                if output:
                    yield self._emit(output)
            if not result.get("more_records"):
                break
            page += 1
            job_id, result = self.bulk.wait(self.bulk.submit(page), page)
        for batch in self._batches(todo):
            output = self._complete(batch)
            if output:
                yield self._emit(output)
        yield from self._release_held()
        log.info(
            "%s: Bulk Read chunk %s..%s joined: %s.",
            self.module,
            self.start.isoformat(),
            self.end.isoformat(),
            ", ".join(f"{n} {what}" for what, n in self.counts.items()),
        )

    def _emit(self, records: list[Record]) -> list[Record]:
        self.emitted = True
        return records

    def _read_other(self) -> None:
        """Part 2: the other fields of the chunk's records into memory, by COQL or the records API."""
        if self.other_by_coql:
            reader = CoqlPassReader(
                self.http,
                self.module,
                [CURSOR_FIELD, *self.other_fields],
                self.start,
                self.end,
                self.need,
                self.coql_switch,
                COQL_NEXT_PAGE,
            )
            pages: Iterable[list[Record]] = _chain(reader)
        else:
            window = WindowReader(
                self.http,
                self.module,
                [CURSOR_FIELD, *self.other_fields],
                self.start,
                self.end,
                self.need,
                scope=SHOWN_BY_DEFAULT,
                full_text_fields=self.full_text_fields,
            )
            pages = self.sliced(window)
        names = [CURSOR_FIELD, *self.other_fields]
        for page in pages:
            for record in page:
                rid = str(record["id"])
                known = self.other.get(rid)
                if known is not None and version_of(_unpack(known)) > version_of(record):
                    continue  # an older version read after a newer one (the record moved meanwhile)
                self.other[rid] = _pack({name: record[name] for name in names if name in record})

    def _read_hidden(self) -> Iterator[list[Record]]:
        """Part 3: the converted records and the records awaiting approval, whole, from the records API; those
        whose rich text the list cut wait for the CSV (:attr:`held`) when the CSV carries that field."""
        read_now = [name for name in self.full_text_fields if name not in self.csv_text_fields]
        for scope in HIDDEN_SETS:
            window = WindowReader(
                self.http,
                self.module,
                self.fields,
                self.start,
                self.end,
                self.need,
                scope=scope,
                full_text_fields=read_now,
            )
            for page in self.sliced(window):
                output = []
                for record in page:
                    rid, version = str(record["id"]), version_of(record)
                    seen = self.hidden.get(rid)
                    if seen is not None and seen >= version:
                        continue  # in both sets (converted and awaiting approval): emitted once
                    self.hidden[rid] = version
                    self.held.pop(rid, None)  # an older version held: this one replaces it
                    cut = {name for name in self.csv_text_fields if maybe_cut(record, [name])}
                    if cut:
                        self.held[rid] = (version, _pack(record), cut)
                        continue
                    output.append(record)
                self.counts["hidden"] += len(output)
                if output:
                    yield output

    def _join(self, rows: list[Record], todo: dict[str, _Pending]) -> list[Record]:
        """Part 4, one page of CSV rows: whole records out, the others into ``todo``."""
        output = self._join_rows(rows, todo)
        recheck = [
            record
            for record in output
            if any(len(record.get(name) or "") == LIST_TEXT_LIMIT for name in self.full_text_fields)
        ]
        self.full_text.complete(recheck)  # in place
        return output

    def _join_rows(self, rows: list[Record], todo: dict[str, _Pending]) -> list[Record]:
        output: list[Record] = []
        for row in rows:
            self.counts["bulk rows"] += 1
            rid, version = str(row["id"]), version_of(row)
            hidden = self.hidden.get(rid)
            if hidden is not None and hidden >= version:
                self.counts["dropped"] += 1
                whole = self._text_from_csv(rid, row)
                if whole is not None:
                    output.append(whole)
                continue
            self.held.pop(rid, None)  # the CSV's version is newer: completed by ids= below
            packed = self.other.pop(rid, None)
            other = None if packed is None else _unpack(packed)
            whole = all(name in row for name in self.bulk_fields)
            if hidden is None and whole and (not self.other_fields or self._same(other, version)):
                output.append(self._merge(row, other))
                continue
            pending = todo.setdefault(rid, _Pending())
            pending.parts.append((row, False))
            if other is not None:
                pending.parts.append(({**other, "id": rid}, False))
            pending.needs_api = hidden is not None
        return output

    def _text_from_csv(self, rid: str, row: Record) -> Record | None:
        """The held record ``rid`` once its CSV row (same version) has given every value the list cut, else
        None. A CSV value exactly as long as the list's cut is not taken (it may be cut too, §4.1)."""
        held = self.held.get(rid)
        if held is None or held[0] != version_of(row):
            return None
        version, packed, cut = held
        record = _unpack(packed)
        for name in list(cut):
            value = row.get(name)
            if isinstance(value, str) and len(value) != LIST_TEXT_LIMIT:
                record[name] = value
                cut.discard(name)
                self.counts["rich text from the CSV"] += 1
        if cut:
            self.held[rid] = (version, _pack(record), cut)
            return None
        del self.held[rid]
        return record

    def _release_held(self) -> Iterator[list[Record]]:
        """The held records no CSV row completed (the strict reading: the job left them out), their rich
        text read whole one record at a time, in pages of :data:`MAX_IDS_PER_CALL`."""
        while self.held:
            batch = [self.held.popitem()[1][1] for _ in range(min(MAX_IDS_PER_CALL, len(self.held)))]
            yield self._emit(self.full_text.complete([_unpack(packed) for packed in batch]))

    def _batches(self, todo: dict[str, _Pending]) -> Iterator[dict[str, _Pending]]:
        """What is left once the CSV is read, in batches of 1,000 records: the rows still waiting, then the
        other fields whose record the CSV lacked (completed unless a hidden set gave that record)."""
        batch = dict(todo)
        todo.clear()
        while self.other:
            rid, packed = self.other.popitem()
            hidden = self.hidden.get(rid)
            part = {**_unpack(packed), "id": rid}
            if hidden is not None and hidden >= version_of(part):
                continue
            batch.setdefault(rid, _Pending()).parts.append((part, False))
            if len(batch) >= LEFTOVER_BATCH:
                yield batch
                batch = {}
        if batch:
            yield batch

    # --- joining -------------------------------------------------------------------------------------------

    @staticmethod
    def _same(other: Record | None, version: Version) -> bool:
        return other is not None and version_of(other) == version

    def _merge(self, row: Record, other: Record | None) -> Record:
        """A CSV row and its other fields (same version), with the ``$`` keys of a shown record."""
        record = row
        if other is not None:
            written = record.get(CURSOR_FIELD)
            record.update(other)
            if self.other_by_coql or other.get(CURSOR_FIELD) is None:
                record[CURSOR_FIELD] = written  # else the records API's rendering, as WindowReader keeps it
        _shown(record, self.defaults)
        return record

    def _complete(self, todo: dict[str, _Pending]) -> list[Record]:
        """Fetch what each pending record lacks with ``ids=`` until its parts are one whole version; rich
        text an ``ids=`` answer carried is then read whole."""
        ready: list[Record] = []
        listed: list[Record] = []
        for fetched in range(COMPLETION_ROUNDS + 1):
            wants: dict[tuple[str, ...], list[str]] = {}
            for rid in list(todo):
                pending = todo[rid]
                newest = max(version_of(part) for part, _ in pending.parts)
                pending.parts = [(part, api) for part, api in pending.parts if version_of(part) == newest]
                covered = {name for part, _ in pending.parts for name in part}
                missing = tuple(name for name in self.fields if name not in covered)
                if not missing and pending.needs_api and not any(api for _, api in pending.parts):
                    missing = (CURSOR_FIELD,)  # only for the records API's $ keys
                if not missing:
                    record = self._whole(pending)
                    ready.append(record)
                    if any(api and set(self.full_text_fields) & part.keys() for part, api in pending.parts):
                        listed.append(record)
                    del todo[rid]
                    continue
                wants.setdefault(missing, []).append(rid)
            if not wants or fetched == COMPLETION_ROUNDS:
                break
            self._fetch(wants, todo)
        if todo:
            raise ZohoAPIError(
                f"{self.module}: {len(todo)} record(s) kept changing while their fields were read by Bulk "
                "Read and the records API; run the window again."
            )
        self.full_text.complete(listed)  # in place
        return ready

    def _fetch(self, wants: dict[tuple[str, ...], list[str]], todo: dict[str, _Pending]) -> None:
        """``ids=`` calls (every record visible) for the fields each group of records lacks."""
        size = MAX_FIELDS_PER_CALL - 1
        for missing, ids in wants.items():
            names = [name for name in missing if name != CURSOR_FIELD]
            groups = [names[i : i + size] for i in range(0, len(names), size)] or [[]]
            for offset in range(0, len(ids), MAX_IDS_PER_CALL):
                chunk = ids[offset : offset + MAX_IDS_PER_CALL]
                found: set[str] = set()
                for group in groups:
                    answer = self.http.get(
                        f"/{self.module}",
                        self.need,
                        params={
                            "ids": ",".join(chunk),
                            "fields": ",".join([CURSOR_FIELD, *group]),
                            **EVERY_RECORD,
                        },
                    )
                    for record in (answer.body or {}).get("data") or []:
                        rid = str(record.get("id"))
                        if rid in todo:
                            todo[rid].parts.append((record, True))
                            found.add(rid)
                for rid in chunk:
                    if rid not in found:
                        del todo[rid]  # deleted meanwhile: the deletions stream says so
                        self.counts["gone"] += 1

    def _whole(self, pending: _Pending) -> Record:
        """One record from parts of one version: CSV row first, then other fields, then the records API's
        parts (their ``Modified_Time`` text and ``$`` keys stand); shown-record ``$`` keys if none came."""
        record: Record = {}
        api = False
        for part, from_api in sorted(pending.parts, key=lambda item: item[1]):
            record.update(part)
            api = api or from_api
        if not api:
            _shown(record, self.defaults)
        self.counts["completed"] += 1
        return record


def _chain(reader: CoqlPassReader) -> Iterator[list[Record]]:
    while not reader.done:
        page = reader.next_page()
        if page:
            yield page
