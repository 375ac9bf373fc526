"""A field pass read with COQL: the same records and values as a records API pass, ten times fewer calls.

Why: a module with more than 49 listable fields needs a second pass (docs/design.md §3), and with the records
API that pass costs as many calls as the first, 200 records each. Its fields are chosen by
:func:`~zoho_dagster.client.records.plan_passes` among the types COQL returns exactly as the list API does
(:data:`~zoho_dagster.client.coql.SAME_SHAPE_TYPES`), so COQL can read them 2,000 rows a call
(docs/zoho-crm-api.md §3.8). A 100,000-record window of 72 fields then takes 500 + 51 calls instead of 1,000.

How, within v6's COQL limits (§3.8):

- ``select id, Modified_Time, <fields> from <Module> where Modified_Time >= start and Modified_Time < end
  order by Modified_Time asc, id asc``: the pass's records in the order of the window's other passes;
- paged by keyset, never by offset: each next query starts strictly after the last row's
  ``(Modified_Time, id)``. v6 caps LIMIT/OFFSET at 10,000 rows, and an offset shifts when a record of the
  window is modified meanwhile (it moves to the end), which would skip a record; a keyset cannot skip one;
- the first query of a window asks ``limit 200`` (1 credit, like the records API's first page), the next
  ones 2,000 (3 credits, the cheapest per row), so a window that fits in one page costs what it cost
  before; a slice split off a bigger window (:mod:`zoho_dagster.client.slices`) starts with 2,000;
- COQL is a heavy call: it takes a sub-concurrency slot of the limiter (§6.3), as sorted reads do.

If Zoho refuses the query (no ``ZohoCRM.coql.READ`` in the token, or a field or clause it will not take), the
pass goes on with the records API from where it stands (a fresh chain from the last ``Modified_Time`` seen,
skipping the ids already taken at that instant, as a page-token restart does), and so does every other COQL
pass of the same read: one refused call per read, nothing lost.
"""

import logging
import threading
from datetime import datetime
from typing import Any

from zoho_dagster.client.coql import COQL_FIRST_PAGE, COQL_NEXT_PAGE, COQL_PATH, COQL_SCOPE, coql_cost
from zoho_dagster.client.errors import ZohoAPIError, ZohoCreditsExhausted, ZohoPermissionError
from zoho_dagster.client.http import Need, ZohoHttp
from zoho_dagster.client.records import PassReader, Record, readable_modified_time
from zoho_dagster.client.timeutil import header_datetime

log = logging.getLogger(__name__)

REFUSAL_CODES = frozenset({"INVALID_QUERY", "SYNTAX_ERROR", "LIMIT_EXCEEDED", "NOT_SUPPORTED"})
"""COQL answers after which the records API reads the pass instead (§3.8's error codes, and the v6 feature
refusal): the query itself is what Zoho will not take, so asking again cannot help."""
REFUSAL_STATUSES = frozenset({400, 404, 405})
"""Any other refusal of the request itself (an API or proxy without COQL): the records API can still read."""


def refuses_coql(error: ZohoAPIError) -> bool:
    """Whether ``error`` from a COQL call means "not through COQL" rather than "not now" or "not at all"."""
    if isinstance(error, ZohoCreditsExhausted):
        return False
    return (
        isinstance(error, ZohoPermissionError)
        or error.code in REFUSAL_CODES
        or error.status in REFUSAL_STATUSES
    )


class CoqlSwitch:
    """Whether the COQL passes of one read (its slices included) may still use COQL.

    The first refusal turns it off for all of them, so a token without the COQL scope costs one refused call
    per read instead of one per slice.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.refusal: str | None = None

    def refuse(self, module: str, error: ZohoAPIError) -> None:
        with self._lock:
            if self.refusal is not None:
                return
            self.refusal = f"{error.code or error.status}: {error}"
        log.info("%s: COQL refused (%s); its passes are read with the records API.", module, self.refusal)


class CoqlPassReader(PassReader):
    """One field pass over the window through COQL, keyset-paged; the records API's chain if COQL refuses."""

    def __init__(
        self,
        http: ZohoHttp,
        module: str,
        fields: list[str],
        start: datetime,
        end: datetime,
        need: Need,
        switch: CoqlSwitch,
        first_page: int = COQL_FIRST_PAGE,
    ) -> None:
        super().__init__(http, module, fields, start, end, need)
        self.switch = switch
        self.coql = True
        self.limit = first_page
        self.after: tuple[str, str] | None = None
        """``(Modified_Time, id)`` of the last row read: the next query starts strictly after it."""
        self.coql_need = Need(COQL_SCOPE, f"the {module} records through COQL")

    @property
    def pages_of_200(self) -> bool:
        return not self.coql or self.switch.refusal is not None

    def query(self) -> str:
        """The next page's COQL (criteria in pairs, as Zoho requires, docs/zoho-crm-api.md §3.8)."""
        end = header_datetime(self.end)
        if self.after is None:
            after = f"Modified_Time >= '{header_datetime(self.since)}'"
        else:
            moment, rid = self.after
            after = f"(Modified_Time > '{moment}' or (Modified_Time = '{moment}' and id > '{rid}'))"
        return (
            f"select {', '.join(['id', *self.fields])} from {self.module} "
            f"where ({after} and Modified_Time < '{end}') "
            f"order by Modified_Time asc, id asc limit {self.limit}"
        )

    def next_page(self) -> list[Record]:
        """The next page's records inside the window (possibly empty); sets ``done`` at the end."""
        while not self.done and self.coql:
            if self.switch.refusal is not None:
                self._leave_coql()
                break
            try:
                answer = self.http.post_json(
                    COQL_PATH,
                    self.coql_need,
                    {"select_query": self.query()},
                    cost=coql_cost(self.limit),
                    heavy=True,
                )
            except ZohoAPIError as error:
                if refuses_coql(error):
                    self.switch.refuse(self.module, error)
                    continue
                raise
            if answer.body is None:  # 204: nothing (more) in the window
                self.done = True
                return []
            return self._accept(answer.body)
        return super().next_page()

    def _leave_coql(self) -> None:
        with self.lock:
            self._leave_coql_locked()

    def _leave_coql_locked(self) -> None:
        """Go on with the records API: a fresh chain from the last instant taken (its ids are skipped)."""
        self.coql = False
        if self.last_seen is not None:
            self.since = self.last_seen

    def _accept_locked(self, body: dict[str, Any]) -> list[Record]:
        if not self.coql:  # the records API's page, after leaving COQL
            return super()._accept_locked(body)
        rows: list[Record] = list(body.get("data") or [])
        kept = self._keep(rows)
        if not (body.get("info") or {}).get("more_records"):
            self.done = True
        if not self.done and rows:
            last = rows[-1]
            when = readable_modified_time(last)
            if when is None or last.get("id") is None:
                # No keyset to go on from (Zoho sent a Modified_Time that is not a date-time).
                self._leave_coql_locked()
            else:
                self.after = (header_datetime(when), str(last["id"]))
        self.limit = COQL_NEXT_PAGE
        return kept
