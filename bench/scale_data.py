"""Synthetic foundations for the scale benchmark: an IdP directory, one mapping file per org,
the sandbox seed (orgs + spaces), and a 1 % churn (joiners, leavers, movers).

Shape of one org with ``n`` people and ``k`` spaces (every person belongs to exactly one org team):

    org_roles:  organization_manager  <- <org>-leads   (8 % of the team, at least 1)
    dev1..dev(k-1): space_developer   <- <org>-dev     (70 %)
    prod:       space_developer       <- <org>-oncall  (20 %, a subset of dev)
                space_auditor         <- <org>-team    (everyone)
                space_manager         <- <org>-leads

plus ``organization_user`` for everyone with a space role (the program adds it). Bindings per org
≈ n · (1 + 0.08 + 0.7 (k-1) + 0.2 + 1 + 0.08) = n · (2.36 + 0.7 (k-1)); at L (n = 25, k = 5)
that is 129 per org, ~51.6k for 400 orgs. Orgs alternate authoritative / additive ownership.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ORIGIN = "corp-sso"


@dataclass(frozen=True)
class Size:
    name: str
    people: int
    orgs: int
    spaces: int  # per org; the last one is "prod"


SIZES = {
    "S": Size("S", 200, 10, 3),
    "M": Size("M", 2_000, 40, 5),
    "L": Size("L", 10_000, 400, 5),
}


def org_name(i: int) -> str:
    return f"org-{i:04d}"


def space_names(size: Size) -> list[str]:
    return [f"dev{j}" for j in range(1, size.spaces)] + ["prod"]


def person(i: int) -> str:
    return f"u{i:06d}@corp.com"


@dataclass
class Foundation:
    size: Size
    users: list[dict[str, Any]] = field(default_factory=list)
    # org index -> team member usernames (in order; leads first)
    teams: dict[int, list[str]] = field(default_factory=dict)
    next_person: int = 0

    # -- generation ------------------------------------------------------------------------------
    @classmethod
    def generate(cls, size: Size) -> Foundation:
        f = cls(size)
        per_org, extra = divmod(size.people, size.orgs)
        for o in range(size.orgs):
            team = [f.new_person() for _ in range(per_org + (1 if o < extra else 0))]
            f.teams[o] = team
        return f

    def new_person(self) -> str:
        name = person(self.next_person)
        # username + status only, in flow style: small files (10,000 people with email/id came to
        # 1.3 MB, over the directory source's former 1 MB cap).
        self.users.append({"username": name, "status": "ACTIVE"})
        self.next_person += 1
        return name

    # -- views -----------------------------------------------------------------------------------
    def groups(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for o, team in self.teams.items():
            n = len(team)
            leads = max(1, round(n * 0.08))
            dev = team[: max(1, round(n * 0.7))]
            oncall = dev[: max(1, round(n * 0.2))]
            name = org_name(o)
            out[f"{name}-leads"] = team[:leads]
            out[f"{name}-dev"] = dev
            out[f"{name}-oncall"] = oncall
            out[f"{name}-team"] = list(team)
        return out

    def directory(self) -> dict[str, Any]:
        return {"users": [dict(u) for u in self.users], "groups": self.groups()}

    def mapping(self, o: int) -> dict[str, Any]:
        name = org_name(o)
        spaces: dict[str, Any] = {}
        for s in space_names(self.size):
            if s == "prod":
                spaces[s] = {
                    "space_developer": {"groups": [f"{name}-oncall"]},
                    "space_auditor": {"groups": [f"{name}-team"]},
                    "space_manager": {"groups": [f"{name}-leads"]},
                }
            else:
                spaces[s] = {"space_developer": {"groups": [f"{name}-dev"]}}
        return {
            "org": name,
            "ownership": "authoritative" if o % 2 == 0 else "additive",
            "org_roles": {"organization_manager": {"groups": [f"{name}-leads"]}},
            "spaces": spaces,
        }

    def seed(self) -> dict[str, Any]:
        spaces = space_names(self.size)
        return {"orgs": [{"name": org_name(o), "spaces": spaces} for o in range(self.size.orgs)]}

    # -- files -----------------------------------------------------------------------------------
    def write(self, directory_file: Path, mappings_dir: Path) -> None:
        mappings_dir.mkdir(parents=True, exist_ok=True)
        directory_file.write_text(
            yaml.safe_dump(self.directory(), sort_keys=False, default_flow_style=None, width=10**6),
            encoding="utf-8",
        )
        for o in range(self.size.orgs):
            path = mappings_dir / f"{org_name(o)}.yaml"
            path.write_text(yaml.safe_dump(self.mapping(o), sort_keys=False), encoding="utf-8")

    # -- churn -----------------------------------------------------------------------------------
    def churn(self, share: float = 0.01, seed: int = 7) -> dict[str, list[str]]:
        """Change ``share`` of the people: a third join, a third leave (status SUSPENDED, kept in
        their groups as IdPs do), a third move to another org's team. Returns who did what."""
        rng = random.Random(seed)
        total = max(3, round(self.size.people * share))
        joiners_n, leavers_n = total // 3, total // 3
        movers_n = total - joiners_n - leavers_n
        active = [u["username"] for u in self.users if u["status"] == "ACTIVE"]
        picked = rng.sample(active, leavers_n + movers_n)
        leavers, movers = picked[:leavers_n], picked[leavers_n:]
        by_name = {u["username"]: u for u in self.users}
        for name in leavers:
            by_name[name]["status"] = "SUSPENDED"
        home = {name: o for o, team in self.teams.items() for name in team}
        for name in movers:
            src = home[name]
            dst = rng.choice([o for o in self.teams if o != src])
            self.teams[src].remove(name)
            self.teams[dst].append(name)
        joiners = []
        for _ in range(joiners_n):
            name = self.new_person()
            self.teams[rng.randrange(self.size.orgs)].append(name)
            joiners.append(name)
        return {"joiners": joiners, "leavers": leavers, "movers": movers}
