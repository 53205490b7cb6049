"""Preflight: does the configured CF client hold the scopes this run needs?

Run before the IdP is read and before any guard, so a client without global
read fails with "lacks the scope ..." instead of a wrong preview ("organization
'payments' does not exist"), and ``pulumi up`` with the read-only client stops
before registering a resource. One token request (plus UAA discovery).
"""

from __future__ import annotations

from components.cloudfoundry.client import CloudFoundryClient, client_for
from components.cloudfoundry.scopes import Access, require
from components.settings import CfConnection


def check_scopes(
    connection: CfConnection,
    access: Access,
    *,
    client: CloudFoundryClient | None = None,
    granted: frozenset[str] | None = None,
) -> frozenset[str]:
    """The token's scopes; raises MissingScopeError (naming the scope) when they fall short.

    ``granted``: scopes already known for this client (the refresh read's token,
    shared_read.py); ``client``: an open client whose token to use (the program's one
    client, which then reads CF with the same token)."""
    if granted is None:
        if client is not None:
            granted = client.granted_scopes()
        else:
            with client_for(connection) as own:
                granted = own.granted_scopes()
    require(connection.client_id, granted, access)
    return granted
