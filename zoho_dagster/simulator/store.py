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
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from .children import Children
from .clock import parse_time, render_time
from .computed import Computed, convert
from .datagen import DAY, Generator, User, stable_int, system_keys
from .errors import ApiError
from .schema import CHILD_OF_FIELD, CHILD_TYPES, COMPUTED_TYPES, ModuleSpec

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
        self, module: str, sort_by: str, descending: bool, since: float | None, after: Key | None
    ) -> Iterator[tuple[Key, int]]:
        """(key, index) of live records with Modified_Time >= since, in key order, strictly after `after`."""
        state = self.modules[module]
        spec, size = state.spec, state.size
        lo = self.gen.first_index_modified_since(spec, since) if since is not None else 0
        overlay = [
            (k, i)
            for k, i in self._overlay_sorted(state, sort_by)
            if since is None or int(state.live[i]["Modified_Time"]) >= since
        ]
        if descending:
            overlay.reverse()
            if after is not None:
                overlay = [(k, i) for k, i in overlay if k < after]
            start = size - 1 if after is None else self._last_below(spec, sort_by, after, lo, size)
            base = self._walk(state, sort_by, start, lo - 1, -1)
            return heapq.merge(base, overlay, reverse=True)
        if after is not None:
            overlay = [(k, i) for k, i in overlay if k > after]
        start = lo if after is None else max(lo, self._first_above(spec, sort_by, after, size))
        return heapq.merge(self._walk(state, sort_by, start, size, 1), overlay)

    def _walk(
        self, state: ModuleState, sort_by: str, start: int, stop: int, step: int
    ) -> Iterator[tuple[Key, int]]:
        spec = state.spec
        for index in range(start, stop, step):
            if not state.excluded(index):
                yield self._base_key(spec, sort_by, index), index

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

    def count(self, module: str, since: float | None = None) -> int:
        """Live records with Modified_Time >= since, without walking the base sequence."""
        state = self.modules[module]
        lo = self.gen.first_index_modified_since(state.spec, since) if since is not None else 0
        with self._lock:
            excluded = sum(1 for i in itertools.chain(state.live, state.deleted) if lo <= i < state.size)
            overlay = sum(
                1 for rec in state.live.values() if since is None or int(rec["Modified_Time"]) >= since
            )
        return state.size - lo - excluded + overlay

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
        computed = spec.computed_fields
        drift = self.computed.drifted(spec.api_name) if self.computed.drift else {}
        if not computed and not drift:
            return out
        out = dict(out)
        created = float(live["Created_Time"]) if live is not None else float(self.gen.created(spec, index))
        for f in computed:
            if f.data_type == "formula":
                out[f.api_name] = self.computed.formula(f, created, live if live is not None else out)
            else:
                out[f.api_name] = self.computed.rollup(f, out["id"])
        for name, data_type in drift.items():
            out[name] = convert(out.get(name), data_type)
        return out

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
            if f is not None and f.data_type in CHILD_TYPES:
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
    def create(self, module: str, data: dict[str, Any], by: int = 0) -> str:
        state = self.modules[module]
        now = int(self._now())
        with self._lock:
            index = state.next_index
            state.next_index += 1
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
            self._derive(rec)
            state.live[index] = rec
            state.version += 1
            if module == "Deals":
                self.children.history[index] = []
                if rec.get("Stage") is not None:
                    self.children.stage_changed(index, rec, now, by)
            return rec["id"]

    def update(self, module: str, record_id: str, data: dict[str, Any], by: int = 0) -> None:
        state = self.modules[module]
        with self._lock:
            index = self._require(module, record_id)
            before = self.internal(module, index) or {}
            rec = dict(before)
            rec["Modified_By"] = by
            rec["Modified_Time"] = int(self._now())
            rec.update(self._parse(state.spec, data))
            self._derive(rec)
            if module == "Deals":
                # The history derives from the deal's fields until pinned; a Stage change adds a row (§3.9).
                self.children.freeze_history(index)
                if rec.get("Stage") != before.get("Stage"):
                    self.children.stage_changed(index, rec, int(rec["Modified_Time"]), by)
            state.live[index] = rec
            state.version += 1

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
