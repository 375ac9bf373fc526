"""`POST /crm/v6/coql`: run a parsed COQL query over records, subform rows and linking rows
(docs/zoho-crm-api.md §3.8)."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Iterator
from itertools import islice
from typing import Any

from .clock import parse_time
from .context import Request
from .coql import MAX_RELATIONS, Comparison, Group, Query, invalid_query, limit_exceeded, parse, select_value
from .errors import ApiError, EmptyResponse
from .schema import (
    CHILD_TYPES,
    MULTI_CURRENCY_FIELDS,
    REF_TYPES,
    RICH_TEXT_LIMIT,
    FieldSpec,
    ModuleSpec,
    any_module_spec,
    module_spec,
)
from .store import OrgStore
from .visibility import DEFAULT, EVERYTHING

USER_PARTS = ("id", "first_name", "last_name", "email", "full_name")
"""Dot notation on a user column reaches these user fields (docs/zoho-crm-api.md §3.4, §3.8)."""

Getter = Callable[[dict[str, Any]], Any]


@dataclasses.dataclass
class Column:
    name: str
    field: FieldSpec  # the field whose type the value has (the target's field for a dot column)
    get: Getter  # rendered row → value as COQL gives it
    relation: str = ""  # the lookup field a dot column goes through


def handle(req: Request) -> tuple[int, Any]:
    req.require("ZohoCRM.coql.READ")
    try:
        body = json.loads(req.body or b"{}")
        text = body["select_query"]
        if not isinstance(text, str):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        raise ApiError(
            400,
            "REQUIRED_PARAM_MISSING",
            "One of the expected parameter is missing",
            {"param_name": "select_query"},
        ) from None
    query = parse(text)
    spec = any_module_spec(query.module)
    if spec is None:
        raise invalid_query("invalid module name given in the query", clause="from", module=query.module)
    req.require_module_read(spec)
    return Runner(req, spec, query).run()


class Runner:
    """One query's execution: resolve columns, choose candidate rows, filter, order, slice."""

    def __init__(self, req: Request, spec: ModuleSpec, query: Query) -> None:
        self.req = req
        self.store: OrgStore = req.org.store
        self.spec = spec
        self.query = query
        # UNCONFIRMED whether COQL returns converted and awaiting-approval records (docs/zoho-crm-api.md §10);
        # strictest plausible: it leaves them out as the list API's defaults do, and the rows of a subform or
        # linking module whose parent is such a record (reading coql_includes_hidden).
        self.flt = EVERYTHING if req.sim.readings.coql_includes_hidden else DEFAULT
        self.drift = self.store.computed.drifted(spec.api_name)
        self._targets: dict[tuple[str, str], dict[str, Any] | None] = {}
        self.relations: set[str] = set()
        names = [c.lower() for c in query.columns]
        if len(set(names)) != len(names):
            raise ApiError(400, "DUPLICATE_DATA", "duplicate column given in the query", {"clause": "select"})
        self.columns = [self.resolve(c, "select") for c in query.columns]
        self.order = [(self.resolve(c, "order by"), desc) for c, desc in query.order]
        self.where = self.compile(query.where) if query.where is not None else None
        if len(self.relations) > MAX_RELATIONS:
            raise limit_exceeded("relations", MAX_RELATIONS)

    # --- columns -------------------------------------------------------------------------------------------
    def field(self, spec: ModuleSpec, name: str) -> FieldSpec | None:
        """The field ``name`` as the org has it now: an unused field (in no layout) and the multi-currency
        pair while multi-currency is off are unknown columns (strict, UNCONFIRMED)."""
        f = spec.by_name.get(name)
        if f is not None and (
            f.unused or (name in MULTI_CURRENCY_FIELDS and spec.has_currency and not self.req.org.mc_status)
        ):
            return None
        drift = self.store.computed.drifted(spec.api_name).get(name) if f is not None else None
        return dataclasses.replace(f, data_type=drift) if f is not None and drift else f

    def resolve(self, name: str, clause: str) -> Column:
        if name == "id":
            return Column("id", FieldSpec("id", "bigint"), lambda row: row["id"])
        base, _, part = name.partition(".")
        f = self.field(self.spec, base)
        if f is None:
            raise invalid_query("column given seems to be invalid", column_name=name, clause=clause)
        if f.data_type in CHILD_TYPES:
            # Multi-select lookups and line items are not supported in COQL (docs/zoho-crm-api.md §3.8).
            raise invalid_query("column not supported in the query", column_name=name, clause=clause)
        if clause == "where" and f.data_type == "textarea":
            raise invalid_query(
                "multi-line fields are not supported in criteria", column_name=name, clause=clause
            )
        if not part and f.rich_text:
            # UNCONFIRMED whether COQL cuts rich text as the list API does (§2.5); strictest: it does.
            return Column(name, f, lambda row, key=base: _cut(row.get(key)))
        if not part:
            return Column(name, f, lambda row, key=base, dt=f.data_type: select_value(dt, row.get(key)))
        self.relations.add(base)
        if f.data_type in ("ownerlookup", "userlookup"):
            if part not in USER_PARTS:
                raise invalid_query("column given seems to be invalid", column_name=name, clause=clause)
            return Column(
                name, FieldSpec(part, "text"), lambda row, key=base, p=part: self.user_part(row, key, p), base
            )
        target = any_module_spec(f.lookup) if f.data_type == "lookup" else None
        tf = self.field(target, part) if target is not None and part != "id" else None
        if target is None or (part != "id" and (tf is None or tf.data_type in CHILD_TYPES)):
            raise invalid_query("column given seems to be invalid", column_name=name, clause=clause)
        if part == "id":
            return Column(
                name, FieldSpec("id", "bigint"), lambda row, key=base: (row.get(key) or {}).get("id"), base
            )
        assert tf is not None
        return Column(
            name,
            tf,
            lambda row, key=base, t=target, p=part, dt=tf.data_type: self.lookup_part(row, key, t, p, dt),
            base,
        )

    def user_part(self, row: dict[str, Any], key: str, part: str) -> Any:
        ref = row.get(key)
        if not isinstance(ref, dict):
            return None
        user = next((u for u in self.store.users if u.id == ref.get("id")), None)
        return None if user is None else getattr(user, part)

    def lookup_part(
        self, row: dict[str, Any], key: str, target: ModuleSpec, part: str, data_type: str
    ) -> Any:
        ref = row.get(key)
        if not isinstance(ref, dict) or ref.get("id") is None:
            return None
        ident = (target.api_name, str(ref["id"]))
        if ident not in self._targets:
            index = self.store.index_of(target.api_name, ident[1]) if module_spec(target.api_name) else None
            self._targets[ident] = self.store.rendered(target.api_name, index) if index is not None else None
        full = self._targets[ident]
        return None if full is None else select_value(data_type, full.get(part))

    # --- criteria ------------------------------------------------------------------------------------------
    def compile(self, node: Any) -> Callable[[dict[str, Any]], bool]:
        if isinstance(node, Group):
            left, right = self.compile(node.left), self.compile(node.right)
            if node.op == "and":
                return lambda row: left(row) and right(row)
            return lambda row: left(row) or right(row)
        assert isinstance(node, Comparison)
        column = self.resolve(node.column, "where")
        kind = _kind(column.field)
        values = [self.operand(column, kind, v) for v in node.values]
        op = node.op
        get = column.get

        def test(row: dict[str, Any]) -> bool:
            value = _plain(get(row), kind)
            if op == "is null":
                return value in (None, [], "")
            if op == "is not null":
                return value not in (None, [], "")
            if value is None:
                return False
            if kind == "list":
                hits = [v in value for v in values]
                return any(hits) if op in ("=", "in") else not any(hits) if op in ("!=", "not in") else False
            if op in ("=", "in"):
                return value in values
            if op in ("!=", "not in"):
                return value not in values
            if op in ("like", "not like"):
                hit = _like(values[0]).match(str(value)) is not None
                return hit if op == "like" else not hit
            if op in ("between", "not between"):
                inside = values[0] <= value <= values[1]
                return inside if op == "between" else not inside
            return {
                ">": value > values[0],
                ">=": value >= values[0],
                "<": value < values[0],
                "<=": value <= values[0],
            }[op]

        return test

    def operand(self, column: Column, kind: str, value: Any) -> Any:
        """A criterion's literal in the column's terms; a literal of the wrong type is INVALID_QUERY."""
        try:
            if kind == "datetime":
                parsed = parse_time(str(value)) if isinstance(value, str) else None
                if parsed is None:
                    raise ValueError
                return parsed
            if kind == "number":
                if isinstance(value, bool):
                    raise ValueError
                return float(value)
            if kind == "boolean":
                if not isinstance(value, bool):
                    raise ValueError
                return value
        except (TypeError, ValueError):
            raise invalid_query(
                "value given seems to be invalid for the column", column_name=column.name, clause="where"
            ) from None
        if isinstance(value, bool):
            raise invalid_query(
                "value given seems to be invalid for the column", column_name=column.name, clause="where"
            )
        return str(value) if not isinstance(value, str) else value

    # --- rows ----------------------------------------------------------------------------------------------
    def candidates(self) -> Iterator[dict[str, Any]]:
        """Rendered rows in id order; `id`/parent criteria at the top of an `and` chain narrow the scan."""
        spec, store, flt = self.spec, self.store, self.flt
        pinned = _pinned(self.query.where, "id")
        if not spec.parent:
            if pinned is not None:
                indexes = sorted(
                    {i for i in (store.index_of(spec.api_name, str(v)) for v in pinned) if i is not None}
                )
                for index in indexes:
                    full = store.rendered(spec.api_name, index)
                    if full is not None and store.matches(spec.api_name, index, flt):
                        yield full
                return
            for _, index in store.stream(spec.api_name, "id", False, None, None, flt):
                full = store.rendered(spec.api_name, index)
                if full is not None:
                    yield full
            return
        children = store.children
        parents = _pinned(self.query.where, spec.link_field)
        if parents is not None:
            indexes = sorted(
                {i for i in (store.index_of(spec.parent, str(v)) for v in parents) if i is not None}
            )
            for index in indexes:
                parent_full = store.rendered(spec.parent, index)
                if parent_full is None or not store.matches(spec.parent, index, flt):
                    continue
                for row in sorted(children.rows(spec, index), key=lambda r: int(r["id"])):
                    yield children.render_row(spec, parent_full, row)
            return
        current: tuple[int, dict[str, Any] | None] = (-1, None)
        for _, index, row in children.stream(spec, False, None, flt):
            if current[0] != index:
                current = (index, store.rendered(spec.parent, index))
            if current[1] is not None:
                yield children.render_row(spec, current[1], row)

    def by_modified_time(self) -> Iterator[dict[str, Any]] | None:
        """Rendered rows in ``Modified_Time, id`` order from the first instant the criteria allow, when the
        query is ordered that way: the records API's sorted index serves it, so a keyset page costs its rows,
        not a sort of the module (Zoho's own COQL is indexed; a full sort per call would make the simulator,
        not the client, the bottleneck of a backfill). Same rows, same order as the general path."""
        spec, store = self.spec, self.store
        order = [(c.name, d) for c, d in self.order]
        if spec.parent or order not in (_BY_TIME, [*_BY_TIME, ("id", False)]):
            return None
        if _pinned(self.query.where, "id") is not None:
            return None
        lowest = _bound(self.query.where, "Modified_Time", above=False)
        since = None if lowest is None else lowest[0]
        until = _bound(self.query.where, "Modified_Time", above=True)

        def rows() -> Iterator[dict[str, Any]]:
            for key, index in store.stream(spec.api_name, "Modified_Time", False, since, None, self.flt):
                if until is not None and (key[0] > until[0] or (key[0] == until[0] and not until[1])):
                    return  # past the last instant the criteria allow: no later row can match
                full = store.rendered(spec.api_name, index)
                if full is not None:
                    yield full

        return rows()

    def run(self) -> tuple[int, Any]:
        query = self.query
        window = query.offset + query.count
        ordered = self.by_modified_time()
        matches: Iterator[dict[str, Any]] = (
            row for row in (ordered or self.candidates()) if self.where is None or self.where(row)
        )
        if ordered is not None or not self.order or [(c.name, d) for c, d in self.order] == [("id", False)]:
            rows = list(islice(matches, window + 1))
        else:
            rows = list(matches)
            for column, descending in reversed(self.order):
                kind = _kind(column.field)
                present = [r for r in rows if _plain(column.get(r), kind) is not None]
                absent = [r for r in rows if _plain(column.get(r), kind) is None]
                present.sort(
                    key=lambda r, c=column, k=kind: _sort_key(_plain(c.get(r), k)), reverse=descending
                )
                rows = present + absent  # nulls last either way (UNCONFIRMED)
        more = len(rows) > window
        page = rows[query.offset : window]
        if not page:
            raise EmptyResponse(204)
        data = []
        for row in page:
            out = {c.name: c.get(row) for c in self.columns}
            out["id"] = row["id"]
            data.append(out)
        return 200, {"data": data, "info": {"count": len(data), "more_records": more}}


_BY_TIME = [("Modified_Time", False)]


def _cut(value: Any) -> Any:
    return value[:RICH_TEXT_LIMIT] if isinstance(value, str) else value


def _kind(f: FieldSpec) -> str:
    if f.data_type in REF_TYPES:
        return "ref"
    if f.data_type == "multiselectpicklist":
        return "list"
    if f.data_type == "datetime" or (f.return_type == "datetime" and f.data_type == "formula"):
        return "datetime"
    if f.json_type in ("double", "integer"):
        return "number"
    if f.json_type == "boolean":
        return "boolean"
    return "text"


def _plain(value: Any, kind: str) -> Any:
    """A row value in comparable form: refs by id, datetimes as epoch seconds, numbers as floats."""
    if value is None:
        return None
    if kind == "ref":
        return str(value.get("id")) if isinstance(value, dict) else None
    if kind == "datetime":
        return parse_time(str(value))
    if kind == "number":
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    if kind == "list":
        return value if isinstance(value, list) else None
    if kind == "boolean":
        return value if isinstance(value, bool) else None
    return str(value)


def _sort_key(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, list) else value


def _like(pattern: str) -> re.Pattern[str]:
    return re.compile(
        "^" + ".*".join(re.escape(p) for p in pattern.split("%")) + "$", re.IGNORECASE | re.DOTALL
    )


def _pinned(node: Any, column: str) -> list[Any] | None:
    """The values `column = v` / `column in (…)` allows when it sits in the top `and` chain, else None."""
    if isinstance(node, Comparison):
        return list(node.values) if node.column == column and node.op in ("=", "in") else None
    if isinstance(node, Group) and node.op == "and":
        return _pinned(node.left, column) or _pinned(node.right, column)
    return None


_BELOW = {">": False, ">=": True, "=": True}
_ABOVE = {"<": False, "<=": True, "=": True}


def _bound(node: Any, column: str, above: bool) -> tuple[float, bool] | None:
    """The instant by which the criteria ``node`` bound ``column`` below (``above``: above), and whether it is
    included: the tightest bound of an ``and``, the looser of an ``or``; None when they do not bound it."""
    if isinstance(node, Comparison):
        ops = _ABOVE if above else _BELOW
        if node.column != column or node.op not in ops or not isinstance(node.values[0], str):
            return None
        moment = parse_time(node.values[0])
        return None if moment is None else (moment, ops[node.op])
    if isinstance(node, Group):
        sides = [_bound(node.left, column, above), _bound(node.right, column, above)]
        known = [side for side in sides if side is not None]

        def tightness(bound: tuple[float, bool]) -> tuple[float, bool]:
            return (-bound[0] if above else bound[0], not bound[1])

        if node.op == "and":
            return max(known, key=tightness, default=None)
        return min(known, key=tightness) if len(known) == 2 else None
    return None
