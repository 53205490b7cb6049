"""Sandbox throughput: role listing at per_page=5000 and role creation, sync httpx client.

Runs the sandbox standalone (``python -m sandbox``) in a child process so client and server
use separate cores, seeds 20k roles through the ops API, and prints pages/s, roles/s, creates/s.

    venv/bin/python bench/sandbox_throughput.py [--roles 20000] [--creates 2000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _seed(roles: int) -> dict[str, Any]:
    orgs = [{"name": f"org{o}", "spaces": [f"s{i}" for i in range(5)]} for o in range(20)]
    out: list[dict[str, str]] = []
    users = roles // 5
    for u in range(users):
        org = f"org{u % 20}"
        who = {"username": f"user{u}@corp.com", "origin": "okta"}
        out.append({**who, "type": "organization_user", "org": org})
        for i in range(4):
            out.append({**who, "type": "space_developer", "org": org, "space": f"s{i}"})
    return {"orgs": orgs, "roles": out[:roles]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--roles", type=int, default=20000)
    parser.add_argument("--creates", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "--port", str(port)],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with httpx.Client(base_url=url, timeout=120) as http:
            for _ in range(400):
                try:
                    http.get("/_sandbox/health")
                    break
                except httpx.TransportError:
                    time.sleep(0.05)
            t0 = time.perf_counter()
            seeded = http.post("/_sandbox/seed", json=_seed(args.roles)).json()
            print(f"seeded {seeded['roles_created']} roles in {time.perf_counter() - t0:.2f}s")

            token = http.post(
                "/uaa/oauth/token",
                data={"grant_type": "client_credentials"},
                auth=("cf-access", "sandbox-secret"),
            ).json()["access_token"]
            http.headers["Authorization"] = f"bearer {token}"

            # ---- list all roles at per_page=5000, following next links
            pages = roles_read = 0
            t0 = time.perf_counter()
            for _ in range(args.rounds):
                next_url: str | None = "/v3/roles?per_page=5000"
                while next_url:
                    body = http.get(next_url).json()
                    pages += 1
                    roles_read += len(body["resources"])
                    nxt = body["pagination"]["next"]
                    next_url = nxt["href"] if nxt else None
            dt = time.perf_counter() - t0
            print(
                f"list  per_page=5000: {pages} pages, {roles_read} roles in {dt:.2f}s -> "
                f"{pages / dt:.1f} pages/s, {roles_read / dt:,.0f} roles/s"
            )

            # ---- filtered list (one space) — the sync client's per-scope read
            space_guid = seeded["orgs"]["org0"]["spaces"]["s0"]
            t0 = time.perf_counter()
            n = 200
            for _ in range(n):
                found = http.get("/v3/roles", params={"space_guids": space_guid, "per_page": 5000}).json()
            dt = time.perf_counter() - t0
            per_page = found["pagination"]["total_results"]
            print(f"list  space_guids=<one space> ({per_page} roles/page): {n / dt:.0f} requests/s")

            # ---- role create (org roles for new user guids; CC user auto-created)
            org_guid = seeded["orgs"]["org1"]["guid"]
            t0 = time.perf_counter()
            for i in range(args.creates):
                resp = http.post(
                    "/v3/roles",
                    json={
                        "type": "organization_auditor",
                        "relationships": {
                            "user": {"data": {"guid": f"bench-user-{i}"}},
                            "organization": {"data": {"guid": org_guid}},
                        },
                    },
                )
                assert resp.status_code == 201, resp.text
            dt = time.perf_counter() - t0
            print(f"create: {args.creates} roles in {dt:.2f}s -> {args.creates / dt:.0f} creates/s")
            counters = http.get("/_sandbox/counters").json()
            print(f"server counted {counters['total']} requests ({counters['writes']} writes)")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    main()
