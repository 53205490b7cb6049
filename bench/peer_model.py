"""cf-mgmt's side of the comparison, as a model (the binary could not be built here).

cf-mgmt is not served by the Go module proxy this machine reaches (``go list -m -versions
github.com/vmwarepivotallabs/cf-mgmt`` and the older ``pivotalservices``/``vmware-tanzu-labs``
paths answer 403 "This module version is not available"), and building it from its repository
sources is out of bounds. So its row is its documented call shape
(/work/shared/reference/anchors.md §4, read from its code) priced with round trips measured
sequentially against the same sandbox, with the same injected latency, in the same run:

* per sync: list orgs, list spaces, one role list per role type (8 types, 5,000/page) and the
  UAA user list (500/page), all cached;
* one UAA ``POST /Users`` per new (SAML/LDAP) user, one ``POST /v3/roles`` per added role
  (``organization_user`` included: it adds it before space roles);
* one ``DELETE /v3/roles/<guid>`` + job polling per removed role; cf-mgmt polls every 1 s, so
  ``high`` adds one second per removal, ``low`` assumes the first poll already sees COMPLETE;
* everything sequential (one request in flight), as cf-mgmt runs.

Its Go CPU time is ignored: at 10 ms injected latency the round trips dominate.
"""

from __future__ import annotations

import math
import statistics
import time
from typing import Any

import httpx

CC_PAGE = 5000
UAA_PAGE = 500
ROLE_TYPES = 8
POLL_INTERVAL_S = 1.0


def measure_round_trip(url: str, token: str, n: int = 60) -> dict[str, float]:
    """Median seconds of one sequential GET and one sequential (rejected) POST on one connection."""
    headers = {"Authorization": f"bearer {token}"}
    out: dict[str, float] = {}
    with httpx.Client(base_url=url, headers=headers, timeout=30) as http:
        samples = []
        for _ in range(n):
            t = time.perf_counter()
            http.get("/v3/organizations", params={"per_page": "1"}).raise_for_status()
            samples.append(time.perf_counter() - t)
        out["get_s"] = statistics.median(samples)
        samples = []
        for _ in range(n):
            t = time.perf_counter()
            # 422: an unknown user guid - exercises the POST path without changing anything.
            http.post(
                "/v3/roles",
                json={
                    "type": "organization_auditor",
                    "relationships": {
                        "user": {"data": {"guid": "00000000-0000-0000-0000-000000000000"}},
                        "organization": {"data": {"guid": "00000000-0000-0000-0000-000000000000"}},
                    },
                },
            )
            samples.append(time.perf_counter() - t)
        out["post_s"] = statistics.median(samples)
    return out


def cf_mgmt_estimate(
    counts: dict[str, int], roles_by_type: dict[str, int], minimum: dict[str, int], rtt: dict[str, float]
) -> dict[str, Any]:
    # orgs + spaces, then one list per role type (8 types, at least one page each), then UAA users
    reads = 2 + max(ROLE_TYPES, sum(max(1, math.ceil(n / CC_PAGE)) for n in roles_by_type.values()))
    reads += max(1, math.ceil(counts.get("uaa_users", 0) / UAA_PAGE))
    creates = minimum["users_created"]  # UAA POST /Users per new user
    adds = minimum["bindings_added"]
    removes = minimum["bindings_removed"]
    calls = reads + creates + adds + 2 * removes  # DELETE + at least one job poll
    low = reads * rtt["get_s"] + (creates + adds + removes) * rtt["post_s"] + removes * rtt["get_s"]
    return {
        "calls": calls,
        "reads": reads,
        "writes": creates + adds + removes,
        "low_s": round(low, 1),
        "high_s": round(low + removes * POLL_INTERVAL_S, 1),
    }
