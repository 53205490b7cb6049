"""CC V3 pagination object with Rails ``to_query`` link hrefs (alphabetical keys)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar
from urllib.parse import quote_plus

from .params import ListQuery

T = TypeVar("T")


def to_query(params: dict[str, str | int]) -> str:
    # Rails Hash#to_query sorts the encoded "k=v" pairs
    return "&".join(
        sorted(f"{quote_plus(str(k), safe='')}={quote_plus(str(v), safe='')}" for k, v in params.items())
    )


def paginate(
    items: Sequence[T], q: ListQuery, base_url: str, path: str
) -> tuple[dict[str, Any], Sequence[T]]:
    total = len(items)
    per_page = q.per_page
    last_page = max(1, -(-total // per_page))
    start = (q.page - 1) * per_page
    page_items = items[start : start + per_page]

    params: dict[str, str | int] = {"per_page": per_page}
    if q.order_configured:
        params["order_by"] = ("-" if q.descending else "+") + q.order_by
    params.update(q.link_params)

    def href(page: int) -> dict[str, str]:
        params["page"] = page
        return {"href": f"{base_url}{path}?{to_query(params)}"}

    pagination = {
        "total_results": total,
        "total_pages": last_page,
        "first": href(1),
        "last": href(last_page),
        "next": href(q.page + 1) if q.page + 1 <= last_page else None,
        "previous": href(q.page - 1) if q.page - 1 > 0 else None,
    }
    return pagination, page_items
