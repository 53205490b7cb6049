"""LDAP / Active Directory as an identity source, on python-ldap (OpenLDAP's libldap).

One read = one connection (``ldap_client``): connect to the first URL that answers, StartTLS
(``ldap://``) or TLS from the start (``ldaps://``), simple bind, then read the people and every
mapped group (``ldap_members``), all with paged searches. The whole read is blocking libldap, so
``read_groups`` runs it on a worker thread (``run_sync`` + ``asyncio.to_thread``), like the SDK
sources run theirs off the Pulumi program's event loop.

Groups are read one after another on the one connection: a bound libldap connection serialises
its operations anyway, and the expensive part (the people search) is shared by all groups.

Fail closed: any failure of the read raises ``IdentityReadError`` naming the source, the server
and the group; the bind password never appears in a message or a ``repr``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Collection
from dataclasses import dataclass

from components.identity.base import IdentityReadError, Person
from components.identity.concurrency import run_sync
from components.identity.ldap_client import LdapConnection, LdapConnectionSettings
from components.identity.ldap_members import Directory, MemberReader

logger = logging.getLogger("cf_access.identity")


@dataclass(frozen=True)
class LdapReadStats:
    """What the last read did (for logs, doctor and tests)."""

    server: str
    users: int
    searches: int
    pages: int
    seconds: float


class LdapSource:
    """``IdentitySource`` over an LDAP directory (see module docstring)."""

    def __init__(self, connection: LdapConnectionSettings, directory: Directory) -> None:
        self.connection = connection
        self.directory = directory
        self.name = directory.source
        self.origin = directory.origin
        self.last_read: LdapReadStats | None = None

    def __repr__(self) -> str:
        c = self.connection
        return f"LdapSource(name={self.name!r}, urls={c.urls!r}, bind_dn={c.bind_dn!r})"

    def read_groups(self, names: Collection[str]) -> dict[str, tuple[Person, ...]]:
        wanted = sorted(set(names))
        if not wanted:
            return {}

        async def read() -> dict[str, tuple[Person, ...]]:
            return await asyncio.to_thread(self._read_blocking, wanted)

        return run_sync(read)

    def check_bind(self) -> str:
        """Connect and bind only; the URL that answered (``cf-access doctor``)."""

        async def bind() -> str:
            return await asyncio.to_thread(self._bind_blocking)

        return run_sync(bind)

    def _bind_blocking(self) -> str:
        with LdapConnection(self.connection) as conn:
            return conn.server

    def _read_blocking(self, names: list[str]) -> dict[str, tuple[Person, ...]]:
        started = time.monotonic()
        try:
            with LdapConnection(self.connection) as conn:
                reader = MemberReader(conn, self.directory)
                reader.load_people()
                out = {name: reader.members(name) for name in names}
                stats = LdapReadStats(
                    conn.server, len(reader.people), conn.searches, conn.pages, time.monotonic() - started
                )
        except IdentityReadError as exc:
            if exc.group is not None:
                raise
            # Connecting, binding and the people search serve every group: say which ones stopped.
            raise IdentityReadError(
                exc.source, None, f"{exc.message}; groups not read: {', '.join(names)}"
            ) from None
        self.last_read = stats
        logger.info(
            "%s: read %d group(s) from %s: %d users, %d searches, %d page(s) in %.1fs",
            self.name,
            len(names),
            stats.server,
            stats.users,
            stats.searches,
            stats.pages,
            stats.seconds,
        )
        return out
