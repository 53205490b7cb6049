"""``cf-access export``: starting mappings from the roles a live foundation holds now.

One file per org, ``ownership: additive``, every holder as a named user - so a
team adopts cf-access without a big-bang change, then replaces named users with
groups one reviewed pull request at a time.

Precisely what "no changes" means after an export (docs/operations.md):

* the first ``pulumi preview`` on the stack (empty state) shows only **creates**:
  one ``cf:UserSet`` per UAA origin and one ``cf:OrgAccess`` per org; every
  member listed already holds that role in CF;
* the first ``pulumi up`` makes **zero writes to CF**: users are adopted (found
  in the bulk user list), roles are adopted (desired minus held is empty);
* after it, ``pulumi preview --expect-no-changes`` (and with ``--refresh``) passes.

Written per org: ``organization_user`` only for people holding no space role in
that org (the others get it implied by their space roles). Left out: UAA clients
(no username), protected users (never touched anyway), orgs with no roles.
Named users keep their origin: ``{user: x, origin: y}`` when it is not the
default source's origin.

File names: ``<org>.yaml`` with unsafe characters as ``_``; orgs whose names
would share a file (``a/b`` and ``a_b``, or names differing only in case) get
``<org>-<hash>.yaml`` instead of overwriting each other (``file_names``).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from components.cli.inventory import Inventory
from components.model import ORG_ROLE_TYPES, ORG_USER, SPACE_ROLE_TYPES, UserRef
from components.plan import PlanSettings

HEADER = """\
# yaml-language-server: $schema=./schema.json
# Exported by `cf-access export` from {api} - the roles CF held at export time.
# additive: cf-access manages only what is listed here; people who got roles by hand keep them.
# Next steps: replace named users by IdP groups, one reviewed change at a time.
"""


class ExportNameError(ValueError):
    """Two exported orgs would be written to the same file."""


@dataclass(frozen=True)
class ExportedOrg:
    name: str
    text: str
    assignments: int


def _user_entry(key: str, default_origin: str) -> str | dict[str, str]:
    ref = UserRef.parse(key)
    if ref.origin == default_origin:
        return ref.username
    return {"user": ref.username, "origin": ref.origin}


def build_exports(
    inventory: Inventory,
    settings: PlanSettings,
    default_origin: str,
    orgs: Collection[str] | None = None,
) -> list[ExportedOrg]:
    per_org: dict[str, dict[tuple[str | None, str], set[str]]] = defaultdict(lambda: defaultdict(set))
    for key, role in inventory.keyed_roles():
        if orgs is not None and role.org not in orgs:
            continue
        if settings.is_protected(UserRef.parse(key)):
            continue
        per_org[role.org][(role.space, role.role)].add(key)
    out: list[ExportedOrg] = []
    for org in sorted(per_org):
        roles = per_org[org]
        with_space_role = {k for (space, _), keys in roles.items() if space is not None for k in keys}
        doc: dict[str, object] = {"org": org, "ownership": "additive"}
        org_roles: dict[str, object] = {}
        count = 0
        for role_type in ORG_ROLE_TYPES:
            keys = roles.get((None, role_type), set())
            if role_type == ORG_USER:
                keys = keys - with_space_role
            if keys:
                org_roles[role_type] = {"users": [_user_entry(k, default_origin) for k in sorted(keys)]}
                count += len(keys)
        if org_roles:
            doc["org_roles"] = org_roles
        spaces: dict[str, object] = {}
        for space in sorted({s for s, _ in roles if s is not None}):
            space_roles: dict[str, object] = {}
            for space_role in SPACE_ROLE_TYPES:
                keys = roles.get((space, space_role), set())
                if keys:
                    space_roles[space_role] = {
                        "users": [_user_entry(k, default_origin) for k in sorted(keys)]
                    }
                    count += len(keys)
            spaces[space] = space_roles
        if spaces:
            doc["spaces"] = spaces
        body = yaml.safe_dump(doc, sort_keys=False, default_flow_style=False, allow_unicode=True, width=200)
        out.append(ExportedOrg(org, HEADER.format(api=inventory.api_url or "Cloud Foundry") + body, count))
    return out


def file_name(org: str) -> str:
    """The plain file name for ``org``: characters other than letters, digits, ``-_.`` become ``_``."""
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in org)
    return f"{safe}.yaml"


def _hashed_name(org: str) -> str:
    digest = hashlib.sha256(org.encode("utf-8")).hexdigest()[:8]
    return f"{file_name(org).removesuffix('.yaml')}-{digest}.yaml"


def file_names(orgs: Sequence[str]) -> list[str]:
    """One distinct file name per org, in the order given.

    Different org names can map to one file name (``a/b`` and ``a_b``; ``Payments``
    and ``payments`` on a case-insensitive file system), and writing both would
    silently keep only the last. The plain name goes to the org whose name it spells
    exactly (else the first in sorted order); every other org sharing it gets a suffix
    from a hash of its own name, so the names do not depend on which orgs are exported.
    """
    claims: dict[str, list[str]] = defaultdict(list)
    for org in orgs:
        claims[file_name(org).casefold()].append(org)
    names: dict[str, str] = {}
    for orgs_sharing in claims.values():
        exact = [o for o in sorted(orgs_sharing) if file_name(o) == f"{o}.yaml"]
        keeper = (exact or sorted(orgs_sharing))[0]
        for org in orgs_sharing:
            names[org] = file_name(org) if org == keeper else _hashed_name(org)
    result = [names[org] for org in orgs]
    folded = [n.casefold() for n in result]
    if len(set(folded)) != len(folded):  # a hashed name met a real org's plain name
        twice = sorted({n for n in result if folded.count(n.casefold()) > 1})
        raise ExportNameError(
            f"cannot give every org its own file: {', '.join(twice)} would be written twice; "
            "export those orgs one at a time (--org) into different --out folders"
        )
    return result


def write_exports(exports: list[ExportedOrg], out_dir: Path, *, force: bool = False) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / name for name in file_names([e.name for e in exports])]
    clashes = [p for p in paths if p.exists()]
    if clashes and not force:
        raise FileExistsError(
            f"refusing to overwrite {', '.join(str(p) for p in clashes)} "
            "(use --force, or another --out folder)"
        )
    for export, path in zip(exports, paths, strict=True):
        path.write_text(export.text, encoding="utf-8")
    return paths
