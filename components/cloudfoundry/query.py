"""Query-string helpers: comma-joined CC filters split so URLs stay short."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from urllib.parse import quote

# Budget for the *encoded* filter values of one request. With the path,
# per_page/include/order_by and the host this keeps URLs under ~6 KB.
DEFAULT_FILTER_BUDGET = 5000


def _encoded_len(value: str) -> int:
    # value plus an encoded comma separator ("%2C")
    return len(quote(value, safe="")) + 3


def _pack(values: Sequence[str], budget: int) -> list[list[str]]:
    chunks: list[list[str]] = []
    current: list[str] = []
    used = 0
    for value in values:
        size = _encoded_len(value)
        if current and used + size > budget:
            chunks.append(current)
            current, used = [], 0
        current.append(value)
        used += size
    if current:
        chunks.append(current)
    return chunks


def chunk_filters(
    filters: Mapping[str, Sequence[str]], budget: int = DEFAULT_FILTER_BUDGET
) -> list[dict[str, str]]:
    """Split list filters into query dicts whose encoded values fit ``budget``.

    Values are de-duplicated (order kept). Short filters stay whole; long ones
    share the remaining budget and are chunked; the result is the cross
    product, so every combination of values is covered exactly once.
    An empty ``filters`` mapping gives one empty query.
    """
    cleaned = {key: list(dict.fromkeys(values)) for key, values in filters.items()}
    sizes = {key: sum(_encoded_len(v) for v in values) for key, values in cleaned.items()}
    if sum(sizes.values()) <= budget:
        return [{key: ",".join(values) for key, values in cleaned.items()}]

    keys = sorted(cleaned, key=lambda k: sizes[k])
    remaining = budget
    per_key: dict[str, int] = {}
    for index, key in enumerate(keys):
        share = remaining // (len(keys) - index)
        alloc = max(1, min(sizes[key], share))
        per_key[key] = alloc
        remaining = max(0, remaining - alloc)

    chunked = [[(key, ",".join(chunk)) for chunk in _pack(cleaned[key], per_key[key])] for key in keys]
    return [dict(combo) for combo in itertools.product(*chunked)]
