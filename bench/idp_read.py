"""Benchmark: read N users across M groups from each IdP emulator through the real SDKs.

    venv/bin/python bench/idp_read.py                      # 2,000 users, 50 groups, 20 ms latency
    venv/bin/python bench/idp_read.py --users 20000 --groups 200 --memberships 3 --page-size 200

Prints wall time, requests and the peak number of requests in flight per source.
Not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pydantic import SecretStr

from components.identity.base import IdentitySource
from components.identity.entra import EntraClientSecretAuth, EntraSource
from components.identity.okta import OktaApiTokenAuth, OktaSource
from sandbox.idp import DEFAULT_API_TOKEN, GraphEmulator, OktaEmulator, generate_data
from sandbox.idp.common import Counters


def timed_read(label: str, src: IdentitySource, names: list[str], counters: Counters, note: str) -> None:
    """Read every group once and print the wall time, the memberships read and the emulator's counts."""
    started = time.perf_counter()
    got = src.read_groups(names)
    took = time.perf_counter() - started
    read = sum(len(v) for v in got.values())
    c = counters.snapshot()
    print(
        f"{label}: {took:6.2f} s  {read} memberships, {c['requests']} requests "
        f"({note}), peak in flight {c['max_inflight']}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--groups", type=int, default=50)
    parser.add_argument("--memberships", type=int, default=1, help="groups per user")
    parser.add_argument("--latency", type=float, default=0.020, help="seconds added to every request")
    parser.add_argument(
        "--page-size", type=int, default=0, help="0 = each SDK's default (Okta 200, Graph 999)"
    )
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        os.environ.pop(var, None)

    data = generate_data(args.users, args.groups, memberships_per_user=args.memberships, inactive_every=50)
    names = sorted(g.name for g in data.groups.values())
    memberships = sum(len(g.users) for g in data.groups.values())
    print(
        f"{args.users} users, {args.groups} groups, {memberships} memberships, "
        f"{args.latency * 1000:.0f} ms latency, concurrency {args.concurrency}"
    )

    okta_page = args.page_size or 200
    with OktaEmulator.start(data, page_size=okta_page) as okta:
        okta.faults.latency = args.latency
        src = OktaSource(
            org_url=okta.url,
            auth=OktaApiTokenAuth(SecretStr(DEFAULT_API_TOKEN)),
            ca_file=okta.ca_file,
            page_size=okta_page,
            max_concurrency=args.concurrency,
        )
        timed_read("okta  ", src, names, okta.counters, f"page size {okta_page}")

    graph_page = args.page_size or 999
    with GraphEmulator.start(data, page_size=graph_page) as graph:
        graph.register_app("bench-app", secret="bench-secret")
        graph.faults.latency = args.latency
        src2 = EntraSource(
            tenant_id=graph.tenant_id,
            client_id="bench-app",
            auth=EntraClientSecretAuth(SecretStr("bench-secret")),
            authority_host=graph.authority,
            graph_base_url=graph.graph_base_url,
            ca_file=graph.ca_file,
            page_size=graph_page,
            max_concurrency=args.concurrency,
        )
        timed_read("entra ", src2, names, graph.counters, f"page size {graph_page}, incl. 1 token")
    return 0


if __name__ == "__main__":
    sys.exit(main())
