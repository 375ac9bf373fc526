"""One org's records: lazily generated base records plus a small in-memory overlay of changes.

Base record `i` of a module is a pure function of the seed (see `datagen`), and its id, Created_Time and
Modified_Time are monotonic in `i`. Created, updated and deleted records live in the overlay; an updated or
deleted base record is excluded from the base sequence, and listings merge the two sorted streams, so any
page of a million-record module is found by bisection without materialising the module.
"""

from __future__ import annotations

import heapq
import itertools
import random
import threading
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .children import Children
from .clock import parse_time, render_time
from .computed import Computed, convert
from .currency import HOME
from .datagen import DAY, Generator, User, stable_int, system_keys
from .errors import ApiError
from .schema import (
    CHILD_OF_FIELD,
    CHILD_TYPES,
    COMPUTED_TYPES,
    LAYOUT_NAMES,
    MULTI_CURRENCY_FIELDS,
    ModuleSpec,
    layout_id,
)
from .visibility import Filter, Override, Visibility

SORT_FIELDS = ("id", "Created_Time", "Modified_Time")
RECYCLE_RETENTION = 60 * DAY
PERMANENT_RETENTION = 120 * DAY
RENDER_CACHE_LIMIT = 60_000
"""Base renderings kept (about 7 KB each for a Lead, so some 420 MB at most). A window read in concurrent
slices asks for each record once per field pass, the passes of a slice a few pages apart; a cache that holds
the recent records serves the second pass without generating them again, so the simulator (one core, the
GIL) keeps up with a client at an edition's full concurrency in the benchmarks."""

Key = tuple[int, int]  # (sort value, id)


@dataclass
class Deleted:
    """A deleted-records entry (docs/zoho-crm-api.md §3.6); times in epoch seconds."""

    id: str
    type: str
    deleted_time: float
    display_name: str | None
    created_by: int | None
    deleted_by: int | None


@dataclass
class ModuleState:
    """Overlay for one module: live overlay records by index, deletions, the next free index."""

    spec: ModuleSpec
    size: int
    next_index: int
    live: dict[int, dict[str, Any]] = field(default_factory=dict)
    deleted: dict[int, Deleted] = field(default_factory=dict)
    overrides: dict[int, Override] = field(default_factory=dict)
    """Converted / awaiting-approval state set through the control plane (visibility.Override)."""
    version: int = 0
    _sorted: dict[str, tuple[int, list[tuple[Key, int]]]] = field(default_factory=dict)

    def excluded(self, index: int) -> bool:
        return index in self.live or index in self.deleted


class OrgStore:
    """Records of every module of one org, with listing, truth and the control-plane mutations."""

    def __init__(self, gen: Generator, clock_now: Any, initial_deletes: bool = True) -> None:
        self.gen = gen
        self.users: list[User] = gen.users
        self._now = clock_now
        self._lock = threading.RLock()
        self._render_cache: dict[tuple[str, int], dict[str, Any]] = {}
        self._render_cache_lock = threading.Lock()
        self._render_cache_limit = RENDER_CACHE_LIMIT
        self.modules: dict[str, ModuleState] = {}
        for name, size in gen.sizes.items():
            spec = Generator.module(name)
            self.modules[name] = ModuleState(spec, size, size)
        if initial_deletes:
            self._seed_deletions()
        self.children = Children(self)
        self.computed = Computed(self)
        self.visibility = Visibility(self)
        self.mc_status = True
        """Multi-currency on (docs/zoho-crm-api.md §3.10): records of modules with currency fields carry
        `Currency` and `Exchange_Rate`; off, those fields are gone from records and metadata."""
        self._details: dict[int, dict[str, Any]] = {}
        self.listener: Callable[..., None] | None = None
        """Called ``(module, operation, record_id, affected_fields)`` after every create (``insert``), update
        and delete: the notification channels' hook (notifications.Notifier.listener); it only enqueues."""

    # --- seeding -------------------------------------------------------------------------------------------
    def _seed_deletions(self) -> None:
        """About 1% of each module starts in the recycle bin and 0.5% permanently deleted."""
        for state in self.modules.values():
            spec, size = state.spec, state.size
            if size < 10:
                continue
            rng = random.Random(stable_int(self.gen.seed, self.gen.org_id, spec.api_name, "deleted"))
            count = max(2, min(size // 100, 200))  # bounded: startup stays fast at 1M records
            picked = rng.sample(range(size), min(size, count + count // 2))
            for n, index in enumerate(picked):
                kind = "recycle" if n < count else "permanent"
                window = 50 * DAY if kind == "recycle" else 110 * DAY
                earliest = max(self.gen.modified(spec, index) + 60, self.gen.now0 - window)
                when = earliest + rng.random() * max(self.gen.now0 - earliest - 60, 1)
                rec = self.gen.record(spec, index)
                state.deleted[index] = self._deleted_entry(spec, rec, kind, when, rec["Owner"])

    def _deleted_entry(
        self, spec: ModuleSpec, rec: dict[str, Any], kind: str, when: float, by: int
    ) -> Deleted:
        if kind == "permanent":
            # Permanent entries carry null names (docs/zoho-crm-api.md §3.6 sample, §7.6).
            return Deleted(rec["id"], kind, when, None, None, None)
        name = rec.get(spec.name_field)
        return Deleted(rec["id"], kind, when, None if name is None else str(name), rec.get("Created_By"), by)

    # --- keys ----------------------------------------------------------------------------------------------
    def _base_key(self, spec: ModuleSpec, sort_by: str, index: int) -> Key:
        rid = self.gen.record_id(spec, index)
        if sort_by == "id":
            return (rid, rid)
        if sort_by == "Created_Time":
            return (self.gen.created(spec, index), rid)
        return (self.gen.modified(spec, index), rid)

    @staticmethod
    def _record_key(rec: dict[str, Any], sort_by: str) -> Key:
        rid = int(rec["id"])
        return (rid, rid) if sort_by == "id" else (int(rec[sort_by]), rid)

    def _overlay_sorted(self, state: ModuleState, sort_by: str) -> list[tuple[Key, int]]:
        with self._lock:
            cached = state._sorted.get(sort_by)
            if cached and cached[0] == state.version:
                return cached[1]
            items = sorted((self._record_key(rec, sort_by), idx) for idx, rec in state.live.items())
            state._sorted[sort_by] = (state.version, items)
            return items

    # --- listing -------------------------------------------------------------------------------------------
    def state(self, module: str) -> ModuleState:
        return self.modules[module]

    def stream(
        self,
        module: str,
        sort_by: str,
        descending: bool,
        since: float | None,
        after: Key | None,
        flt: Filter | None = None,
    ) -> Iterator[tuple[Key, int]]:
        """(key, index) of live records with Modified_Time >= since, in key order, strictly after `after`;
        with ``flt``, only the records it wants (converted / awaiting approval, visibility.Filter): hidden
        records are skipped while walking, so a page costs its records, not a scan of the module."""
        state = self.modules[module]
        spec, size = state.spec, state.size
        if flt is not None and flt.everything:
            flt = None
        lo = self.gen.first_index_modified_since(spec, since) if since is not None else 0
        overlay = [
            (k, i)
            for k, i in self._overlay_sorted(state, sort_by)
            if (since is None or int(state.live[i]["Modified_Time"]) >= since)
            and (flt is None or flt.wants(*self.visibility.state(state, i)))
        ]
        if descending:
            overlay.reverse()
            if after is not None:
                overlay = [(k, i) for k, i in overlay if k < after]
            start = size - 1 if after is None else self._last_below(spec, sort_by, after, lo, size)
            base = self._walk(state, sort_by, start, lo - 1, -1, flt)
            return heapq.merge(base, overlay, reverse=True)
        if after is not None:
            overlay = [(k, i) for k, i in overlay if k > after]
        start = lo if after is None else max(lo, self._first_above(spec, sort_by, after, size))
        return heapq.merge(self._walk(state, sort_by, start, size, 1, flt), overlay)

    def _walk(
        self, state: ModuleState, sort_by: str, start: int, stop: int, step: int, flt: Filter | None = None
    ) -> Iterator[tuple[Key, int]]:
        spec = state.spec
        if flt is None:
            for index in range(start, stop, step):
                if not state.excluded(index):
                    yield self._base_key(spec, sort_by, index), index
            return
        wanted = self.visibility.predicate(spec, flt)
        source = self.visibility.candidates(spec, flt)
        if source is None:
            indexes: Iterator[int] | range = range(start, stop, step)
        elif step == 1:
            indexes = (source[p] for p in range(bisect_left(source, start), bisect_left(source, stop)))
        else:  # descending from start down to stop + 1
            indexes = (
                source[p] for p in range(bisect_right(source, start) - 1, bisect_right(source, stop) - 1, -1)
            )
        for index in indexes:
            if not state.excluded(index) and (wanted is None or wanted(index)):
                yield self._base_key(spec, sort_by, index), index

    def matches(self, module: str, index: int, flt: Filter) -> bool:
        """Whether ``flt`` wants live record ``index`` (its converted / awaiting-approval state)."""
        return flt.everything or flt.wants(*self.visibility.state(self.modules[module], index))

    def _first_above(self, spec: ModuleSpec, sort_by: str, after: Key, size: int) -> int:
        lo, hi = 0, size
        while lo < hi:
            mid = (lo + hi) // 2
            if self._base_key(spec, sort_by, mid) > after:
                hi = mid
            else:
                lo = mid + 1
        return lo

    def _last_below(self, spec: ModuleSpec, sort_by: str, after: Key, lo: int, size: int) -> int:
        return min(self._first_above_or_equal(spec, sort_by, after, size), size) - 1

    def _first_above_or_equal(self, spec: ModuleSpec, sort_by: str, after: Key, size: int) -> int:
        lo, hi = 0, size
        while lo < hi:
            mid = (lo + hi) // 2
            if self._base_key(spec, sort_by, mid) >= after:
                hi = mid
            else:
                lo = mid + 1
        return lo

    def count(self, module: str, since: float | None = None, flt: Filter | None = None) -> int:
        """Live records with Modified_Time >= since (and that ``flt`` wants), without walking the base
        sequence: the generated records are counted from the sorted hidden indices (visibility.py)."""
        state = self.modules[module]
        spec = state.spec
        flt = flt or Filter("both", "both")
        vis = self.visibility
        lo = self.gen.first_index_modified_since(spec, since) if since is not None else 0
        base = vis.count_base(spec, lo, state.size, flt)
        with self._lock:
            excluded = sum(
                1
                for i in itertools.chain(state.live, state.deleted)
                if lo <= i < state.size and (flt.everything or flt.wants(*vis.base_state(spec, i)))
            )
            overlay = sum(
                1
                for i, rec in state.live.items()
                if (since is None or int(rec["Modified_Time"]) >= since)
                and (flt.everything or flt.wants(*vis.state(state, i)))
            )
        return base - excluded + overlay

    # --- records -------------------------------------------------------------------------------------------
    def internal(self, module: str, index: int) -> dict[str, Any] | None:
        state = self.modules[module]
        rec = state.live.get(index)
        if rec is not None:
            return rec
        if index >= state.size or index in state.deleted:
            return None
        return self.gen.record(state.spec, index)

    def modified_time(self, module: str, index: int) -> float | None:
        """A live record's Modified_Time (epoch) without generating it: base records' times are arithmetic in
        the index (datagen's module docstring). ``None`` for a deleted or absent record."""
        state = self.modules[module]
        rec = state.live.get(index)
        if rec is not None:
            return float(rec["Modified_Time"])
        if index >= state.size or index in state.deleted:
            return None
        return float(self.gen.modified(state.spec, index))

    def rendered(self, module: str, index: int) -> dict[str, Any] | None:
        """The full API rendering of a live record (base renderings are cached: they never change); formula,
        rollup and drifted values are laid over it on every read (docs/zoho-crm-api.md §3.3)."""
        state = self.modules[module]
        rec = state.live.get(index)
        if rec is not None:
            return self._finish(state.spec, index, self.render(state.spec, rec), rec)
        if index >= state.size or index in state.deleted:
            return None
        return self._finish(state.spec, index, self._base_rendering(state, index), None)

    def _base_rendering(self, state: ModuleState, index: int) -> dict[str, Any]:
        """A generated (never edited) record's rendering, from the cache or made and cached now."""
        key = (state.spec.api_name, index)
        cached = self._render_cache.get(key)
        if cached is None:
            cached = self.render(state.spec, self.gen.record(state.spec, index))
            self._cache_render(key, cached)
        return cached

    def _cache_render(self, key: tuple[str, int], rendered: dict[str, Any]) -> None:
        """Keep ``rendered``, dropping the oldest tenth when full. No thread waits here: one dict operation is
        atomic under the GIL, and only the thread that wins the lock evicts. A blocking lock made every
        request thread queue behind the one holding it while that one waited for the GIL (a lock convoy that
        cost a quarter of a 0 ms benchmark's wall time)."""
        cache = self._render_cache
        if len(cache) >= self._render_cache_limit and self._render_cache_lock.acquire(blocking=False):
            try:  # oldest first out: the recent records are the ones asked again
                for old in list(itertools.islice(cache, max(1, self._render_cache_limit // 10))):
                    cache.pop(old, None)
            finally:
                self._render_cache_lock.release()
        cache[key] = rendered

    def warm(self, module: str) -> int:
        """Render every base record of ``module`` now and keep them all, as Zoho holds its data at rest: the
        benchmarks call this before timing, so neither side pays the simulator's record generation (pure
        Python, one core) and the side that reads first is not the one that pays it. Returns the records
        rendered; the cache grows to hold them on top of its usual room."""
        state = self.modules[module]
        self._render_cache_limit = max(self._render_cache_limit, RENDER_CACHE_LIMIT + state.size)
        generated = [i for i in range(state.size) if not state.excluded(i)]
        for index in generated:
            self._base_rendering(state, index)
        return len(generated)

    def _finish(
        self, spec: ModuleSpec, index: int, out: dict[str, Any], live: dict[str, Any] | None
    ) -> dict[str, Any]:
        """Lay over a (cached) rendering what changes without the record changing: formula, rollup and
        drifted values, the converted / awaiting-approval keys (visibility.py: the shares may change while
        the rendering is cached) and the multi-currency fields (gone while multi-currency is off)."""
        computed = spec.computed_fields
        drift = self.computed.drifted(spec.api_name) if self.computed.drift else {}
        converted, pending = self.visibility.state(self.modules[spec.api_name], index)
        currency_off = spec.has_currency and not self.mc_status
        if not computed and not drift and not converted and not pending and not currency_off:
            return out
        out = dict(out)
        if converted:
            out.update(self._converted_keys(spec, index, out, live))
        if pending:
            out["$approved"] = False
            out["$approval_state"] = self.visibility.pending_state(spec, index)
            out["$approval"] = {"delegate": False, "approve": True, "reject": True, "resubmit": False}
        if currency_off:
            for name in MULTI_CURRENCY_FIELDS:
                out.pop(name, None)
            out["$currency_symbol"] = HOME.symbol
        if not computed and not drift:
            return out
        created = float(live["Created_Time"]) if live is not None else float(self.gen.created(spec, index))
        for f in computed:
            if f.data_type == "formula":
                out[f.api_name] = self.computed.formula(f, created, live if live is not None else out)
            else:
                out[f.api_name] = self.computed.rollup(f, out["id"])
        for name, data_type in drift.items():
            out[name] = convert(out.get(name), data_type)
        return out

    def _converted_keys(
        self, spec: ModuleSpec, index: int, out: dict[str, Any], live: dict[str, Any] | None
    ) -> dict[str, Any]:
        """A converted lead's keys: ``$converted``, ``$converted_detail``, ``Converted__s`` and
        ``Converted_Date_Time`` (strictly before its Modified_Time; in the offset its Modified_Time has).

        ``$converted_detail``'s shape is UNCONFIRMED (docs/zoho-crm-api.md §5): no source shows a converted
        lead's; an unconverted one's is ``{}``. The simulator's plausible choice: ``{"convert_date":
        "YYYY-MM-DD", "contact": {"name","id"}, "account": {"name","id"}, "deal": {"name","id"} | null}``
        (a lead converted without a deal has ``deal: null``).
        """
        state = self.modules[spec.api_name]
        override = state.overrides.get(index)
        if override is not None and override.converted_at is not None:
            when = float(override.converted_at)
        else:
            if index < state.size:
                created, modified = self.gen.created(spec, index), self.gen.modified(spec, index)
            else:
                created = int((live or {}).get("Created_Time") or 0)
                modified = int((live or {}).get("Modified_Time") or created)
            span = max(modified - created - 1, 1)
            when = float(
                min(
                    created + 1 + stable_int(self.gen.seed, spec.api_name, index, "converted") % span,
                    modified - 1,
                )
            )
        stamp = str(out.get("Modified_Time") or "")
        offset = _offset_minutes(stamp)
        rendered = render_time(when, offset)
        return {
            "$converted": True,
            "$converted_detail": {"convert_date": rendered[:10], **self._conversion_targets(index)},
            "Converted__s": True,
            "Converted_Date_Time": rendered,
        }

    def _conversion_targets(self, index: int) -> dict[str, Any]:
        """The contact, account and (for three leads in five) deal a converted lead became, deterministic in
        the lead's index; kept, since naming them replays part of each target's generation."""
        found = self._details.get(index)
        if found is None:
            gen = self.gen
            draw = stable_int(gen.seed, gen.org_id, "Leads", index, "conversion")

            def ref(module: str, salt: int) -> dict[str, str] | None:
                size = gen.sizes[module]
                return gen.lookup_ref(gen.module(module), (draw // salt) % size) if size else None

            found = {
                "contact": ref("Contacts", 1),
                "account": ref("Accounts", 7),
                "deal": ref("Deals", 13) if draw % 5 < 3 else None,
            }
            if len(self._details) > 200_000:
                self._details.clear()
            self._details[index] = found
        return {key: (dict(value) if value else None) for key, value in found.items()}

    def render(self, spec: ModuleSpec, rec: dict[str, Any]) -> dict[str, Any]:
        """Internal → API form: datetimes in the OWNER's offset, users as {name, id, email}.

        An empty multi-select picklist is ``[]``, never ``null`` (docs/zoho-crm-api.md §4.1): a value with two
        spellings of "empty" could not come back identical from a Bulk Read CSV, whose empty cell is one.
        Subform and multi-lookup fields are left out: only a single-record read carries them (§2.5).
        """
        owner = rec.get("Owner")
        offset = self.users[owner].offset if isinstance(owner, int) else 0
        out: dict[str, Any] = {}
        for key, value in rec.items():
            f = spec.by_name.get(key)
            if f is not None and (f.data_type in CHILD_TYPES or f.unused):
                # An unused field (removed from every layout) is in no record rendering; a list that names
                # it gets null (records_api).
                continue
            if f is not None and value is None and f.data_type == "multiselectpicklist":
                value = []
            elif f is not None and value is not None:
                if f.data_type == "datetime":
                    value = render_time(value, offset)
                elif f.data_type in ("ownerlookup", "userlookup"):
                    value = self.users[value].ref()
            out[key] = value
        return out

    def child_arrays(self, spec: ModuleSpec, index: int, full: dict[str, Any]) -> dict[str, list[Any]]:
        """The subform and multi-lookup arrays of one record, as its single-record read carries them."""
        arrays: dict[str, list[Any]] = {}
        for f in spec.child_fields:
            child = CHILD_OF_FIELD[(spec.api_name, f.api_name)]
            rows = sorted(self.children.rows(child, index), key=lambda r: int(r["id"]))
            arrays[f.api_name] = [self.children.in_parent(child, full, row) for row in rows]
        return arrays

    def owner_offset(self, module: str, index: int) -> int:
        rec = self.internal(module, index) or {}
        owner = rec.get("Owner")
        return self.users[owner].offset if isinstance(owner, int) else 0

    def index_of(self, module: str, record_id: str) -> int | None:
        try:
            return self.gen.index_of(self.modules[module].spec, int(record_id))
        except ValueError:
            return None

    def truth(self, module: str) -> dict[str, Any]:
        """Every live record with every list-readable field (id ascending), the deleted entries, and the rows
        inside the live records: ``children`` by parent field (each row as COQL with every column gives it,
        plus ``_parent_id``) and, for Deals, ``stage_history`` (docs/zoho-crm-api.md §3.8, §3.9)."""
        from .coql import select_row

        state = self.modules[module]
        live = [index for _, index in self.stream(module, "id", False, None, None)]
        data = [self.rendered(module, index) for index in live]
        offset = self.users[0].offset
        deleted = [
            {"id": d.id, "deleted_time": render_time(d.deleted_time, offset), "type": d.type}
            for d in sorted(state.deleted.values(), key=lambda d: int(d.id))
        ]
        children: dict[str, list[dict[str, Any]]] = {}
        for f in state.spec.child_fields:
            child = CHILD_OF_FIELD[(module, f.api_name)]
            rows = children.setdefault(f.api_name, [])
            for index, full in zip(live, data, strict=True):
                assert full is not None
                for row in sorted(self.children.rows(child, index), key=lambda r: int(r["id"])):
                    rendered = self.children.render_row(child, full, row)
                    rows.append({**select_row(child, rendered), "_parent_id": full["id"]})
        out: dict[str, Any] = {"data": data, "deleted": deleted, "children": children}
        if module == "Deals":
            history = []
            for index, full in zip(live, data, strict=True):
                assert full is not None
                owner = self.owner_offset(module, index)
                for row in self.children.stage_history(index):
                    history.append(
                        {**self.children.render_history(full, row, owner), "_parent_id": full["id"]}
                    )
            out["stage_history"] = history
        return out

    def deleted_entries(self, module: str, kind: str, since: float | None) -> list[Deleted]:
        """Visible deleted entries, newest first; recycle kept 60 days, permanent 120 (docs/zoho-crm-api.md
        §3.6)."""
        now = self._now()
        with self._lock:
            entries = list(self.modules[module].deleted.values())
        visible = [
            d
            for d in entries
            if (kind in ("all", d.type))
            and now - d.deleted_time <= (RECYCLE_RETENTION if d.type == "recycle" else PERMANENT_RETENTION)
            and (since is None or d.deleted_time >= since)
        ]
        return sorted(visible, key=lambda d: (d.deleted_time, int(d.id)), reverse=True)

    # --- mutations (control plane) -------------------------------------------------------------------------
    def _override(self, state: ModuleState, index: int, data: dict[str, Any], now: float) -> None:
        """Take ``$converted`` / ``$approved`` out of control-plane data into the record's override:
        ``{"$converted": true}`` converts it now, ``{"$approved": false}`` sends it for approval."""
        converted, approved = data.pop("$converted", None), data.pop("$approved", None)
        data.pop("$approval_state", None)
        if converted is None and approved is None:
            return
        if state.spec.api_name not in ("Leads",) and converted:
            raise ApiError(400, "INVALID_DATA", "only leads are converted", {"api_name": "$converted"})
        override = state.overrides.setdefault(index, Override())
        if converted is not None:
            override.converted = bool(converted)
            override.converted_at = float(now) if converted else None
        if approved is not None:
            override.pending = not bool(approved)

    def create(self, module: str, data: dict[str, Any], by: int = 0) -> str:
        state = self.modules[module]
        now = int(self._now())
        data = dict(data)
        with self._lock:
            index = state.next_index
            state.next_index += 1
            self._override(state, index, data, now)
            rec: dict[str, Any] = {f.api_name: None for f in state.spec.fields}
            rec.update(
                {
                    "Owner": by,
                    "Created_By": by,
                    "Modified_By": by,
                    "Created_Time": now,
                    "Modified_Time": now,
                    "Tag": [],
                }
            )
            rec.update(self._parse(state.spec, data))
            rec["id"] = str(self.gen.record_id(state.spec, index))
            rec.update(system_keys(state.spec))
            if state.spec.has_currency and rec.get("Currency") is None:
                rec["Currency"], rec["Exchange_Rate"] = HOME.iso_code, float(HOME.exchange_rate)
            if "Converted__s" in rec and rec["Converted__s"] is None:
                rec["Converted__s"] = False  # an unconverted lead's (its converted keys are laid over)
            if state.spec.has_layouts and rec.get("Layout") is None:
                rec["Layout"] = {"name": LAYOUT_NAMES[0], "id": layout_id(self.gen.prefix, state.spec, 0)}
            self._derive(rec)
            state.live[index] = rec
            state.version += 1
            if module == "Deals":
                self.children.history[index] = []
                if rec.get("Stage") is not None:
                    self.children.stage_changed(index, rec, now, by)
        self._changed(module, "insert", rec["id"])
        return rec["id"]

    def update(self, module: str, record_id: str, data: dict[str, Any], by: int = 0) -> None:
        state = self.modules[module]
        data = dict(data)
        with self._lock:
            index = self._require(module, record_id)
            before = self.internal(module, index) or {}
            rec = dict(before)
            rec["Modified_By"] = by
            rec["Modified_Time"] = int(self._now())
            self._override(state, index, data, rec["Modified_Time"])
            rec.update(self._parse(state.spec, data))
            self._derive(rec)
            if module == "Deals":
                # The history derives from the deal's fields until pinned; a Stage change adds a row (§3.9).
                self.children.freeze_history(index)
                if rec.get("Stage") != before.get("Stage"):
                    self.children.stage_changed(index, rec, int(rec["Modified_Time"]), by)
            state.live[index] = rec
            state.version += 1
        self._changed(module, "update", record_id, tuple(data))

    def replace_children(self, module: str, record_id: str, field: str, rows: list[Any], by: int = 0) -> None:
        """Replace a record's subform rows or links; the parent's Modified_Time moves (docs/zoho-crm-api.md
        §7.8), as an edit of the record in Zoho's UI would."""
        state = self.modules[module]
        child = CHILD_OF_FIELD.get((module, field))
        if child is None:
            raise ApiError(400, "INVALID_DATA", "not a subform or multi-lookup field", {"api_name": field})
        with self._lock:
            index = self._require(module, record_id)
            self.children.replace(child, index, rows)
            self.update(module, record_id, {}, by)
            state.version += 1

    def delete(self, module: str, record_id: str, permanent: bool, by: int = 0) -> None:
        state = self.modules[module]
        with self._lock:
            index = self._require(module, record_id)
            rec = self.internal(module, index) or {}
            state.live.pop(index, None)
            kind = "permanent" if permanent else "recycle"
            state.deleted[index] = self._deleted_entry(state.spec, rec, kind, self._now(), by)
            state.version += 1
        self._changed(module, "delete", record_id)

    def _changed(self, module: str, operation: str, record_id: str, affected: tuple[str, ...] = ()) -> None:
        if self.listener is not None:
            self.listener(module, operation, str(record_id), affected)

    def _require(self, module: str, record_id: str) -> int:
        index = self.index_of(module, record_id)
        if index is None or self.internal(module, index) is None:
            raise ApiError(404, "INVALID_DATA", "the related id given seems to be invalid", {"id": record_id})
        return index

    @staticmethod
    def _derive(rec: dict[str, Any]) -> None:
        if "Full_Name" in rec and ("First_Name" in rec or "Last_Name" in rec):
            rec["Full_Name"] = f"{rec.get('First_Name') or ''} {rec.get('Last_Name') or ''}".strip()

    def _parse(self, spec: ModuleSpec, data: dict[str, Any]) -> dict[str, Any]:
        """API-form values → internal form; unknown non-`$` keys are rejected to catch typos in tests."""
        out: dict[str, Any] = {}
        for key, value in data.items():
            f = spec.by_name.get(key)
            if f is None:
                if key.startswith("$"):
                    out[key] = value
                    continue
                raise ApiError(400, "INVALID_DATA", "invalid data", {"api_name": key})
            if f.data_type in CHILD_TYPES or f.data_type in COMPUTED_TYPES:
                # Rows go through replace_children; computed values are Zoho's to compute.
                raise ApiError(400, "INVALID_DATA", "the field is not writable this way", {"api_name": key})
            if value is not None and f.data_type == "datetime":
                parsed = value if isinstance(value, (int, float)) else parse_time(str(value))
                if parsed is None:
                    raise ApiError(400, "INVALID_DATA", "invalid data", {"api_name": key})
                value = int(parsed)
            elif value is not None and f.data_type in ("ownerlookup", "userlookup"):
                uid = value.get("id") if isinstance(value, dict) else str(value)
                match = [n for n, u in enumerate(self.users) if u.id == uid]
                if not match:
                    raise ApiError(400, "INVALID_DATA", "invalid data", {"api_name": key})
                value = match[0]
            out[key] = value
        return out


def _offset_minutes(stamp: str) -> int:
    """The UTC offset, in minutes, of an ISO-8601 text ending in ``±HH:MM`` (0 otherwise)."""
    tail = stamp[-6:]
    if len(tail) == 6 and tail[0] in "+-" and tail[3] == ":" and tail[1:3].isdigit() and tail[4:].isdigit():
        minutes = int(tail[1:3]) * 60 + int(tail[4:])
        return -minutes if tail[0] == "-" else minutes
    return 0
