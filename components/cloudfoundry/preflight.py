"""Preflight: does the configured CF client hold the scopes this run needs?

Run before the IdP is read and before any guard, so a client without global
read fails with "lacks the scope ..." instead of a wrong preview ("organization
'payments' does not exist"), and ``pulumi up`` with the read-only client stops
before registering a resource. One token request (plus UAA discovery).
"""

from __future__ import annotations

from components.cloudfoundry.client import CloudFoundryClient
from components.cloudfoundry.scopes import Access, require
from components.settings import CfConnection


def check_scopes(connection: CfConnection, access: Access) -> frozenset[str]:
    """The token's scopes; raises MissingScopeError (naming the scope) when they fall short."""
    with CloudFoundryClient(
        connection.api_url,
        connection.client_id,
        connection.client_secret.get_secret_value(),
        verify_tls=not connection.skip_tls_verify,
    ) as client:
        granted = client.granted_scopes()
    require(connection.client_id, granted, access)
    return granted
