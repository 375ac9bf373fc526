"""Rows inside a parent record: subform rows, multi-select/multi-user lookup links, deal stage history.

Like base records, generated rows are a pure function of (seed, org, module, parent index); the control plane
overlays replaced rows per parent. Row ids are monotonic in (parent index, slot), so rows sorted by id are
rows grouped by parent in the parent's id order (docs/zoho-crm-api.md §7.8, §3.9).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from .clock import render_time
from .datagen import COMPANY_A, COMPANY_B, DAY, ID_STEP, WORDS, stable_int
from .errors import ApiError
from .schema import (
    CHILD_MODULES_BY_NAME,
    STAGE_HISTORY_NUMBER,
    STAGES,
    ModuleSpec,
    module_row_id,
    module_spec,
)

if TYPE_CHECKING:
    from .store import OrgStore

ROW_SLOTS = 128
"""Row ids per parent: Zoho allows at most 100 subform rows per record (docs/zoho-crm-api.md §7.8)."""
STAGE_HISTORY_FIELDS = (
    "Stage",
    "Amount",
    "Probability",
    "Expected_Revenue",
    "Closing_Date",
    "Modified_Time",
    "Modified_By",
    "Duration_Days",
)
"""The fields of a Stage_History row (docs/zoho-crm-api.md §3.9)."""


class Children:
    """Child rows of one org's records; internal rows hold lookups as refs and users as user indexes."""

    def __init__(self, store: OrgStore) -> None:
        self.store = store
        self.gen = store.gen
        self.replaced: dict[tuple[str, int], list[dict[str, Any]]] = {}
        self.next_slot: dict[tuple[str, int], int] = {}
        self.history: dict[int, list[dict[str, Any]]] = {}

    # --- ids -----------------------------------------------------------------------------------------------
    def _id(self, number: int, parent_index: int, slot: int) -> int:
        return self.gen.prefix * 10**12 + number * 10**10 + 1001 + (parent_index * ROW_SLOTS + slot) * ID_STEP

    def parent_index_of(self, child: ModuleSpec, row_id: int) -> int | None:
        """The parent index a row id belongs to (None when the id is not in this child module's space)."""
        offset = row_id - self.gen.prefix * 10**12 - child.number * 10**10 - 1001
        if offset < 0 or offset % ID_STEP or offset >= 10**10:
            return None
        return offset // ID_STEP // ROW_SLOTS

    # --- rows ----------------------------------------------------------------------------------------------
    def rows(self, child: ModuleSpec, parent_index: int) -> list[dict[str, Any]]:
        """The internal rows of one parent (generated unless replaced through the control plane)."""
        replaced = self.replaced.get((child.api_name, parent_index))
        if replaced is not None:
            return replaced
        state = self.store.modules[child.parent]
        if parent_index >= state.size:
            return []  # records created through the control plane start without rows
        return self._generate(child, parent_index)

    def _generate(self, child: ModuleSpec, parent_index: int) -> list[dict[str, Any]]:
        gen = self.gen
        rng = random.Random(stable_int(gen.seed, gen.org_id, child.api_name, parent_index, "rows"))
        linking = child.generated_type == "linking"
        if rng.random() < (0.4 if linking else 0.2):
            return []  # some parents have no rows at all
        count = rng.randrange(1, 4 if linking else 6)
        rows: list[dict[str, Any]] = []
        if linking:
            pool = len(gen.users) if child.connected_module == "users" else gen.sizes[child.connected_module]
            for slot, pick in enumerate(rng.sample(range(pool), min(count, pool))):
                value: Any = pick
                if child.connected_module != "users":
                    value = gen.lookup_ref(gen.module(child.connected_module), pick)
                rows.append(
                    {"id": str(self._id(child.number, parent_index, slot)), child.connected_field: value}
                )
            return rows
        for slot in range(count):
            row: dict[str, Any] = {"id": str(self._id(child.number, parent_index, slot))}
            if child.api_name == "Deal_Competitors":
                row["Competitor_Name"] = f"{rng.choice(COMPANY_A)} {rng.choice(COMPANY_B)}"
                row["Strength"] = rng.choice(("Strong", "Moderate", "Weak"))
                row["Threat_Level"] = rng.randrange(1, 11)
            else:
                products = gen.module("Products")
                row["Product_Name"] = gen.lookup_ref(products, rng.randrange(gen.sizes["Products"]))
                row["Quantity"] = float(rng.randrange(1, 21))
                row["List_Price"] = float(rng.randrange(10, 5000))
                row["Discount"] = float(rng.randrange(0, 4)) * 5.0
                row["Tax"] = float(rng.randrange(0, 3)) * 12.5
                row["Description"] = (
                    " ".join(rng.choice(WORDS) for _ in range(4)).capitalize() if rng.random() < 0.5 else None
                )
                row["Sequence_Number"] = slot + 1
                _totals(row)
            rows.append(row)
        return rows

    def parent_ref(self, child: ModuleSpec, parent_full: dict[str, Any]) -> dict[str, Any]:
        """The row's pointer to its parent: `Parent_Id` adds the parent module (docs/zoho-crm-api.md §3.3)."""
        parent = module_spec(child.parent)
        assert parent is not None
        name = parent_full.get(parent.name_field)
        ref: dict[str, Any] = {"name": None if name is None else str(name), "id": parent_full["id"]}
        if child.link_field == "Parent_Id":
            ref["module"] = {"api_name": parent.api_name, "id": module_row_id(self.gen.prefix, parent)}
        return ref

    def render_row(
        self, child: ModuleSpec, parent_full: dict[str, Any], row: dict[str, Any]
    ) -> dict[str, Any]:
        """A row as `GET /{child module}` gives it: every field, users as {name, id, email}."""
        out: dict[str, Any] = {}
        for f in child.fields:
            if f.api_name == child.link_field:
                out[f.api_name] = self.parent_ref(child, parent_full)
                continue
            value = row.get(f.api_name)
            if f.data_type in ("userlookup", "ownerlookup") and isinstance(value, int):
                value = self.gen.users[value].ref()
            elif f.data_type == "lookup" and isinstance(value, dict) and f.lookup:
                value = self._current_ref(f.lookup, value)
            out[f.api_name] = value
        out["id"] = row["id"]
        return out

    def _current_ref(self, module: str, ref: dict[str, Any]) -> dict[str, Any]:
        """A lookup as Zoho renders it: the target's current display name (the row keeps the name it was
        written with, which an edit or deletion of the target may have changed since); UNCONFIRMED for a
        deleted target, whose name is given as null as COQL's dot relation gives it."""
        target = module_spec(module)
        index = self.store.index_of(module, str(ref.get("id"))) if target is not None else None
        full = self.store.rendered(module, index) if index is not None else None
        if target is None:
            return ref
        # A deleted target has no display name, as COQL's dot relation to it has none.
        name = full.get(target.name_field) if full is not None else None
        return {**ref, "name": None if name is None else str(name)}

    def in_parent(
        self, child: ModuleSpec, parent_full: dict[str, Any], row: dict[str, Any]
    ) -> dict[str, Any]:
        """A row inside its parent's single-record read: links carry only the connected record
        (docs/zoho-crm-api.md §2.5)."""
        full = self.render_row(child, parent_full, row)
        if child.generated_type == "linking":
            return {"id": full["id"], child.connected_field: full[child.connected_field]}
        return full

    def stream(
        self, child: ModuleSpec, descending: bool, after: int | None, flt: Any = None
    ) -> Iterator[tuple[int, int, dict[str, Any]]]:
        """(row id, parent index, internal row) of live parents' rows in row-id order, strictly after
        ``after``; with ``flt`` (visibility.Filter), only the rows of parents it wants."""
        parent_after: tuple[int, int] | None = None
        if after is not None:
            index = self.parent_index_of(child, after)
            if index is not None:
                pid = self.gen.record_id(module_spec(child.parent), index)  # type: ignore[arg-type]
                edge = pid + 1 if descending else pid - 1
                parent_after = (edge, edge)
        for _, index in self.store.stream(child.parent, "id", descending, None, parent_after, flt):
            rows = sorted(self.rows(child, index), key=lambda r: int(r["id"]), reverse=descending)
            for row in rows:
                rid = int(row["id"])
                if after is not None and (rid >= after if descending else rid <= after):
                    continue
                yield rid, index, row

    # --- control plane -------------------------------------------------------------------------------------
    def replace(self, child: ModuleSpec, parent_index: int, data: list[dict[str, Any]]) -> None:
        """Replace one parent's rows with API-form rows; a row naming an existing `id` keeps that id."""
        key = (child.api_name, parent_index)
        current = {r["id"]: r for r in self.rows(child, parent_index)}
        next_slot = self.next_slot.get(key, len(current))  # generated rows hold slots 0 … n-1
        rows: list[dict[str, Any]] = []
        for item in data:
            if not isinstance(item, dict):
                raise ApiError(400, "INVALID_DATA", "each row must be a JSON object", {})
            rid = str(item.get("id") or "")
            if rid and rid not in current:
                raise ApiError(400, "INVALID_DATA", "the row id given seems to be invalid", {"id": rid})
            if not rid:
                if next_slot >= ROW_SLOTS:
                    raise ApiError(
                        400, "LIMIT_EXCEEDED", "too many rows for one record", {"limit": ROW_SLOTS}
                    )
                rid = str(self._id(child.number, parent_index, next_slot))
                next_slot += 1
            rows.append({"id": rid, **self._parse_row(child, item)})
        self.next_slot[key] = next_slot
        self.replaced[key] = rows

    def _parse_row(self, child: ModuleSpec, item: dict[str, Any]) -> dict[str, Any]:
        row: dict[str, Any] = {}
        for name, value in item.items():
            if name in ("id", child.link_field):
                continue
            f = child.by_name.get(name)
            if f is None:
                raise ApiError(400, "INVALID_DATA", "invalid data", {"api_name": name})
            if value is not None and f.data_type == "lookup":
                target = module_spec(f.lookup)
                rid = str(value.get("id") if isinstance(value, dict) else value)
                index = self.store.index_of(f.lookup, rid)
                full = self.store.rendered(f.lookup, index) if index is not None else None
                if target is None or full is None:
                    raise ApiError(400, "INVALID_DATA", "invalid data", {"api_name": name})
                value = {"name": full.get(target.name_field), "id": rid}
            elif value is not None and f.data_type in ("userlookup", "ownerlookup"):
                uid = str(value.get("id") if isinstance(value, dict) else value)
                match = [n for n, u in enumerate(self.gen.users) if u.id == uid]
                if not match:
                    raise ApiError(400, "INVALID_DATA", "invalid data", {"api_name": name})
                value = match[0]
            row[name] = value
        if "Quantity" in child.by_name:
            _totals(row)
        return row

    # --- stage history (docs/zoho-crm-api.md §3.9) ---------------------------------------------------------
    def stage_history(self, deal_index: int) -> list[dict[str, Any]]:
        """A deal's Stage_History rows, oldest first; the last one is the deal's current Stage."""
        frozen = self.history.get(deal_index)
        if frozen is not None:
            return frozen
        deals = self.store.modules["Deals"]
        if deal_index >= deals.size:
            return []
        deal = self.store.internal("Deals", deal_index)
        if deal is None:
            return []
        rng = random.Random(stable_int(self.gen.seed, self.gen.org_id, "Stage_History", deal_index))
        current = deal["Stage"]
        position = STAGES.index(current) if current in STAGES else 0
        earlier = STAGES[: min(position, 6)]  # Closed Won and Closed Lost are only ever reached last
        picked = sorted(rng.sample(range(len(earlier)), min(rng.randrange(0, 4), len(earlier))))
        stages = [earlier[k] for k in picked] + [current]
        created, modified = int(deal["Created_Time"]), int(deal["Modified_Time"])
        steps = len(stages) - 1
        times = [
            created + (modified - created) * k // steps if steps else modified for k in range(len(stages))
        ]
        rows = [
            self._history_row(deal_index, slot, stage, deal, when, deal.get("Modified_By"))
            for slot, (stage, when) in enumerate(zip(stages, times, strict=True))
        ]
        _durations(rows)
        return rows

    def _history_row(
        self, deal_index: int, slot: int, stage: Any, deal: dict[str, Any], when: int, by: Any
    ) -> dict[str, Any]:
        return {
            "id": str(self._id(STAGE_HISTORY_NUMBER, deal_index, slot)),
            "Stage": stage,
            "Amount": deal.get("Amount"),
            "Probability": deal.get("Probability"),
            "Expected_Revenue": deal.get("Expected_Revenue"),
            "Closing_Date": deal.get("Closing_Date"),
            "Modified_Time": when,
            "Modified_By": by,
            "Duration_Days": None,
        }

    def freeze_history(self, deal_index: int) -> None:
        """Pin the generated history before the deal changes (it is derived from the deal's fields)."""
        if deal_index not in self.history:
            self.history[deal_index] = [dict(r) for r in self.stage_history(deal_index)]

    def stage_changed(self, deal_index: int, deal: dict[str, Any], when: int, by: int) -> None:
        """A Stage change appends a row (docs/zoho-crm-api.md §3.9)."""
        rows = self.history.setdefault(deal_index, [])
        if len(rows) >= ROW_SLOTS:
            raise ApiError(400, "LIMIT_EXCEEDED", "too many stage changes for one deal", {"limit": ROW_SLOTS})
        rows.append(self._history_row(deal_index, len(rows), deal.get("Stage"), deal, when, by))
        _durations(rows)

    def render_history(self, deal_full: dict[str, Any], row: dict[str, Any], offset: int) -> dict[str, Any]:
        by = row.get("Modified_By")
        return {
            **row,
            "Modified_Time": render_time(row["Modified_Time"], offset),
            "Modified_By": self.gen.users[by].ref() if isinstance(by, int) else None,
        }


def _totals(row: dict[str, Any]) -> None:
    """Line-item arithmetic: Total = Quantity * List_Price; Net_Total = Total - Discount + Tax."""
    quantity, price = row.get("Quantity"), row.get("List_Price")
    if isinstance(quantity, (int, float)) and isinstance(price, (int, float)):
        total = round(float(quantity) * float(price), 2)
        row["Total"] = total
        row["Net_Total"] = round(total - float(row.get("Discount") or 0) + float(row.get("Tax") or 0), 2)


def _durations(rows: list[dict[str, Any]]) -> None:
    """Whole days spent in each stage; the current stage's duration is still open, so null (UNCONFIRMED)."""
    for row, following in itertools.pairwise(rows):
        row["Duration_Days"] = (int(following["Modified_Time"]) - int(row["Modified_Time"])) // DAY
    if rows:
        rows[-1]["Duration_Days"] = None


def child_module(name: str) -> ModuleSpec | None:
    return CHILD_MODULES_BY_NAME.get(name)
