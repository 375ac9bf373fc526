"""Values Zoho computes at read time (formula and rollup fields) and values re-typed by a field's type drift.

Formula and rollup values change without bumping the record's Modified_Time (docs/zoho-crm-api.md §3.3), so
they are computed on every read from the clock and from the other records, never stored.
"""

from __future__ import annotations

import datetime as _dt
import threading
from typing import TYPE_CHECKING, Any

from .datagen import DAY
from .errors import ApiError
from .schema import CHILD_TYPES, COMPUTED_TYPES, JSON_TYPES, FieldSpec

if TYPE_CHECKING:
    from .store import OrgStore

DRIFT_TYPES = (
    frozenset(JSON_TYPES) - CHILD_TYPES - {"ownerlookup", "userlookup", "lookup", "multiselectpicklist"}
)
"""The types a field may drift to: scalar types only (a drift to a lookup or an array is out of scope)."""


class Computed:
    """Formula and rollup values for one org, and the type drift of its fields."""

    def __init__(self, store: OrgStore) -> None:
        self.store = store
        self.drift: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()
        self._base_sums: dict[str, float] | None = None
        self._sums: tuple[int, dict[str, float]] | None = None

    def formula(self, f: FieldSpec, created: float, rec: dict[str, Any]) -> Any:
        """The two formula fields of the schema: whole days open, and a quote's validity."""
        now = self.store._now()
        if f.api_name == "Days_Open__c":
            return float(int(now - created) // DAY)
        if f.api_name == "Validity__c":
            till = rec.get("Valid_Till")
            if not till:
                return None
            today = _dt.datetime.fromtimestamp(int(now), _dt.timezone.utc).date().isoformat()
            return "Expired" if str(till) < today else "Valid"
        return None

    def rollup(self, f: FieldSpec, record_id: str) -> Any:
        """Accounts.Total_Deal_Amount__c: the sum of the Amount of the account's live deals (0.0 without)."""
        if f.api_name != "Total_Deal_Amount__c":
            return None
        return self._deal_sums().get(record_id, 0.0)

    def _deal_sums(self) -> dict[str, float]:
        store = self.store
        deals = store.modules["Deals"]
        with self._lock:
            if self._sums is not None and self._sums[0] == deals.version:
                return self._sums[1]
            if self._base_sums is None:
                self._base_sums = {}
                for index in range(deals.size):
                    _add(self._base_sums, store.gen.partial(deals.spec, index, "Account_Name"), 1)
            sums = dict(self._base_sums)
            for index in set(deals.live) | set(deals.deleted):
                if index < deals.size:
                    _add(sums, store.gen.partial(deals.spec, index, "Account_Name"), -1)
            for rec in deals.live.values():
                _add(sums, rec, 1)
            self._sums = (deals.version, sums)
            return sums

    def set_drift(self, module: str, field: str, data_type: str) -> None:
        spec = self.store.modules[module].spec
        f = spec.by_name.get(field)
        if f is None or field in (
            "Owner",
            "Created_By",
            "Modified_By",
            "Created_Time",
            "Modified_Time",
            "Tag",
        ):
            raise ApiError(400, "INVALID_DATA", "the field cannot drift", {"api_name": field})
        if data_type not in DRIFT_TYPES:
            raise ApiError(400, "INVALID_DATA", "unsupported data_type for a drift", {"data_type": data_type})
        if f.data_type in CHILD_TYPES | COMPUTED_TYPES:
            raise ApiError(400, "INVALID_DATA", "the field cannot drift", {"api_name": field})
        with self._lock:
            if data_type == f.data_type:
                self.drift.pop((module, field), None)
            else:
                self.drift[(module, field)] = data_type

    def drifted(self, module: str) -> dict[str, str]:
        return {field: dt for (m, field), dt in self.drift.items() if m == module}


def _add(sums: dict[str, float], rec: dict[str, Any], sign: int) -> None:
    account, amount = rec.get("Account_Name"), rec.get("Amount")
    if isinstance(account, dict) and isinstance(amount, (int, float)):
        key = str(account.get("id"))
        sums[key] = round(sums.get(key, 0.0) + sign * float(amount), 2)


def convert(value: Any, data_type: str) -> Any:
    """A rendered value as a field of ``data_type`` would carry it after the type change (None when it cannot
    be represented, as Zoho blanks values a conversion cannot keep)."""
    if value is None:
        return None
    json_type = JSON_TYPES.get(data_type, "string")
    try:
        if json_type == "double":
            return float(value)
        if json_type == "integer":
            return int(float(value))
        if json_type == "boolean":
            return value if isinstance(value, bool) else str(value).lower() in ("true", "1", "yes")
    except (TypeError, ValueError):
        return None
    if data_type == "bigint":
        try:
            return str(int(float(value)))
        except (TypeError, ValueError):
            return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return str(value.get("name") or value.get("id") or "")
    if isinstance(value, list):
        return ";".join(str(v) for v in value)
    return str(value)
