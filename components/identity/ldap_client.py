"""One LDAP connection for one read: failover over the configured URLs, TLS, a simple bind, and
paged searches (RFC 2696) that fail closed.

Everything here is blocking python-ldap (OpenLDAP's libldap); ``LdapSource`` runs it on a worker
thread. Every failure becomes ``IdentityReadError`` naming the source, the server and (when known)
the group, with the bind password scrubbed from the text. What counts as a failure, and why:

* bind refused, TLS failure, timeout, server down: nothing can be read;
* size / time / admin limit exceeded: the server cut the answer short;
* a referral or a search continuation reference: part of the answer lives on a server we do not
  follow (chasing referrals would re-bind elsewhere with our credentials), so the answer is partial;
* a paged search whose response has no paging control, or a page that repeats a cookie: the server
  stopped paging, and whatever it returned may be a prefix of the result.
"""

from __future__ import annotations

import contextlib
import logging
import socket
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import ldap
from ldap.controls import SimplePagedResultsControl
from ldap.ldapobject import LDAPObject
from pydantic import SecretStr

from components.identity.base import IdentityReadError
from components.identity.concurrency import first_line, scrub

logger = logging.getLogger("cf_access.identity")
TlsVersion = Literal["1.2", "1.3"]
# OPT_X_TLS_PROTOCOL_MIN takes (major << 8) | minor of the SSL/TLS wire version: TLS 1.2 = 3.3.
TLS_PROTOCOL_MIN = {"1.2": 0x303, "1.3": 0x304}
# libldap built with GnuTLS (Debian, Ubuntu) ignores OPT_X_TLS_PROTOCOL_MIN; there the versions
# are limited through the GnuTLS priority string libldap passes on as its cipher suite.
GNUTLS_PRIORITY = {
    "1.2": "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2",
    "1.3": "NORMAL:-VERS-ALL:+VERS-TLS1.3",
}
Entry = tuple[str, dict[str, list[bytes]]]


class NoSuchEntry(IdentityReadError):
    """A search base that does not exist (a dangling member DN is one; a wrong userBase another)."""


@dataclass(frozen=True)
class LdapConnectionSettings:
    """Where and how to connect and bind (the password never shows in ``repr``)."""

    source: str
    urls: tuple[str, ...]
    bind_dn: str
    bind_password: SecretStr = field(repr=False)
    start_tls: bool = True
    ca_file: Path | None = None
    tls_min_version: TlsVersion = "1.2"
    connect_timeout: float = 10.0
    operation_timeout: float = 30.0
    page_size: int = 500


class LdapConnection:
    """A bound connection; ``search`` pages through every result or raises ``IdentityReadError``."""

    def __init__(self, settings: LdapConnectionSettings) -> None:
        self.settings = settings
        self._conn: LDAPObject | None = None
        self.server = settings.urls[0]  # the URL that answered (for messages), once connected
        self.searches = 0
        self.pages = 0

    # -- connect ---------------------------------------------------------------------------------
    def open(self) -> None:
        """Connect to the first URL that answers, in order (failover), then StartTLS and bind.

        Only an unreachable server (connection refused, connect timeout) moves on to the next URL;
        a TLS or bind failure is final, because the next server would have the same certificate
        and the same account, and trying them all only multiplies the lockout counter.
        """
        unreachable: list[str] = []
        for url in self.settings.urls:
            try:
                self._conn = self._connect(url)
                self.server = url
                break
            except ldap.SERVER_DOWN as exc:
                # ldaps: libldap reports a failed handshake as "server down", often without a
                # reason; if the port accepts TCP, the server is up and TLS is what failed.
                if _looks_like_tls(_describe(exc)) or (
                    url.lower().startswith("ldaps://") and _tcp_reachable(url, self.settings.connect_timeout)
                ):
                    raise self._tls_error(url, exc) from None
                unreachable.append(f"{url}: {_describe(exc)}")
                logger.warning(
                    "%s: %s unreachable (%s); trying the next URL", self.settings.source, url, _describe(exc)
                )
            except ldap.LDAPError as exc:
                raise self._bind_error(url, exc) from None
        else:
            s = self.settings
            raise IdentityReadError(
                s.source,
                None,
                f"cannot reach any LDAP server (connect timeout {s.connect_timeout:g}s): "
                f"{'; '.join(unreachable)}. Check the URLs and that the servers are up",
            )
        logger.debug("%s: bound to %s as %s", self.settings.source, self.server, self.settings.bind_dn)

    def _connect(self, url: str) -> LDAPObject:
        s = self.settings
        conn = ldap.initialize(url, bytes_mode=False)
        conn.protocol_version = ldap.VERSION3
        conn.set_option(ldap.OPT_REFERRALS, 0)  # never chase referrals: they are errors (see module doc)
        conn.set_option(ldap.OPT_NETWORK_TIMEOUT, s.connect_timeout)
        conn.set_option(ldap.OPT_TIMEOUT, s.operation_timeout)
        conn.set_option(ldap.OPT_X_TLS_REQUIRE_CERT, ldap.OPT_X_TLS_DEMAND)
        conn.set_option(ldap.OPT_X_TLS_PROTOCOL_MIN, TLS_PROTOCOL_MIN[s.tls_min_version])
        if ldap.get_option(ldap.OPT_X_TLS_PACKAGE) == "GnuTLS":
            conn.set_option(ldap.OPT_X_TLS_CIPHER_SUITE, GNUTLS_PRIORITY[s.tls_min_version])
        if s.ca_file is not None:
            conn.set_option(ldap.OPT_X_TLS_CACERTFILE, str(s.ca_file))
        conn.set_option(ldap.OPT_X_TLS_NEWCTX, 0)  # must come last: applies the TLS options above
        try:
            if s.start_tls and url.lower().startswith("ldap://"):
                conn.start_tls_s()
            conn.simple_bind_s(s.bind_dn, s.bind_password.get_secret_value())
        except ldap.LDAPError:
            with contextlib.suppress(ldap.LDAPError):
                conn.unbind_s()
            raise
        return conn

    def close(self) -> None:
        if self._conn is not None:
            # Closing a broken connection: nothing to report, the read already failed.
            with contextlib.suppress(ldap.LDAPError):
                self._conn.unbind_s()
            self._conn = None

    def __enter__(self) -> LdapConnection:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- search ----------------------------------------------------------------------------------
    def search(
        self,
        base: str,
        scope: int,
        filterstr: str,
        attrs: Sequence[str],
        *,
        group: str | None,
        what: str,
    ) -> list[Entry]:
        """Every entry matching, read page by page with the paged-results control (RFC 2696)."""
        return list(self.iter_search(base, scope, filterstr, attrs, group=group, what=what))

    def iter_search(
        self,
        base: str,
        scope: int,
        filterstr: str,
        attrs: Sequence[str],
        *,
        group: str | None,
        what: str,
    ) -> Iterator[Entry]:
        conn = self._require()
        control = SimplePagedResultsControl(True, size=self.settings.page_size, cookie="")
        seen: set[bytes] = set()
        page = 0
        self.searches += 1
        while True:
            page += 1
            self.pages += 1
            try:
                msgid = conn.search_ext(base, scope, filterstr, list(attrs), serverctrls=[control])
                _, data, _, controls = conn.result3(msgid, all=1, timeout=self.settings.operation_timeout)
            except ldap.LDAPError as exc:
                raise self._search_error(exc, group, what, base, page) from None
            for dn, entry in data or []:
                if dn is None:  # a search continuation reference (RFC 4511 4.5.3)
                    raise self.error(
                        group,
                        f"{what}: the server returned a referral to {_refs(entry)} "
                        f"under {base!r}; cf-access does not follow referrals, so the answer "
                        "would be partial. Point the search base at the server that holds "
                        "the entries, or narrow it to exclude the referral",
                    )
                yield dn, entry
            cookie = _paging_cookie(controls)
            if cookie is None:
                raise self.error(
                    group,
                    f"{what}: the server dropped the paged-results control on page {page} "
                    f"(search under {base!r}): the result may be incomplete. Check that the "
                    "server supports paged results (RFC 2696) for this bind account",
                )
            if not cookie:
                return
            if cookie in seen:
                raise self.error(group, f"{what}: paging loop, the server repeated a cookie on page {page}")
            seen.add(cookie)
            control.cookie = cookie

    def _require(self) -> LDAPObject:
        if self._conn is None:
            raise RuntimeError("LdapConnection used before open()")
        return self._conn

    # -- errors ----------------------------------------------------------------------------------
    def error(self, group: str | None, message: str) -> IdentityReadError:
        text = f"{message} (server {self.server})"
        return IdentityReadError(
            self.settings.source, group, scrub(text, [self.settings.bind_password.get_secret_value()])
        )

    def _tls_error(self, url: str, exc: ldap.LDAPError) -> IdentityReadError:
        s = self.settings
        message = (
            f"TLS failed: {_describe(exc)}. Check caBundle (the CA that signed the server certificate), "
            f"tlsMinVersion ({s.tls_min_version}) and that the host name in the URL is in the certificate"
        )
        return IdentityReadError(
            s.source, None, scrub(f"{message} (server {url})", [s.bind_password.get_secret_value()])
        )

    def _bind_error(self, url: str, exc: ldap.LDAPError) -> IdentityReadError:
        s = self.settings
        detail = _describe(exc)
        if isinstance(exc, ldap.INVALID_CREDENTIALS | ldap.INAPPROPRIATE_AUTH):
            message = (
                f"bind as {s.bind_dn!r} refused: {detail}. Check bindDn and the bind password "
                "(the password comes from the bindPasswordEnv variable when set, else bindPassword)"
            )
        elif isinstance(exc, ldap.TIMEOUT):
            message = f"timed out after {s.operation_timeout:g}s connecting or binding: {detail}"
        elif isinstance(exc, ldap.CONNECT_ERROR) or _looks_like_tls(detail):
            return self._tls_error(url, exc)
        else:
            message = f"connect/bind failed: {type(exc).__name__}: {detail}"
        return IdentityReadError(
            s.source, None, scrub(f"{message} (server {url})", [s.bind_password.get_secret_value()])
        )

    def _search_error(
        self, exc: ldap.LDAPError, group: str | None, what: str, base: str, page: int
    ) -> IdentityReadError:
        detail = _describe(exc)
        where = f"{what} (search under {base!r}, page {page})"
        if isinstance(exc, ldap.SIZELIMIT_EXCEEDED | ldap.ADMINLIMIT_EXCEEDED):
            hint = (
                "the server caps how many entries this bind account may read, even with paging; "
                "raise the limit for the bind account (OpenLDAP: limits ... size.prtotal=unlimited; "
                "AD: MaxPageSize / MaxResultSetSize) or narrow the search base and filter"
            )
            return self.error(group, f"{where}: size limit exceeded: {detail}; {hint}")
        if isinstance(exc, ldap.TIMELIMIT_EXCEEDED):
            return self.error(group, f"{where}: server time limit exceeded: {detail}")
        if isinstance(exc, ldap.TIMEOUT):
            return self.error(group, f"{where}: timed out after {self.settings.operation_timeout:g}s")
        if isinstance(exc, ldap.REFERRAL):
            return self.error(
                group,
                f"{where}: the server answered with a referral ({detail}); cf-access does not follow "
                "referrals. Point the search base at the server that holds the entries",
            )
        if isinstance(exc, ldap.SERVER_DOWN):
            return self.error(group, f"{where}: connection lost: {detail}")
        if isinstance(exc, ldap.NO_SUCH_OBJECT):
            text = f"{where}: the search base does not exist: {detail} (server {self.server})"
            return NoSuchEntry(
                self.settings.source, group, scrub(text, [self.settings.bind_password.get_secret_value()])
            )
        return self.error(group, f"{where} failed: {type(exc).__name__}: {detail}")


def _paging_cookie(controls: list[Any] | None) -> bytes | None:
    """The cookie of the response's paged-results control; None when the server sent none."""
    for control in controls or []:
        if control.controlType == SimplePagedResultsControl.controlType:
            return bytes(control.cookie or b"")
    return None


def _refs(entry: object) -> str:
    if isinstance(entry, (list, tuple)):
        return ", ".join(str(r) for r in entry) or "another server"
    return "another server"


def _describe(exc: ldap.LDAPError) -> str:
    """``desc`` and ``info`` of a python-ldap error (its args[0] is a dict), on one line."""
    arg = exc.args[0] if exc.args else None
    if isinstance(arg, dict):
        parts = [str(arg.get("desc", "")).strip(), str(arg.get("info", "")).strip()]
        return first_line(": ".join(p for p in parts if p)) or type(exc).__name__
    return first_line(str(exc)) or type(exc).__name__


def _tcp_reachable(url: str, timeout: float) -> bool:
    """Whether ``url``'s host:port accepts a TCP connection (tells a TLS failure from a down server)."""
    parsed = urlsplit(url)
    default = 636 if parsed.scheme.lower() == "ldaps" else 389
    try:
        with socket.create_connection(
            (parsed.hostname or "localhost", parsed.port or default), timeout=timeout
        ):
            return True
    except OSError:
        return False


def _looks_like_tls(detail: str) -> bool:
    lowered = detail.lower()
    return any(word in lowered for word in ("tls", "certificate", "ssl", "handshake"))
