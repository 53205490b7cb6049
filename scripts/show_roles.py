"""Print who holds which role, read back through the Cloud Foundry API.

Usage: venv/bin/python scripts/show_roles.py API_URL CLIENT_ID CLIENT_SECRET
(`make demo` runs it against the sandbox after `pulumi up`).
"""

from __future__ import annotations

import sys
from collections import defaultdict

from components.cloudfoundry.client import CloudFoundryClient


def main(api_url: str, client_id: str, client_secret: str) -> int:
    with CloudFoundryClient(api_url, client_id, client_secret) as client:
        orgs = {org.guid: org.name for org in client.list_orgs()}
        spaces = {space.guid: (orgs.get(space.org_guid, "?"), space.name) for space in client.list_spaces()}
        roles, users = client.list_roles(include_users=True)
    table: dict[str, list[str]] = defaultdict(list)
    for role in roles:
        user = users.get(role.user_guid)
        who = f"{user.origin}/{user.username}" if user and user.username else f"(client {role.user_guid})"
        if role.space_guid:
            org, space = spaces.get(role.space_guid, ("?", "?"))
            scope = f"{org}/{space}"
        else:
            scope = orgs.get(role.org_guid or "", "?")
        table[f"{scope:<24} {role.type:<30}"].append(who)
    print(f"{'SCOPE':<24} {'ROLE':<30} HOLDERS")
    for key in sorted(table):
        print(f"{key} {', '.join(sorted(table[key]))}")
    print(f"{len(roles)} role assignments")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(*sys.argv[1:]))
