"""SCIM 1.1 filter expressions as UAA accepts them (``SimpleSearchQueryConverter``).

Supports ``eq co sw pr gt ge lt le``, ``and``/``or`` (``and`` binds tighter) and parentheses.
Attribute names are case-insensitive; quoted string comparisons are case-insensitive; unquoted
values must be numbers or true/false.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .store import UAAUser

_TOKEN = re.compile(r'\s*(?:(\()|(\))|("(?:[^"\\]|\\.)*")|([^\s()"]+))')
_OPS = frozenset({"eq", "co", "sw", "pr", "gt", "ge", "lt", "le"})

Value = str | float | bool


class FilterError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Cmp:
    attr: str  # lower-cased
    op: str
    value: Value | None


@dataclass(frozen=True, slots=True)
class BoolOp:
    op: str  # "and" | "or"
    left: Node
    right: Node


Node = Cmp | BoolOp


def _attr_values(user: UAAUser, attr: str) -> list[Any]:
    getter = _ATTRS.get(attr)
    if getter is None:
        raise FilterError(f"unknown attribute {attr}")
    v = getter(user)
    if isinstance(v, list):
        return [x for x in v if x is not None]
    return [] if v is None else [v]


_ATTRS: dict[str, Callable[[UAAUser], Any]] = {
    "id": lambda u: u.id,
    "username": lambda u: u.username,
    "origin": lambda u: u.origin,
    "externalid": lambda u: u.external_id,
    "active": lambda u: u.active,
    "verified": lambda u: u.verified,
    "emails": lambda u: [e.get("value") for e in u.emails],
    "emails.value": lambda u: [e.get("value") for e in u.emails],
    "name.givenname": lambda u: u.name.get("givenName"),
    "name.familyname": lambda u: u.name.get("familyName"),
    "meta.created": lambda u: u.created,
    "created": lambda u: u.created,
    "meta.lastmodified": lambda u: u.last_modified,
    "lastmodified": lambda u: u.last_modified,
    "meta.version": lambda u: float(u.version),
    "version": lambda u: float(u.version),
    "zoneid": lambda u: "uaa",
    "phonenumbers.value": lambda u: [p.get("value") for p in (u.phone_numbers or [])],
}


def parse(text: str) -> Node:
    tokens: list[tuple[str, str]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise FilterError(text)
        pos = m.end()
        if m.group(1):
            tokens.append(("(", "("))
        elif m.group(2):
            tokens.append((")", ")"))
        elif m.group(3):
            raw = m.group(3)[1:-1]
            tokens.append(("str", re.sub(r"\\(.)", r"\1", raw)))
        elif m.group(4):
            tokens.append(("word", m.group(4)))
    parser = _Parser(tokens)
    node = parser.parse_or()
    if parser.i != len(tokens):
        raise FilterError(text)
    return node


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens = tokens
        self.i = 0

    def _peek(self) -> tuple[str, str] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def _next(self) -> tuple[str, str]:
        tok = self._peek()
        if tok is None:
            raise FilterError("unexpected end")
        self.i += 1
        return tok

    def _is_word(self, word: str) -> bool:
        tok = self._peek()
        return tok is not None and tok[0] == "word" and tok[1].lower() == word

    def parse_or(self) -> Node:
        node = self.parse_and()
        while self._is_word("or"):
            self.i += 1
            node = BoolOp("or", node, self.parse_and())
        return node

    def parse_and(self) -> Node:
        node = self.parse_atom()
        while self._is_word("and"):
            self.i += 1
            node = BoolOp("and", node, self.parse_atom())
        return node

    def parse_atom(self) -> Node:
        kind, val = self._next()
        if kind == "(":
            node = self.parse_or()
            if self._next()[0] != ")":
                raise FilterError("missing )")
            return node
        if kind != "word":
            raise FilterError("expected attribute")
        attr = val.lower()
        if attr not in _ATTRS:
            raise FilterError(f"unknown attribute {val}")
        okind, op = self._next()
        op = op.lower()
        if okind != "word" or op not in _OPS:
            raise FilterError(f"bad operator {op}")
        if op == "pr":
            return Cmp(attr, op, None)
        vkind, raw = self._next()
        value: Value
        if vkind == "str":
            value = raw
        elif vkind == "word":
            low = raw.lower()
            if low in ("true", "false"):
                value = low == "true"
            else:
                try:
                    value = float(raw)
                except ValueError as exc:
                    raise FilterError(f"bad value {raw}") from exc
        else:
            raise FilterError("expected value")
        return Cmp(attr, op, value)


def _cmp_one(actual: Any, op: str, value: Value | None) -> bool:
    if isinstance(value, str):
        a = str(actual).lower()
        v = value.lower()
        if op == "eq":
            return a == v
        if op == "co":
            return v in a
        if op == "sw":
            return a.startswith(v)
        if op == "gt":
            return a > v
        if op == "ge":
            return a >= v
        if op == "lt":
            return a < v
        if op == "le":
            return a <= v
        return False
    if isinstance(value, bool):
        return op == "eq" and actual == value
    if isinstance(value, float) and isinstance(actual, (int, float)) and not isinstance(actual, bool):
        return {
            "eq": actual == value,
            "gt": actual > value,
            "ge": actual >= value,
            "lt": actual < value,
            "le": actual <= value,
        }.get(op, False)
    return False


def matches(node: Node, user: UAAUser) -> bool:
    if isinstance(node, BoolOp):
        if node.op == "and":
            return matches(node.left, user) and matches(node.right, user)
        return matches(node.left, user) or matches(node.right, user)
    values = _attr_values(user, node.attr)
    if node.op == "pr":
        return any(v != "" for v in values)
    return any(_cmp_one(v, node.op, node.value) for v in values)


def index_hint(node: Node) -> tuple[str, str | None] | None:
    """(username, origin|None) when the filter is ``username eq X [and origin eq Y]``."""
    if isinstance(node, Cmp):
        if node.attr == "username" and node.op == "eq" and isinstance(node.value, str):
            return node.value, None
        return None
    if node.op != "and":
        return None
    for a, b in ((node.left, node.right), (node.right, node.left)):
        if (
            isinstance(a, Cmp)
            and a.attr == "username"
            and a.op == "eq"
            and isinstance(a.value, str)
            and isinstance(b, Cmp)
            and b.attr == "origin"
            and b.op == "eq"
            and isinstance(b.value, str)
        ):
            return a.value, b.value
    return None


def id_eq_values(node: Node) -> list[str] | None:
    """The ids when the filter is ``id eq A or id eq B ...`` (CC's batched lookup)."""
    if isinstance(node, Cmp):
        if node.attr == "id" and node.op == "eq" and isinstance(node.value, str):
            return [node.value]
        return None
    if node.op != "or":
        return None
    left, right = id_eq_values(node.left), id_eq_values(node.right)
    if left is None or right is None:
        return None
    return left + right
