"""How the sources turn rate-limit headers into waits (Okta X-Rate-Limit-Reset, Graph Retry-After)."""

from __future__ import annotations

import email.utils
import time
from types import SimpleNamespace

from components.identity.entra import _retry_after
from components.identity.okta import _rate_limit_wait


def test_okta_wait_is_reset_minus_date_plus_one() -> None:
    date = email.utils.formatdate(1_700_000_000, usegmt=True)
    resp = SimpleNamespace(headers={"X-Rate-Limit-Reset": "1700000010", "Date": date})
    assert _rate_limit_wait(resp) == 11.0


def test_okta_wait_without_headers_or_in_the_past() -> None:
    assert _rate_limit_wait(SimpleNamespace(headers={})) is None
    assert _rate_limit_wait(None) is None
    date = email.utils.formatdate(1_700_000_000, usegmt=True)
    assert (
        _rate_limit_wait(SimpleNamespace(headers={"X-Rate-Limit-Reset": "1699999990", "Date": date})) == 1.0
    )
    assert _rate_limit_wait(SimpleNamespace(headers={"X-Rate-Limit-Reset": "soon"})) is None


def test_graph_retry_after_seconds_and_http_date() -> None:
    assert _retry_after({"Retry-After": "7"}) == 7.0
    assert _retry_after({"retry-after": "0"}) == 0.0
    later = email.utils.formatdate(time.time() + 30, usegmt=True)
    wait = _retry_after({"Retry-After": later})
    assert wait is not None and 25 <= wait <= 31
    assert _retry_after({}) is None and _retry_after(None) is None
    assert _retry_after({"Retry-After": "whenever"}) is None
