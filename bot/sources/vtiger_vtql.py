"""The VTQL subset a KPI filter may use: parsed at start, re-emitted with every value quoted.

A filter is the condition after ``WHERE``: ``field op value`` conditions joined
by ``AND`` or by ``OR``. Operators: ``= != < > <= >= LIKE IN (...)``. Values
are single-quoted strings (``''`` for an embedded quote) or plain numbers.
Everything Vtiger 8.2 refuses (parentheses, ``NOT``, ``NOT IN``, ``IS NULL``,
``<>``, ``= ''``) is rejected here with a hint, so a bad filter fails at start
rather than at 10:00 in a Space.

Vtiger pastes the conditions into SQL without parentheses, so a filter that
mixes ``AND`` and ``OR`` is ambiguous; it is rejected too. Scorebot never
pastes user text into VTQL: it re-emits each condition from the parsed parts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
COMPARISONS = ("=", "!=", "<", ">", "<=", ">=")

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<string>'(?:[^']|'')*')
    | (?P<number>-?\d+(?:\.\d+)?)(?![A-Za-z_])
    | (?P<op><=|>=|!=|<>|==|=|<|>)
    | (?P<punct>[(),;])
    | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
    | (?P<other>\S)
    )""",
    re.VERBOSE,
)
_CLAUSE_WORDS = {"SELECT", "FROM", "WHERE", "ORDER", "BY", "GROUP", "LIMIT", "HAVING"}
_PARENS = (
    "parentheses are not supported by VTQL (Vtiger answers QUERY_SYNTAX_ERROR): "
    "write the conditions one after another, and use IN ('a', 'b') for alternatives of one field"
)


@dataclass(frozen=True)
class Condition:
    """One ``field op value`` test; ``IN`` holds several values."""

    field: str
    op: str
    values: tuple[str, ...]

    def vtql(self) -> str:
        """This condition as VTQL, every value quoted and escaped."""
        if self.op == "IN":
            return f"{self.field} IN ({','.join(quote(v) for v in self.values)})"
        return f"{self.field} {self.op} {quote(self.values[0])}"


@dataclass(frozen=True)
class Filter:
    """Conditions joined by one connective (``AND`` or ``OR``)."""

    conditions: tuple[Condition, ...] = ()
    joiner: str = "AND"

    @property
    def fields(self) -> tuple[str, ...]:
        """The fields the filter tests, in order."""
        return tuple(c.field for c in self.conditions)

    def where(self, *extra: Condition) -> str:
        """`` WHERE ...`` for this filter, ANDed with each ``extra``; empty when there is nothing to test.

        With ``OR``, the extras are repeated in each alternative
        (``a AND x OR b AND x``): that means ``(a OR b) AND x`` whether
        Vtiger chains the connectives left to right or gives ``AND`` the
        higher precedence, as SQL does.
        """
        parts = [c.vtql() for c in self.conditions]
        extras = [c.vtql() for c in extra]
        if not extras:
            clause = f" {self.joiner} ".join(parts)
        elif self.joiner == "OR":
            clause = " OR ".join(" AND ".join([p, *extras]) for p in parts)
        else:
            clause = " AND ".join([*parts, *extras])
        return f" WHERE {clause}" if clause else ""


def quotable(value: str) -> bool:
    """Whether ``value`` can be written as a VTQL string (8.2 cannot compare with '' or pass a backslash)."""
    return bool(value) and "\\" not in value


def quote(value: str) -> str:
    """``value`` as a single-quoted VTQL string, embedded quotes doubled."""
    if not quotable(value):
        raise ValueError(f"cannot write {value!r} as a VTQL value")
    return "'" + value.replace("'", "''") + "'"


def parse_filter(text: str) -> Filter:
    """Parse a KPI filter; raise ``ValueError`` saying what to write instead."""
    tokens = _tokenize(text)
    if not tokens:
        return Filter()
    parser = _Parser(tokens)
    conditions = [parser.condition()]
    joiners: set[str] = set()
    while not parser.done():
        kind, value = parser.take()
        if kind != "word" or value.upper() not in {"AND", "OR"}:
            raise ValueError(f"expected AND or OR after a condition, found {value!r}")
        joiners.add(value.upper())
        conditions.append(parser.condition())
    if len(joiners) > 1:
        raise ValueError(
            "a filter may join conditions with AND or with OR, not both: Vtiger adds no parentheses, "
            "so the mix is ambiguous; use IN ('a', 'b') for alternatives of one field"
        )
    return Filter(tuple(conditions), joiners.pop() if joiners else "AND")


def _tokenize(text: str) -> list[tuple[str, str]]:
    return [(m.lastgroup, m.group(m.lastgroup)) for m in _TOKEN.finditer(text) if m.lastgroup]


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens = tokens
        self.at = 0

    def done(self) -> bool:
        return self.at >= len(self.tokens)

    def take(self) -> tuple[str, str]:
        if self.done():
            raise ValueError("the filter ends in the middle of a condition")
        token = self.tokens[self.at]
        self.at += 1
        if token == ("other", "'"):
            raise ValueError("a quoted value is not closed (missing ')")
        if token == ("other", '"'):
            raise ValueError("quote values with single quotes ('High'), not double quotes")
        if token == ("punct", ";"):
            raise ValueError("leave out the ';': Scorebot writes the whole query itself")
        if token[0] == "word" and token[1].upper() in _CLAUSE_WORDS:
            raise ValueError(
                "the filter is only the condition after WHERE: leave out SELECT, FROM, WHERE, ORDER BY and LIMIT"
            )
        if token[0] == "other":
            raise ValueError(f"unexpected {token[1]!r} in the filter")
        return token

    def condition(self) -> Condition:
        kind, field = self.take()
        if field in ("(", ")"):
            raise ValueError(_PARENS)
        if kind == "word" and field.upper() == "NOT":
            raise ValueError("NOT is not supported by VTQL: use != for one value, or IN with the values you want")
        if kind != "word" or field.upper() in {"AND", "OR", "IN", "LIKE", "IS", "NULL"}:
            raise ValueError(f"expected a field name, found {field!r}")
        op = self._operator(field)
        if op == "IN":
            return Condition(field, op, self._value_list(field))
        return Condition(field, op, (self._value(field, op),))

    def _operator(self, field: str) -> str:
        kind, op = self.take()
        upper = op.upper()
        if op == "<>":
            raise ValueError(f"use != instead of <> ({field} != 'value')")
        if op == "==":
            raise ValueError(f"use a single = ({field} = 'value')")
        if upper == "NOT":
            raise ValueError(f"NOT IN is not supported by VTQL: list the values you want with {field} IN ('a', 'b')")
        if upper == "IS":
            raise ValueError(
                "IS NULL / IS NOT NULL are not supported by VTQL; records whose category is empty "
                "are counted as (none) without a filter"
            )
        if kind == "op" or upper in {"IN", "LIKE"}:
            return upper
        raise ValueError(f"expected an operator (= != < > <= >= LIKE IN) after {field}, found {op!r}")

    def _value(self, field: str, op: str) -> str:
        kind, raw = self.take()
        if kind == "number":
            return raw
        if kind == "string":
            value = raw[1:-1].replace("''", "'")
            if not value:
                raise ValueError(
                    f"{field} {op} '' does not work on Vtiger 8.2 (it answers INTERNAL_SERVER_ERROR); "
                    "records whose category is empty are counted as (none) without a filter"
                )
            if "\\" in value:
                raise ValueError("a value cannot contain a backslash: Vtiger passes it to the database unescaped")
            return value
        if raw == "(":
            raise ValueError(_PARENS)
        if kind == "word" and raw.upper() == "NULL":
            raise ValueError("NULL is not a value VTQL can compare with; use a quoted value")
        if kind == "word":
            raise ValueError(f"quote the value: {field} {op} '{raw}'")
        raise ValueError(f"expected a quoted value after {field} {op}, found {raw!r}")

    def _value_list(self, field: str) -> tuple[str, ...]:
        if self.take() != ("punct", "("):
            raise ValueError(f"write IN with a list in parentheses: {field} IN ('a', 'b')")
        values = [self._value(field, "IN")]
        while True:
            _, raw = self.take()
            if raw == ")":
                return tuple(values)
            if raw != ",":
                raise ValueError(f"expected ',' or ')' in the IN list of {field}, found {raw!r}")
            values.append(self._value(field, "IN"))
