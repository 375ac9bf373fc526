"""Records Get Records leaves out by default: converted leads and records awaiting approval.

Zoho's list API takes ``converted`` (``true|false|both``, default ``false``) and ``approved``
(``true|false|both``, default ``true``) (docs/zoho-crm-api.md §2.1): a client that sends neither never sees a
converted lead or a record awaiting approval, and gets no error saying so.

Which base records are hidden is a pure function of (seed, org, module, index) and of the two shares: each
record has one fixed uniform draw per kind, and it is converted (awaiting approval) when its draw is below the
share. Raising a share therefore only adds records to the hidden set, and a share change touches no record's
``Modified_Time``: the knob says which records *were* already converted when the org was seeded, it is not an
event in the org's history (a conversion through the control plane's ``update`` is one, and moves it).

Draws are made lazily, once per module, as one ``random.Random`` sequence (about 0.1 s per million records, 4
bytes each); the sorted indices of the hidden records (rebuilt when a share changes) count a module's visible
records without walking it and let a walk that wants only hidden records visit only them.
"""

from __future__ import annotations

import threading
from array import array
from bisect import bisect_left
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .datagen import stable_int
from .errors import ApiError
from .schema import ModuleSpec

if TYPE_CHECKING:
    from .store import ModuleState, OrgStore

DEFAULT_CONVERTED_SHARE = 0.30
DEFAULT_AWAITING_SHARE = 0.05
CONVERTIBLE = frozenset({"Leads"})
"""Only leads are converted (v8 search reference: ``converted`` is "applicable only for the Leads module")."""
VALUES = ("true", "false", "both")
PENDING_STATES = ("approval_process_pending", "webform_unapproved")
"""``$approval_state`` of a record awaiting approval: a third of the waiting leads came from a web form
(``webform_unapproved``, seen in the wild; the v8 search reference lists both values); every other waiting
record is ``approval_process_pending``."""


@dataclass(frozen=True)
class Filter:
    """The ``converted`` and ``approved`` parameters of Get Records, as sent or defaulted."""

    converted: str = "false"
    approved: str = "true"

    def wants(self, converted: bool, pending: bool) -> bool:
        if self.converted != "both" and converted != (self.converted == "true"):
            return False
        return self.approved == "both" or pending == (self.approved == "false")

    @property
    def everything(self) -> bool:
        return self.converted == "both" and self.approved == "both"


DEFAULT = Filter()
"""What Get Records shows without the two parameters."""
EVERYTHING = Filter("both", "both")


def request_filter(params: dict[str, str]) -> Filter:
    """``converted`` and ``approved`` of a request; any other value is 400 INVALID_DATA naming the parameter.
    Both are accepted on every record module (on a module without conversions ``converted=true`` finds
    nothing)."""
    for name in ("converted", "approved"):
        value = params.get(name)
        if value is not None and value not in VALUES:
            raise ApiError(400, "INVALID_DATA", "invalid data", {"param_name": name})
    return Filter(params.get("converted", "false"), params.get("approved", "true"))


@dataclass
class Readings:
    """Readings of UNCONFIRMED behaviour (docs/zoho-crm-api.md §10). Each is strict (False) by default and
    after a reset; True is the permissive reading, for tests that try both.

    - ``coql_includes_hidden``: COQL returns converted and awaiting-approval records (and the subform or
      linking rows of such parents). Strict: it leaves them out, as the list API's defaults do.
    - ``bulk_includes_hidden``: a Bulk Read job exports them (and counts them). Strict: left out.
    - ``count_includes_hidden``: ``/{module}/actions/count`` counts them. Strict: it counts what the list API
      shows by default.
    - ``single_record_includes_hidden``: ``GET /{module}/{id}`` returns such a record whatever ``converted``
      and ``approved`` say. Strict: the list API's defaults apply to it too, so without
      ``converted=true|both`` a converted lead is a 204 (a third-party client reports exactly that from a
      live org; Zoho's SDK6 ``GetRecordParam`` has both parameters).
    """

    coql_includes_hidden: bool = False
    bulk_includes_hidden: bool = False
    count_includes_hidden: bool = False
    single_record_includes_hidden: bool = False

    NAMES = (
        "coql_includes_hidden",
        "bulk_includes_hidden",
        "count_includes_hidden",
        "single_record_includes_hidden",
    )

    def configure(self, body: dict[str, Any]) -> None:
        unknown = set(body) - set(self.NAMES)
        if unknown:
            raise ApiError(400, "INVALID_DATA", "unknown reading", {"names": sorted(unknown)})
        for name in self.NAMES:
            if name in body:
                if not isinstance(body[name], bool):
                    raise ApiError(400, "INVALID_DATA", "a reading is true or false", {"name": name})
                setattr(self, name, body[name])

    def describe(self) -> dict[str, bool]:
        return {name: bool(getattr(self, name)) for name in self.NAMES}


@dataclass
class _Hidden:
    """One module's hidden base indices for one share setting, each array sorted."""

    version: int
    converted: array
    pending: array
    both: array


@dataclass
class Override:
    """A control-plane record's own state (created records start visible; an update may convert one)."""

    converted_at: float | None = None
    pending: bool | None = None
    converted: bool | None = None


@dataclass
class Visibility:
    """One org's shares, draws and hidden-index arrays."""

    store: OrgStore
    converted_share: float = DEFAULT_CONVERTED_SHARE
    awaiting_share: float = DEFAULT_AWAITING_SHARE
    version: int = 0
    _draws: dict[tuple[str, str], array] = field(default_factory=dict)
    _hidden: dict[str, _Hidden] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # --- shares (control plane) ----------------------------------------------------------------------------
    def configure(self, converted_share: Any = None, awaiting_share: Any = None) -> None:
        for name, value in (
            ("converted_share", converted_share),
            ("awaiting_approval_share", awaiting_share),
        ):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1
            ):
                raise ApiError(400, "INVALID_DATA", "a share is a number from 0 to 1", {"name": name})
        with self._lock:
            if converted_share is not None:
                self.converted_share = float(converted_share)
            if awaiting_share is not None:
                self.awaiting_share = float(awaiting_share)
            self.version += 1

    def describe(self) -> dict[str, float]:
        return {"converted_share": self.converted_share, "awaiting_approval_share": self.awaiting_share}

    # --- draws ---------------------------------------------------------------------------------------------
    def _draws_for(self, spec: ModuleSpec, kind: str) -> array:
        key = (spec.api_name, kind)
        draws = self._draws.get(key)
        if draws is None:
            with self._lock:
                draws = self._draws.get(key)
                if draws is None:
                    import random

                    gen = self.store.gen
                    rng = random.Random(stable_int(gen.seed, gen.org_id, spec.api_name, kind, "visibility"))
                    size = self.store.modules[spec.api_name].size
                    draws = array("f", [rng.random() for _ in range(size)])
                    self._draws[key] = draws
        return draws

    def base_state(self, spec: ModuleSpec, index: int) -> tuple[bool, bool]:
        """(converted, awaiting approval) of generated record ``index`` (< the module's seeded size)."""
        converted = (
            spec.api_name in CONVERTIBLE and self._draws_for(spec, "converted")[index] < self.converted_share
        )
        return converted, self._draws_for(spec, "pending")[index] < self.awaiting_share

    def state(self, state: ModuleState, index: int) -> tuple[bool, bool]:
        """(converted, awaiting approval) of any live record: its override, else the draws of a generated
        record, else (a control-plane record) visible."""
        override = state.overrides.get(index)
        if index < state.size:
            converted, pending = self.base_state(state.spec, index)
        else:
            converted, pending = False, False
        if override is not None:
            if override.converted is not None:
                converted = override.converted
            if override.pending is not None:
                pending = override.pending
        return converted, pending

    def pending_state(self, spec: ModuleSpec, index: int) -> str:
        if (
            spec.api_name in CONVERTIBLE
            and stable_int(self.store.gen.seed, spec.api_name, index, "webform") % 3 == 0
        ):
            return PENDING_STATES[1]
        return PENDING_STATES[0]

    # --- hidden indices ------------------------------------------------------------------------------------
    def hidden(self, spec: ModuleSpec) -> _Hidden:
        found = self._hidden.get(spec.api_name)
        if found is not None and found.version == self.version:
            return found
        pending_draws = self._draws_for(spec, "pending")
        with self._lock:
            share_c, share_p, version = self.converted_share, self.awaiting_share, self.version
        pending = array("q", [i for i, u in enumerate(pending_draws) if u < share_p])
        if spec.api_name in CONVERTIBLE:
            converted_draws = self._draws_for(spec, "converted")
            converted = array("q", [i for i, u in enumerate(converted_draws) if u < share_c])
            both = array("q", [i for i in pending if converted_draws[i] < share_c])
        else:
            converted, both = array("q"), array("q")
        built = _Hidden(version, converted, pending, both)
        self._hidden[spec.api_name] = built
        return built

    def count_base(self, spec: ModuleSpec, lo: int, hi: int, flt: Filter) -> int:
        """Generated indices in ``[lo, hi)`` that ``flt`` wants (exclusions not subtracted)."""
        total = max(hi - lo, 0)
        if flt.everything or total == 0:
            return total
        h = self.hidden(spec)

        def between(values: array) -> int:
            return bisect_left(values, hi) - bisect_left(values, lo)

        c, p, cp = between(h.converted), between(h.pending), between(h.both)
        want_c = None if flt.converted == "both" else flt.converted == "true"
        want_p = None if flt.approved == "both" else flt.approved == "false"
        if want_p is None:
            return c if want_c else total - c
        if want_c is None:
            return p if want_p else total - p
        if want_c and want_p:
            return cp
        if want_c:
            return c - cp
        if want_p:
            return p - cp
        return total - c - p + cp

    def candidates(self, spec: ModuleSpec, flt: Filter) -> array | None:
        """The sorted generated indices a walk for ``flt`` need visit, when they are a small subset (the
        filter wants only converted or only awaiting records); None when every index must be looked at."""
        if flt.converted == "true":
            h = self.hidden(spec)
            return h.both if flt.approved == "false" else h.converted
        if flt.approved == "false":
            return self.hidden(spec).pending
        return None

    def predicate(self, spec: ModuleSpec, flt: Filter) -> Any:
        """``index -> bool`` for generated indices: whether ``flt`` wants the record."""
        if flt.everything:
            return None
        pending_draws = self._draws_for(spec, "pending")
        share_p = self.awaiting_share
        want_p = None if flt.approved == "both" else flt.approved == "false"
        if spec.api_name not in CONVERTIBLE:
            if flt.converted == "true":
                return lambda index: False
            if want_p is None:
                return None
            return lambda index: (pending_draws[index] < share_p) == want_p
        converted_draws = self._draws_for(spec, "converted")
        share_c = self.converted_share
        want_c = None if flt.converted == "both" else flt.converted == "true"
        if want_p is None:
            return lambda index: (converted_draws[index] < share_c) == want_c
        if want_c is None:
            return lambda index: (pending_draws[index] < share_p) == want_p
        return lambda index: (
            (converted_draws[index] < share_c) == want_c and (pending_draws[index] < share_p) == want_p
        )
