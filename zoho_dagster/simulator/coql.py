"""A small, strict COQL parser (docs/zoho-crm-api.md §3.8): the query as a tree, and COQL's value shapes.

Grammar (keywords case-insensitive)::

    select <column>[, <column>…] from <Module> [where <criteria>]
        [order by <column> [asc|desc][, …]]
        [limit <count> | limit <offset>, <count> | limit <count> offset <n>]
    criteria   := term [(and|or) term]            -- pairwise: a third term needs parentheses
    term       := "(" criteria ")" | <column> <op> <value> | <column> [not] in (<value>, …)
                | <column> is [not] null | <column> [not] like '<text>' | <column> [not] between <v> and <v>

Zoho asks for criteria grouped in pairs, ``((A and B) and C)`` (§3.8); this parser refuses ``A and B and C``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .errors import ApiError
from .schema import REF_TYPES, ModuleSpec

MAX_COUNT = 2000
MAX_WINDOW = 10_000
MAX_COLUMNS = 50
MAX_CRITERIA = 25
MAX_IN_VALUES = 50
MAX_RELATIONS = 2
DEFAULT_COUNT = 200
COMPARATORS = ("=", "!=", "<>", ">=", "<=", ">", "<")

_TOKEN = re.compile(
    r"\s*(?:(?P<string>'(?:[^'\\]|\\.|'')*')|(?P<number>-?\d+(?:\.\d+)?)(?![\w.])"
    r"|(?P<op>>=|<=|!=|<>|=|>|<)|(?P<punct>[(),*])|(?P<word>[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*))"
)
KEYWORDS = {
    "select",
    "from",
    "where",
    "order",
    "by",
    "asc",
    "desc",
    "limit",
    "offset",
    "and",
    "or",
    "in",
    "not",
    "is",
    "null",
    "like",
    "between",
}


def syntax_error(near: str, clause: str) -> ApiError:
    # UNCONFIRMED details keys (docs/zoho-crm-api.md §3.8): the clause and the text the parser stopped at.
    return ApiError(
        400, "SYNTAX_ERROR", "error occurred while parsing the query", {"clause": clause, "near": near}
    )


def invalid_query(message: str, **details: Any) -> ApiError:
    return ApiError(400, "INVALID_QUERY", message, details)


def limit_exceeded(what: str, limit: int) -> ApiError:
    return ApiError(400, "LIMIT_EXCEEDED", "Max limit exceeded", {"by": what, "limit": limit})


@dataclass(frozen=True)
class Token:
    kind: str  # string | number | op | punct | word | end
    text: str
    value: Any = None

    def word(self, *names: str) -> bool:
        return self.kind == "word" and self.text.lower() in names


@dataclass
class Comparison:
    column: str
    op: str  # = != > >= < <= in not in is null is not null like not like between not between
    values: list[Any]


@dataclass
class Group:
    op: str  # and | or
    left: Any
    right: Any


@dataclass
class Query:
    columns: list[str]
    module: str
    where: Any = None
    order: list[tuple[str, bool]] = field(default_factory=list)  # (column, descending)
    offset: int = 0
    count: int = DEFAULT_COUNT


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    text = text.rstrip().removesuffix(";")
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise syntax_error(text[pos:].strip()[:20], "query")
        kind = match.lastgroup or ""
        raw = match.group(kind)
        value: Any = None
        if kind == "string":
            value = raw[1:-1].replace("\\'", "'").replace("''", "'")
        elif kind == "number":
            value = float(raw) if "." in raw else int(raw)
        tokens.append(Token(kind, raw, value))
        pos = match.end()
    tokens.append(Token("end", ""))
    return tokens


class Parser:
    """Recursive descent over the tokens; every failure is a SYNTAX_ERROR naming where it stopped."""

    def __init__(self, text: str) -> None:
        self.tokens = tokenize(text)
        self.pos = 0
        self.clause = "select"
        self.criteria = 0

    @property
    def peek(self) -> Token:
        return self.tokens[self.pos]

    def take(self) -> Token:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def expect_word(self, *names: str) -> Token:
        token = self.take()
        if not token.word(*names):
            raise syntax_error(token.text or "end of query", self.clause)
        return token

    def expect_punct(self, text: str) -> None:
        token = self.take()
        if token.kind != "punct" or token.text != text:
            raise syntax_error(token.text or "end of query", self.clause)

    def column(self) -> str:
        token = self.take()
        if token.kind != "word" or token.text.lower() in KEYWORDS:
            raise syntax_error(token.text or "end of query", self.clause)
        return token.text

    def parse(self) -> Query:
        self.expect_word("select")
        columns = [self.column()]
        while self.peek.kind == "punct" and self.peek.text == ",":
            self.take()
            columns.append(self.column())
        self.clause = "from"
        self.expect_word("from")
        module = self.column()
        query = Query(columns, module)
        if self.peek.word("where"):
            self.take()
            self.clause = "where"
            query.where = self.criteria_expr()
        if self.peek.word("order"):
            self.take()
            self.clause = "order by"
            self.expect_word("by")
            query.order.append(self.order_item())
            while self.peek.kind == "punct" and self.peek.text == ",":
                self.take()
                query.order.append(self.order_item())
        if self.peek.word("limit"):
            self.take()
            self.clause = "limit"
            first = self.integer()
            if self.peek.kind == "punct" and self.peek.text == ",":
                self.take()
                query.offset, query.count = first, self.integer()
            elif self.peek.word("offset"):
                self.take()
                query.count, query.offset = first, self.integer()
            else:
                query.count = first
        if self.peek.kind != "end":
            raise syntax_error(self.peek.text, self.clause)
        return query

    def integer(self) -> int:
        token = self.take()
        if token.kind != "number" or not isinstance(token.value, int) or token.value < 0:
            raise syntax_error(token.text or "end of query", self.clause)
        return int(token.value)

    def order_item(self) -> tuple[str, bool]:
        column = self.column()
        descending = False
        if self.peek.word("asc", "desc"):
            descending = self.take().text.lower() == "desc"
        return column, descending

    def criteria_expr(self) -> Any:
        left = self.term()
        if self.peek.word("and", "or"):
            op = self.take().text.lower()
            right = self.term()
            if self.peek.word("and", "or"):
                # Pairwise grouping is required (docs/zoho-crm-api.md §3.8).
                raise syntax_error(self.peek.text, self.clause)
            return Group(op, left, right)
        return left

    def term(self) -> Any:
        if self.peek.kind == "punct" and self.peek.text == "(":
            self.take()
            inner = self.criteria_expr()
            self.expect_punct(")")
            return inner
        self.criteria += 1
        if self.criteria > MAX_CRITERIA:
            raise limit_exceeded("criteria", MAX_CRITERIA)
        column = self.column()
        token = self.take()
        if token.kind == "op":
            return Comparison(column, "!=" if token.text == "<>" else token.text, [self.value()])
        negate = False
        if token.word("not"):
            negate = True
            token = self.take()
        if token.word("in"):
            self.expect_punct("(")
            values = [self.value()]
            while self.peek.kind == "punct" and self.peek.text == ",":
                self.take()
                values.append(self.value())
            self.expect_punct(")")
            if len(values) > MAX_IN_VALUES:
                raise limit_exceeded("in", MAX_IN_VALUES)
            return Comparison(column, "not in" if negate else "in", values)
        if token.word("like"):
            value = self.value()
            if not isinstance(value, str):
                raise syntax_error(str(value), self.clause)
            return Comparison(column, "not like" if negate else "like", [value])
        if token.word("between"):
            low = self.value()
            self.expect_word("and")
            return Comparison(column, "not between" if negate else "between", [low, self.value()])
        if token.word("is") and not negate:
            if self.peek.word("not"):
                self.take()
                self.expect_word("null")
                return Comparison(column, "is not null", [])
            self.expect_word("null")
            return Comparison(column, "is null", [])
        raise syntax_error(token.text or "end of query", self.clause)

    def value(self) -> Any:
        token = self.take()
        if token.kind in ("string", "number"):
            return token.value
        if token.word("true", "false"):
            return token.text.lower() == "true"
        raise syntax_error(token.text or "end of query", self.clause)


def parse(text: str) -> Query:
    """Parse and check the v6 limits (§3.8): LIMIT ≤ 2,000, OFFSET + LIMIT ≤ 10,000, ≤ 50 columns."""
    query = Parser(text).parse()
    if len(query.columns) > MAX_COLUMNS:
        raise limit_exceeded("select", MAX_COLUMNS)
    if query.count < 1:
        raise syntax_error(str(query.count), "limit")
    if query.count > MAX_COUNT:
        raise limit_exceeded("limit", MAX_COUNT)
    if query.offset + query.count > MAX_WINDOW:
        raise limit_exceeded("offset", MAX_WINDOW)
    return query


def credits_for(text: str) -> int:
    """Credits by LIMIT (§3.8): 1-200 → 1, 201-1,000 → 2, 1,001-2,000 → 3; read before the query is parsed,
    since the credits are spent on admission."""
    match = re.search(r"\blimit\s+(\d+)(?:\s*,\s*(\d+))?", text, re.IGNORECASE)
    count = DEFAULT_COUNT if match is None else int(match.group(2) or match.group(1))
    return 1 if count <= 200 else 2 if count <= 1000 else 3


def select_value(data_type: str, value: Any) -> Any:
    """A column's value as COQL gives it: a lookup (or user) column is only ``{"id": …}`` (§3.8); so is
    `Layout` (strictest plausible, UNCONFIRMED: COQL's pages document only lookups)."""
    if data_type in REF_TYPES:
        return {"id": value.get("id")} if isinstance(value, dict) else None
    return value


def select_row(spec: ModuleSpec, full: dict[str, Any]) -> dict[str, Any]:
    """Every column of a rendered row, as `select <all fields> from <module>` gives it, plus ``id``."""
    out = {
        f.api_name: select_value(f.data_type, full.get(f.api_name)) for f in spec.fields if f.api_name in full
    }
    out["id"] = full["id"]
    return out
