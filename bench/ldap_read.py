"""Benchmark: read a large directory from a real OpenLDAP slapd through the LDAP source.

    venv/bin/python -m bench.ldap_read                     # 10,000 users, 1,000 groups (issue #14)
    venv/bin/python -m bench.ldap_read --users 2000 --size-limit 0

The directory (loaded over LDAP, like the tests do) has nesting depth 3: one ``company`` group
with 5,000 direct members (the largest group) that nests 9 divisions, each nesting 10
departments, each nesting 10 teams; 900 teams hold the people (every person in one team, every
tenth in a second). 1 in 50 people is locked (``pwdAccountLockedTime``). slapd runs with
``sizelimit`` 100 by default, so every search has to page.

The read runs in a fresh child process (``--read``), so its peak RSS is the LDAP source's alone:
the same ``LdapSource.read_groups`` over every group that a stack mapping all 1,000 groups makes.
Prints wall time, searches, pages, people read, memberships and peak RSS (child and slapd).
Not a test: nothing is asserted. Only 127.0.0.1 is used.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.procmon import TreeSampler
from components.identity.config import parse_identity_sources
from components.identity.ldap_source import LdapSource
from sandbox.slapd import data as D
from sandbox.slapd.server import SlapdServer

BIND_PASSWORD = "bench-bind-password"  # a throwaway directory's throwaway value


def directory(users: int, largest: int) -> D.Data:
    """People and 1,000 groups, nesting depth 3 (see module docstring)."""
    people = [
        D.User(f"u{i:05d}", f"User{i:05d}@Corp.com", f"User {i:05d}", locked=i % 50 == 7)
        for i in range(users)
    ]
    teams: list[list[str]] = [[] for _ in range(900)]
    for i, person in enumerate(people):
        teams[i % 900].append(person.uid)
        if i % 10 == 3:
            teams[(i * 7 + 1) % 900].append(person.uid)
    groups = [D.Group(f"team-{t:03d}", tuple(members)) for t, members in enumerate(teams)]
    groups += [
        D.Group(f"dept-{d:02d}", groups=tuple(f"team-{d * 10 + k:03d}" for k in range(10))) for d in range(90)
    ]
    groups += [
        D.Group(f"division-{v}", groups=tuple(f"dept-{v * 10 + k:02d}" for k in range(10))) for v in range(9)
    ]
    groups.append(
        D.Group("company", tuple(p.uid for p in people[:largest]), tuple(f"division-{v}" for v in range(9)))
    )
    return D.Data(people, groups)


def source_config(url: str, ca_file: str, page_size: int) -> dict[str, Any]:
    return {
        "type": "ldap",
        "urls": [url],
        "caBundle": ca_file,
        "bindDn": D.BIND_DN,
        "bindPassword": BIND_PASSWORD,
        "userBase": D.PEOPLE,
        "userFilter": "(objectClass=inetOrgPerson)",
        "groupBase": D.GROUPS,
        "groupFilter": "(objectClass=groupOfNames)",
        "usernameAttribute": "mail",
        "disabledFilter": "(pwdAccountLockedTime=*)",
        "origin": "corp-ldap",
        "pageSize": page_size,
    }


def read_child(url: str, ca_file: str, page_size: int, names: list[str]) -> dict[str, Any]:
    """The measured part, in this (child) process: one ``read_groups`` of every group."""
    built = parse_identity_sources({"ldap": source_config(url, ca_file, page_size)}, Path.cwd())["ldap"]
    assert isinstance(built, LdapSource)
    started = time.perf_counter()
    got = built.read_groups(names)
    seconds = time.perf_counter() - started
    stats = built.last_read
    assert stats is not None
    return {
        "seconds": round(seconds, 3),
        "groups": len(got),
        "memberships": sum(len(v) for v in got.values()),
        "largest_group": max(len(v) for v in got.values()),
        "inactive_in_company": sum(1 for p in got.get("company", ()) if not p.active),
        "people": stats.users,
        "searches": stats.searches,
        "pages": stats.pages,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--largest", type=int, default=5_000, help="direct members of the company group")
    parser.add_argument("--page-size", type=int, default=500, help="the source's pageSize (its default)")
    parser.add_argument("--size-limit", type=int, default=100, help="slapd sizelimit (0 = none)")
    parser.add_argument("--read", nargs=2, metavar=("URL", "CA"), help=argparse.SUPPRESS)
    parser.add_argument("--names", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.read:
        names = json.loads(Path(args.names).read_text())
        print(json.dumps(read_child(args.read[0], args.read[1], args.page_size, names)))
        return 0

    data = directory(args.users, min(args.largest, args.users))
    names = sorted(g.name for g in data.groups)
    with tempfile.TemporaryDirectory(prefix="cf-access-ldap-bench-") as tmp:
        work = Path(tmp)
        with SlapdServer.start(work / "slapd", size_limit=args.size_limit or None) as server:
            started = time.perf_counter()
            conn = server.admin()
            D.load(conn, data, BIND_PASSWORD)
            conn.unbind_s()
            loaded = time.perf_counter() - started
            direct = sum(len(g.members) + len(g.groups) for g in data.groups)
            print(
                f"{len(data.users)} users, {len(data.groups)} groups ({direct} direct member values), "
                f"nesting depth 3, largest group {len(data.groups[-1].members)} direct members; "
                f"slapd sizelimit {args.size_limit or 'none'}, pageSize {args.page_size}; "
                f"loaded over LDAP in {loaded:.1f} s"
            )
            (work / "names.json").write_text(json.dumps(names))
            with TreeSampler(server.process.pid, interval=0.05) as slapd_rss:
                child = subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "bench.ldap_read",
                        "--read",
                        server.url,
                        str(server.tls.ca_file),
                        "--names",
                        str(work / "names.json"),
                        "--page-size",
                        str(args.page_size),
                    ],
                    cwd=Path(__file__).resolve().parents[1],
                    capture_output=True,
                    text=True,
                    check=False,
                )
            if child.returncode != 0:
                print(child.stderr[-3000:], file=sys.stderr)
                return child.returncode
            result = json.loads(child.stdout.strip().splitlines()[-1])
    result["slapd_peak_rss_mb"] = round(slapd_rss.peak["total"] / 2**20, 1)
    print(
        f"read {result['groups']} groups: {result['seconds']:.2f} s, {result['searches']} searches, "
        f"{result['pages']} pages, {result['people']} people, {result['memberships']} memberships "
        f"(largest transitive group {result['largest_group']}, "
        f"{result['inactive_in_company']} inactive in it); "
        f"peak RSS: reader {result['peak_rss_mb']} MB, slapd {result['slapd_peak_rss_mb']} MB"
    )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
