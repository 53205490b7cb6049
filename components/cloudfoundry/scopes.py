"""Which UAA scopes cf-access needs, and the check that names the missing one.

Why check at all: Cloud Controller does not refuse list calls from a client
without global read - it *filters* them to the orgs the client holds roles in
(``Permissions#readable_org_ids_query``; docs/permissions.md has the sources).
A preview with such a client would see no orgs and plan to "create" every one,
and a refresh would report every role as gone. So the token's scopes are
checked before anything is read, and the message says which scope is missing.

* **read** (preview, refresh, drift check, doctor/why/export): one of
  ``cloud_controller.admin_read_only``, ``cloud_controller.global_auditor`` or
  ``cloud_controller.admin``. cf-access's read calls are CC V3 lists only
  (orgs, spaces, users, roles with ``include=user``); CC fills in usernames
  with its own UAA client, so reads need no ``scim.*`` scope.
* **write** (``pulumi up``/``destroy``): ``cloud_controller.admin`` (creating CC
  users needs global write), ``scim.read`` (find a UAA user before creating or
  deleting it) and ``scim.write`` (create/delete UAA shadow users).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Literal

from components.cloudfoundry.errors import CfApiError

Access = Literal["read", "write"]

CC_ADMIN = "cloud_controller.admin"
CC_ADMIN_READ_ONLY = "cloud_controller.admin_read_only"
CC_GLOBAL_AUDITOR = "cloud_controller.global_auditor"
GLOBAL_READ_SCOPES = (CC_ADMIN_READ_ONLY, CC_GLOBAL_AUDITOR, CC_ADMIN)
SCIM_READ = "scim.read"
WRITE_SCOPES = (CC_ADMIN, SCIM_READ, "scim.write")


class MissingScopeError(CfApiError):
    """The CF client's token lacks a scope cf-access needs; the message names it."""


def missing_scopes(granted: Collection[str], access: Access) -> list[str]:
    """The scopes (or the one-of group, as ``a|b|c``) the token lacks for ``access``."""
    if access == "write":  # cloud_controller.admin is global read too
        return [s for s in WRITE_SCOPES if s not in granted]
    if any(s in granted for s in GLOBAL_READ_SCOPES):
        return []
    return ["|".join(GLOBAL_READ_SCOPES)]


def describe_missing(client_id: str, granted: Collection[str], access: Access) -> str | None:
    """An actionable message when the token lacks scopes for ``access``, else None."""
    missing = missing_scopes(granted, access)
    if not missing:
        return None
    have = " ".join(sorted(granted)) or "(none)"
    lacks = ", ".join(m.replace("|", " or ") for m in missing)
    if access == "read":
        why = (
            "to read every org, space, user and role - without global read Cloud Controller "
            "shows only the client's own orgs, and the preview would be wrong"
        )
        fix = (
            f"grant it: uaac client update {client_id} --authorities "
            f'"{CC_ADMIN_READ_ONLY} scim.read" (or {CC_GLOBAL_AUDITOR})'
        )
    else:
        why = "to change roles and users (pulumi up); nothing was changed"
        fix = (
            "run `pulumi up` with the write client (CF_CLIENT_ID/CF_CLIENT_SECRET, "
            f'docs/permissions.md), whose authorities are "{" ".join(WRITE_SCOPES)}"'
        )
    return f"CF client '{client_id}' lacks the scope {lacks} {why}; its token has: {have}. {fix}"


def require(client_id: str, granted: Collection[str], access: Access) -> None:
    """Raise MissingScopeError when the token lacks scopes for ``access``."""
    message = describe_missing(client_id, granted, access)
    if message is not None:
        raise MissingScopeError(message)
