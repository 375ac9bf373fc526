"""A module's child rows: subform (line-item) rows, multi-select / multi-user lookup links, stage history.

Why a reader of its own: list reads never carry these values (docs/zoho-crm-api.md §2.5, §7.8), and the way
Zoho documents to get them with the record — one ``GET /{module}/{id}`` per parent — costs a credit per
parent. COQL on the subform module (or the linking module of a multi-select / multi-user lookup) reads the
rows of up to 50 parents at once (``where Parent_Id in (…)``, the ``in`` limit of §3.8) for 1 credit per 200
rows, so a window of 1,000 parents with a few rows each costs about 20 credits per child field:

- the first page of a batch asks ``limit 0, 200`` (1 credit); a batch with more rows goes on with pages of
  2,000 (3 credits, the cheapest per row), by offset; 50 parents times at most 100 subform rows each (§7.8)
  stays under the 10,000-row offset cap of §3.8;
- ``order by id asc`` keeps offset pages stable;
- a lookup column comes back as ``{"id"}`` only (§3.8): the target module's display field is selected as a
  dot relation (``Product_Name.Product_Name``, at most 2 per query) and the lookup rebuilt as
  ``{"id", "name"}``; lookups to users take name and email from ``/users`` (one paged read per reader);
- batches run concurrently, as many as the heavy-call budget allows (COQL is a heavy call, §6.3);
- more than 50 columns (§3.8) are read in column groups of one batch, joined on ``id``.

Stage history has no COQL module: it is the ``Stage_History`` related list of each deal (Zoho's Related
Records API, docs/zoho-crm-api.md §3.9), one call per deal and page of 200.

Every row handed on is Zoho's row (lookups rebuilt) plus ``"_parent_id"``, the id of its parent.
"""

import re
import threading
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from zoho_dagster.client.coql import (
    COQL_COLUMNS,
    COQL_FIRST_PAGE,
    COQL_NEXT_PAGE,
    COQL_PATH,
    COQL_SCOPE,
    coql_cost,
)
from zoho_dagster.client.http import Need
from zoho_dagster.client.records import PER_PAGE, Record
from zoho_dagster.client.stats import CallStats
from zoho_dagster.client.visibility import EVERY_RECORD

if TYPE_CHECKING:
    from zoho_dagster.client.client import ZohoClient

SUBFORM = "subform"
LINK = "link"
RELATED = "related"
PARENT_KEY = "_parent_id"
"""The key each child row gets with its parent's id (also the child table's column)."""

COQL_IN_VALUES = 50
"""``in`` takes at most 50 values in v6 (docs/zoho-crm-api.md §3.8)."""
COQL_RELATIONS = 2
COQL_OFFSET_CAP = 10_000
"""offset + limit may not pass 10,000 in v6 (§3.8)."""
USER_LOOKUPS = frozenset({"ownerlookup", "userlookup"})
LOOKUPS = frozenset({"lookup"}) | USER_LOOKUPS
NOT_IN_COQL = frozenset({"subform", "multiselectlookup", "multiuserlookup", "fileupload", "imageupload"})
"""Types COQL cannot select (§3.8: multi-select lookups, line items, file-upload fields)."""

STAGE_HISTORY = "Stage_History"
STAGE_HISTORY_MODULE = "Deals"
STAGE_HISTORY_FIELDS: tuple[dict[str, Any], ...] = tuple(
    {"api_name": name, "data_type": data_type, "json_type": json_type}
    for name, data_type, json_type in (
        ("Stage", "picklist", "string"),
        ("Amount", "currency", "double"),
        ("Probability", "integer", "integer"),
        ("Expected_Revenue", "currency", "double"),
        ("Closing_Date", "date", "string"),
        ("Modified_Time", "datetime", "string"),
        ("Modified_By", "userlookup", "jsonobject"),
        ("Duration_Days", "integer", "integer"),
    )
)
"""The Stage_History related list's fields (no field metadata is served for a related list)."""

SINGLE_READS_KEPT = 5_000
"""Single-record reads of hidden parents kept for the next child field (a writer's batch of parents)."""

_ID = re.compile(r"[0-9A-Za-z_-]+")
T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class ChildField:
    """One child table of a module: where its rows live and which columns they fill.

    ``field`` is the parent's field (``Quoted_Items``, ``Partner_Accounts``) or ``Stage_History``; ``kind``
    is ``subform``, ``link`` or ``related``; ``module`` is where the rows are read (the subform or linking
    module, or the parent module for a related list); ``parent_field`` the row's lookup to its parent;
    ``fields`` the metadata of the row's typed columns (the subform module's fields without the parent
    lookup; for a link only the connected lookup ``linked_field``, to records of ``linked_module``).
    """

    field: str
    kind: str
    module: str
    parent_field: str = ""
    fields: tuple[dict[str, Any], ...] = ()
    linked_field: str = ""
    linked_module: str = ""


def _api_name(meta: Mapping[str, Any] | None) -> str:
    return str((meta or {}).get("api_name") or "")


def _lookup_target(meta: Mapping[str, Any]) -> str:
    """The module a lookup field points to (``users`` for owner and user lookups)."""
    if str(meta.get("data_type") or "") in USER_LOOKUPS:
        return "users"
    return _api_name((meta.get("lookup") or {}).get("module"))


def child_fields(
    module: str,
    fields: Sequence[Mapping[str, Any]],
    subform_fields: Callable[[str], Sequence[Mapping[str, Any]]],
) -> list[ChildField]:
    """The child tables of ``module`` whose parent fields ``fields`` holds (its ``/settings/fields``), plus
    stage history for Deals; ``subform_fields(module)`` gives a subform module's field metadata.

    Only fields present in the metadata count: a field the token cannot see has no child table.
    """
    children: list[ChildField] = []
    for meta in fields:
        data_type = str(meta.get("data_type") or "")
        name = _api_name(meta)
        if data_type == "subform":
            rows_module = _api_name(meta.get("associated_module")) or name
            row_fields = tuple(dict(f) for f in subform_fields(rows_module) if _api_name(f))
            parent = "Parent_Id"
            kept = tuple(f for f in row_fields if _api_name(f) not in (parent, "id"))
            children.append(ChildField(name, SUBFORM, rows_module, parent, kept))
        elif data_type in ("multiselectlookup", "multiuserlookup"):
            details = meta.get(data_type) or {}
            linking = details.get("linking_details") or {}
            linked = _api_name(linking.get("connected_lookup_field"))
            target = _api_name((details.get("connected_details") or {}).get("module"))
            if data_type == "multiuserlookup":
                target = target or "users"
            lookup = {"api_name": linked, "data_type": "lookup", "json_type": "jsonobject"}
            children.append(
                ChildField(
                    name,
                    LINK,
                    _api_name(linking.get("module")),
                    _api_name(linking.get("lookup_field")),
                    (lookup,),
                    linked,
                    target,
                )
            )
    if module == STAGE_HISTORY_MODULE:
        children.append(ChildField(STAGE_HISTORY, RELATED, module, fields=STAGE_HISTORY_FIELDS))
    return children


def checked_ids(parent_ids: Iterable[str]) -> list[str]:
    """``parent_ids`` as they go into a COQL literal; an id that is not a plain token is refused.

    Zoho ids are digits; anything with a quote or a space could change the query's meaning.
    """
    ids = [str(value) for value in parent_ids]
    bad = [value for value in ids if not _ID.fullmatch(value)]
    if bad:
        raise ValueError(
            f"Record id {bad[0]!r} is not a Zoho record id (letters, digits, '_' or '-'); child rows "
            "are read only for ids Zoho sent."
        )
    return ids


def bounded_map(
    function: Callable[[T], R], items: Iterable[T], workers: int, name: str = "zoho-children"
) -> Iterator[R]:
    """``function`` over ``items`` on ``workers`` threads, results as they finish, at most twice ``workers``
    pending: memory stays bounded however slowly the results are consumed.

    An exception in one call is raised here; closing the iterator cancels what has not started.
    """
    pending: list[Future[R]] = []
    source = iter(items)
    pool = ThreadPoolExecutor(max(1, workers), thread_name_prefix=name)
    try:
        exhausted = False
        while True:
            while not exhausted and len(pending) < 2 * max(1, workers):
                item = next(source, None)
                if item is None:
                    exhausted = True
                    break
                pending.append(pool.submit(function, item))
            if not pending:
                return
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in [future for future in pending if future in finished]:
                pending.remove(future)
                yield future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


@dataclass
class _Query:
    """One COQL column group: the select list and the lookups to rebuild from its dot columns."""

    columns: list[str]
    relations: dict[str, str] = field(default_factory=dict)
    """lookup field → its dot column (``Product_Name`` → ``Product_Name.Product_Name``)."""


class ChildReader:
    """Reads the child rows of given parents, for each of a module's child fields (module docstring)."""

    def __init__(self, client: "ZohoClient", module: str, fields: Sequence[Mapping[str, Any]]) -> None:
        self.client = client
        self.module = module
        self.children = child_fields(module, fields, client.list_fields)
        self.stats = CallStats()
        """Calls and credits spent on child rows (a difference of the client's counts, as the assets do)."""
        self._lock = threading.Lock()
        self._display: dict[str, str] | None = None
        self._users: dict[str, dict[str, Any]] | None = None
        self._single: dict[str, Record] = {}

    # ------------------------------------------------------------------------------------------ the parts

    def display_fields(self) -> dict[str, str]:
        """Each module's display (name) field, from ``/settings/modules`` (one call, remembered)."""
        with self._lock:
            if self._display is None:
                self._display = {
                    _api_name(row): _api_name(row.get("display_field"))
                    for row in self.client.list_modules()
                    if _api_name(row) and _api_name(row.get("display_field"))
                }
            return self._display

    def users(self) -> dict[str, dict[str, Any]]:
        """Users by id (``name`` and ``email``), from ``/users`` (one paged read, remembered)."""
        with self._lock:
            if self._users is None:
                found: dict[str, dict[str, Any]] = {}
                for page in self.client.iter_users():
                    for user in page:
                        found[str(user.get("id"))] = {
                            "name": user.get("full_name"),
                            "email": user.get("email"),
                        }
                self._users = found
            return self._users

    def queries(self, child: ChildField) -> list[_Query]:
        """The select lists of ``child``'s rows: ≤50 columns each (``id`` in every one), dot relations for
        at most two lookups to modules with a display field."""
        lookups: list[tuple[str, str]] = []
        names: list[str] = []
        for meta in child.fields:
            name = _api_name(meta)
            data_type = str(meta.get("data_type") or "")
            if name in ("id", child.parent_field) or data_type in NOT_IN_COQL:
                continue
            names.append(name)
            if data_type == "lookup" or (child.kind == LINK and name == child.linked_field):
                target = child.linked_module if child.kind == LINK else _lookup_target(meta)
                if target and target != "users":
                    lookups.append((name, target))
        relations: dict[str, str] = {}
        if lookups:
            display = self.display_fields()
            for name, target in lookups:
                if len(relations) < COQL_RELATIONS and display.get(target):
                    relations[name] = f"{name}.{display[target]}"
        fixed = ["id", child.parent_field]
        columns = [*names, *relations.values()]
        room = COQL_COLUMNS - len(fixed)
        groups = [columns[i : i + room] for i in range(0, len(columns), room)] or [[]]
        queries = []
        for group in groups:
            mine = {name: dot for name, dot in relations.items() if dot in group}
            queries.append(_Query([*fixed, *group], mine))
        return queries

    # ------------------------------------------------------------------------------------------- reading

    def rows(
        self, child: ChildField, parent_ids: Sequence[str], hidden: Collection[str] = ()
    ) -> Iterator[list[Record]]:
        """Pages of ``child``'s rows of the parents ``parent_ids`` (each row with ``_parent_id``).

        ``hidden`` names the parents Zoho's list API shows only when asked (converted, awaiting approval):
        whether COQL returns their rows is not documented (docs/zoho-crm-api.md §3.8, UNCONFIRMED), and an
        omission cannot be told from a parent without rows, so theirs are read from the parent's
        single-record read instead (one call each), which carries every subform row and link.
        """
        ids = checked_ids(parent_ids)
        if not ids:
            return
        single = {rid for rid in checked_ids(hidden) if rid in set(ids)} if child.kind != RELATED else set()
        ids = [rid for rid in ids if rid not in single]
        base = (self.client.stats.calls, self.client.stats.credits)
        try:
            if single:
                workers = self.client.concurrency()
                yield from bounded_map(lambda one: self._in_record(child, one), sorted(single), workers)
            if not ids:
                return
            if child.kind == RELATED:
                workers = self.client.concurrency()
                yield from bounded_map(lambda one: self._related(child, one), ids, workers)
            else:
                queries = self.queries(child)
                users = self.users() if self._needs_users(child) else {}
                self.client.concurrency()
                workers = self.client.limiter.heavy_limit
                batches = [ids[i : i + COQL_IN_VALUES] for i in range(0, len(ids), COQL_IN_VALUES)]
                yield from bounded_map(
                    lambda batch: self._batch(child, queries, users, batch), batches, workers
                )
        finally:
            self.stats.add(
                calls=self.client.stats.calls - base[0], credits=self.client.stats.credits - base[1]
            )

    def _needs_users(self, child: ChildField) -> bool:
        if child.kind == LINK:
            return child.linked_module == "users"
        return any(str(meta.get("data_type") or "") in USER_LOOKUPS for meta in child.fields)

    def _batch(
        self, child: ChildField, queries: list[_Query], users: dict[str, dict[str, Any]], ids: list[str]
    ) -> list[Record]:
        """Every row of one batch of ≤50 parents, the column groups joined on ``id``."""
        merged: dict[str, Record] = {}
        for query in queries:
            for row in self._coql_rows(child, query, ids):
                merged.setdefault(str(row.get("id")), {}).update(row)
        return [self._finish(child, row, users) for row in merged.values()]

    def _coql_rows(self, child: ChildField, query: _Query, ids: list[str]) -> Iterator[Record]:
        literal = ", ".join(f"'{value}'" for value in ids)
        where = f"({child.parent_field} in ({literal}))"
        # COQL also needs the module's READ (docs/zoho-crm-api.md §3.8), which ZohoCRM.modules.ALL holds.
        need = Need(COQL_SCOPE, f"the {child.module} rows through COQL")
        offset, limit = 0, COQL_FIRST_PAGE
        while True:
            text = (
                f"select {', '.join(query.columns)} from {child.module} where {where} "
                f"order by id asc limit {offset}, {limit}"
            )
            answer = self.client.http.post_json(
                COQL_PATH, need, {"select_query": text}, cost=coql_cost(limit), heavy=True
            )
            body = answer.body or {}
            page = list(body.get("data") or [])
            for row in page:
                for name, dot in query.relations.items():
                    display = row.pop(dot, None)
                    if isinstance(row.get(name), Mapping):
                        row[name] = {**row[name], "name": display}
                yield row
            if not page or not (body.get("info") or {}).get("more_records"):
                return
            offset += len(page)
            limit = min(COQL_NEXT_PAGE, COQL_OFFSET_CAP - offset)
            if limit <= 0:
                raise ValueError(
                    f"{child.module}: 50 parents hold more than {COQL_OFFSET_CAP} rows, more than COQL pages "
                    "by offset (docs/zoho-crm-api.md §3.8); this exceeds Zoho's 100 subform rows per record."
                )

    def _finish(self, child: ChildField, row: Record, users: dict[str, dict[str, Any]]) -> Record:
        """Names for user lookups, and ``_parent_id`` from the row's lookup to its parent."""
        for meta in child.fields:
            name = _api_name(meta)
            user_lookup = str(meta.get("data_type") or "") in USER_LOOKUPS or (
                child.kind == LINK and name == child.linked_field and child.linked_module == "users"
            )
            value = row.get(name)
            if user_lookup and isinstance(value, Mapping) and value.get("id") is not None:
                known = users.get(str(value["id"]), {})
                extra = known if child.kind != LINK else {"name": known.get("name")}
                row[name] = {**value, **{k: v for k, v in extra.items() if value.get(k) is None}}
        parent = row.get(child.parent_field)
        row[PARENT_KEY] = str(parent.get("id")) if isinstance(parent, Mapping) else parent
        return row

    def _single_record(self, parent_id: str) -> Record:
        """``GET /{module}/{id}``, once per parent for all its child fields (remembered for the last
        :data:`SINGLE_READS_KEPT` parents: the writer asks for each child field of a batch in turn)."""
        with self._lock:
            known = self._single.get(parent_id)
        if known is not None:
            return known
        need = Need(f"ZohoCRM.modules.{self.module.lower()}.READ", f"the child rows of {self.module}")
        # The single-record read is the same Get Records API: whether its defaults hide such a record too is
        # not documented, so it is asked for every record as the list is (client/visibility.py).
        answer = self.client.http.get(f"/{self.module}/{parent_id}", need, params={**EVERY_RECORD})
        record = dict(((answer.body or {}).get("data") or [{}])[0])
        arrays = {child.field: record.get(child.field) for child in self.children}
        with self._lock:
            if len(self._single) >= SINGLE_READS_KEPT:
                self._single.clear()
            self._single[parent_id] = arrays
        return arrays

    def _in_record(self, child: ChildField, parent_id: str) -> list[Record]:
        """``child``'s rows of one parent from its single-record read (``GET /{module}/{id}``), shaped as the
        COQL route shapes them: ``id``, the lookup to the parent as ``{"id"}``, the row's fields with lookups
        as ``{"id", "name"}``."""
        items = self._single_record(parent_id).get(child.field) or []
        rows: list[Record] = []
        users = self.users() if self._needs_users(child) else {}
        for item in items:
            if not isinstance(item, Mapping) or item.get("id") is None:
                continue
            row: Record = {"id": str(item["id"]), child.parent_field: {"id": parent_id}}
            for meta in child.fields:
                name = _api_name(meta)
                value = item.get(name)
                lookup = str(meta.get("data_type") or "") in LOOKUPS or name == child.linked_field
                if lookup and isinstance(value, Mapping):
                    value = {"id": value.get("id"), "name": value.get("name")}
                row[name] = value
            rows.append(self._finish(child, row, users))
        return rows

    def _related(self, child: ChildField, parent_id: str) -> list[Record]:
        """Every row of one parent's related list (``GET /{module}/{id}/{list}``, pages of 200)."""
        need = Need(f"ZohoCRM.modules.{child.module.lower()}.READ", f"the {child.field} of {child.module}")
        rows: list[Record] = []
        page = 1
        names = ",".join(_api_name(meta) for meta in child.fields)
        while True:
            answer = self.client.http.get(
                f"/{child.module}/{parent_id}/{child.field}",
                need,
                params={"fields": names, "page": page, "per_page": PER_PAGE},
            )
            body = answer.body or {}
            found = list(body.get("data") or [])
            rows.extend({**row, PARENT_KEY: parent_id} for row in found)
            if not found or not (body.get("info") or {}).get("more_records"):
                return rows
            page += 1
