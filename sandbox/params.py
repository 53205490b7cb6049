"""List-query parsing and validation as CC's ``*ListMessage`` classes do it.

Allowed keys are kept in CC's registration order because the "Unknown query parameter(s)"
message lists them. Validation messages are collected in CC's validator order and joined with
", " by the caller's error factory (422 for roles/users, 400 BadQueryParameter for orgs/spaces).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote

from .errors import CFError

_PAGINATION_KEYS = ("page", "per_page", "order_by")
_LIST_KEYS = (*_PAGINATION_KEYS, "created_ats", "updated_ats", "guids")
_LEADING_INT = re.compile(r"\s*([+-]?\d+)")
_SPLIT = re.compile(r",\s*")
_TIMESTAMP = re.compile(r"\A\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z\Z")
_RELATIONAL_OPS = frozenset({"lt", "lte", "gt", "gte"})
_BAD_TIMESTAMP = "has an invalid timestamp format. Timestamps should be formatted as 'YYYY-MM-DDThh:mm:ssZ'"


@dataclass(frozen=True, slots=True)
class ListSpec:
    """Describes one list endpoint's accepted query parameters."""

    allowed_keys: tuple[str, ...]
    array_keys: frozenset[str]
    order_by_values: tuple[str, ...]
    error: Callable[[list[str]], CFError]
    include_values: tuple[str, ...] = ()
    default_order_by: str | None = None
    extra_validate: Callable[[dict[str, list[str]]], list[str]] | None = None


def list_spec(
    own_keys: tuple[str, ...],
    error: Callable[[list[str]], CFError],
    *,
    metadata: bool,
    order_by_values: tuple[str, ...] = ("created_at", "updated_at"),
    include_values: tuple[str, ...] = (),
    default_order_by: str | None = None,
    extra_validate: Callable[[dict[str, list[str]]], list[str]] | None = None,
) -> ListSpec:
    keys = _LIST_KEYS + own_keys + (("label_selector",) if metadata else ())
    arrays = frozenset(k for k in keys if k.endswith("s") and k not in ("created_ats", "updated_ats"))
    arrays |= {"include"} if "include" in keys else frozenset()
    return ListSpec(keys, arrays, order_by_values, error, include_values, default_order_by, extra_validate)


@dataclass(slots=True)
class ListQuery:
    page: int
    per_page: int
    order_by: str
    descending: bool
    order_configured: bool
    filters: dict[str, list[str]] = field(default_factory=dict)
    include: list[str] = field(default_factory=list)
    # non-pagination params as requested, for pagination links (arrays already joined)
    link_params: dict[str, str] = field(default_factory=dict)
    # (attribute, op, values): op is eq (any of values) or lt/lte/gt/gte
    time_filters: list[tuple[str, str, list[str]]] = field(default_factory=list)

    def time_ok(self, obj: object) -> bool:
        for attr, op, values in self.time_filters:
            ts: str = getattr(obj, attr)
            v = values[0]
            if op == "eq":
                if ts not in values:
                    return False
            elif (
                (op == "lt" and not ts < v)
                or (op == "lte" and not ts <= v)
                or (op == "gt" and not ts > v)
                or (op == "gte" and not ts >= v)
            ):
                return False
        return True


def ruby_to_i(value: str) -> int:
    m = _LEADING_INT.match(value)
    return int(m.group(1)) if m else 0


def to_array(value: str) -> list[str]:
    if value == "":
        return [""]
    return [unquote(v) for v in _SPLIT.split(value)]


def parse_list(query: Mapping[str, str], spec: ListSpec) -> ListQuery:
    params: dict[str, str] = {}
    relational: dict[str, dict[str, str]] = {}  # created_ats[lt]=... (Rails nested params)
    for raw_key, value in query.items():
        if "[" in raw_key:
            key, _, rest = raw_key.partition("[")
            relational.setdefault(key, {})[rest.rstrip("]")] = value
            params[key] = value
        else:
            params[raw_key] = value
    errors: list[str] = []

    page_raw = params.get("page")
    per_page_raw = params.get("per_page")
    if page_raw is not None and ruby_to_i(page_raw) <= 0:
        errors.append("Page must be a positive integer")
    if per_page_raw is not None:
        pp = ruby_to_i(per_page_raw)
        if pp > 0:
            if pp > 5000:
                errors.append("Per page must be between 1 and 5000")
        else:
            errors.append("Per page must be a positive integer")

    order_raw = params.get("order_by")
    if order_raw is None and spec.default_order_by is not None:
        order_raw = spec.default_order_by
    order_by = "created_at"
    descending = False
    if order_raw:
        candidate = order_raw[1:] if order_raw[:1] in "+-" else order_raw
        if candidate in spec.order_by_values:
            order_by = candidate
            descending = order_raw.startswith("-")
        else:
            allowed = ", ".join(f"'{v}'" for v in spec.order_by_values)
            errors.append(f"Order by can only be: {allowed}")

    time_filters: list[tuple[str, str, list[str]]] = []
    for key, label in (("created_ats", "Created ats"), ("updated_ats", "Updated ats")):
        if key not in params or key not in spec.allowed_keys:
            continue
        attr = key[:-1]  # created_at / updated_at
        if key in relational:
            for op, ts in relational[key].items():
                if op not in _RELATIONAL_OPS:
                    errors.append(f"{label} Invalid relational operator: '{op}'")
                if "," in ts:
                    errors.append(f"{label} only accepts one value when using a relational operator")
                    continue
                if not _TIMESTAMP.match(ts):
                    errors.append(f"{label} {_BAD_TIMESTAMP}")
                time_filters.append((attr, op, [ts]))
        else:
            values = to_array(params[key])
            for ts in values:
                if not _TIMESTAMP.match(ts):
                    errors.append(f"{label} {_BAD_TIMESTAMP}")
            time_filters.append((attr, "eq", values))

    extra = [k for k in params if k not in spec.allowed_keys]
    if extra:
        errors.append(
            "Unknown query parameter(s): '"
            + "', '".join(extra)
            + "'. Valid parameters are: '"
            + "', '".join(spec.allowed_keys)
            + "'"
        )

    filters: dict[str, list[str]] = {}
    link_params: dict[str, str] = {}
    for key, value in params.items():
        if key in _PAGINATION_KEYS or key not in spec.allowed_keys:
            continue
        if key in relational:
            for op, v in relational[key].items():
                link_params[f"{key}[{op}]"] = v
            continue
        if key in ("created_ats", "updated_ats"):
            link_params[key] = ",".join(to_array(value))
            continue
        if key in spec.array_keys:
            values = to_array(value)
            filters[key] = values
            link_params[key] = ",".join(v.replace(",", "%2C") for v in values)
        else:
            filters[key] = [value]
            link_params[key] = value

    include: list[str] = []
    if "include" in filters:
        include = filters.pop("include")
        seen: dict[str, int] = {}
        for inc in include:
            if inc in spec.include_values:
                seen[inc] = seen.get(inc, 0) + 1
                if seen[inc] == 2:
                    errors.append(f"Duplicate included resource: '{inc}'")
            else:
                valid = "', '".join(spec.include_values)
                errors.append(f"Invalid included resource: '{inc}'. Valid included resources are: '{valid}'")

    if spec.extra_validate is not None:
        errors.extend(spec.extra_validate(filters))
    if errors:
        raise spec.error(errors)

    return ListQuery(
        page=ruby_to_i(page_raw) if page_raw else 1,
        per_page=ruby_to_i(per_page_raw) if per_page_raw else 50,
        order_by=order_by,
        descending=descending,
        order_configured=bool(order_raw),
        filters=filters,
        include=include,
        link_params=link_params,
        time_filters=time_filters,
    )
