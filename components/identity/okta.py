"""Okta as an identity source, on the official ``okta`` SDK (3.4.x, async on aiohttp).

Per group: find it by exact name (``search=profile.name eq "<name>"``, then an exact,
case-sensitive compare on our side - Okta's ``eq`` is case-insensitive and eventually
consistent), then list its users page by page with the ``after`` cursor. Only users whose
``status`` is in ``active_statuses`` (default ``ACTIVE``) are active; everyone else
(SUSPENDED, DEPROVISIONED, LOCKED_OUT, ...) is a leaver. Okta groups hold users only, so
there is nothing nested to resolve.

Fail closed: a missing group, two groups with the exact name, a paging cursor that errors or
loops, a user seen twice, a member count that disagrees with the group's ``usersCount``
(``expand=stats``), a user without the username attribute, or any SDK failure raises
``IdentityReadError`` naming the source and group. Secrets (API token, private key) are never
part of an error message (they are scrubbed even if an SDK echoed them) or of ``repr``.

SDK quirks handled here (see reference/idp-sdks.md): connection errors, timeouts and 429/503
responses without ``Date`` + ``X-Rate-Limit-Reset`` surface as ``AttributeError`` from inside
the SDK; an exhausted 429 comes back as an error tuple with the raw aiohttp response, whose
``X-Rate-Limit-Reset`` we honour for our own (bounded) retries.
"""

from __future__ import annotations

import contextlib
import email.utils
import functools
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import aiohttp
import pydantic
from okta.client import Client as OktaClient
from okta.pagination import PaginationHelper
from pydantic import SecretStr

from components.identity.base import Person
from components.identity.concurrency import (
    RETRYABLE_STATUSES,
    MemberTally,
    Progress,
    RetryPolicy,
    SdkSource,
    TransientError,
    first_line,
    scrub,
)
from components.identity.defaults import OKTA_READ_SCOPES

OktaUsernameAttribute = Literal["login", "email"]


@dataclass(frozen=True)
class OktaApiTokenAuth:
    """SSWS API token (acts with the permissions of the admin who created it)."""

    token: SecretStr = field(repr=False)

    def __repr__(self) -> str:
        return "OktaApiTokenAuth(token=***)"


@dataclass(frozen=True)
class OktaPrivateKeyAuth:
    """OAuth 2.0 service app, client credentials with a private_key_jwt client assertion."""

    client_id: str
    private_key: SecretStr = field(repr=False)  # PEM text, or a JWK as JSON
    key_id: str | None = None
    scopes: tuple[str, ...] = OKTA_READ_SCOPES

    def __repr__(self) -> str:
        return f"OktaPrivateKeyAuth(client_id={self.client_id!r}, key_id={self.key_id!r}, private_key=***)"


OktaAuth = OktaApiTokenAuth | OktaPrivateKeyAuth


@dataclass(frozen=True)
class _Group:
    id: str
    name: str
    users_count: int | None


class OktaSource(SdkSource[OktaClient, _Group]):
    """Identity source backed by an Okta org (see module docstring)."""

    idp = "Okta"

    def __init__(
        self,
        *,
        org_url: str,
        auth: OktaAuth,
        name: str = "okta",
        origin: str = "okta",
        username_attribute: OktaUsernameAttribute = "login",
        active_statuses: Collection[str] = ("ACTIVE",),
        page_size: int = 200,
        max_concurrency: int = 8,
        retry: RetryPolicy | None = None,
        sdk_max_retries: int = 2,
        request_timeout: float = 60.0,
        ca_file: Path | None = None,
        check_member_count: bool = True,
        progress_interval: float = 5.0,
    ) -> None:
        if username_attribute not in ("login", "email"):
            raise ValueError(f"username_attribute must be 'login' or 'email', not {username_attribute!r}")
        if not org_url.startswith("https://"):
            raise ValueError(f"org_url must be an https:// URL, got {org_url!r}")
        super().__init__(
            name=name,
            origin=origin,
            page_size=page_size,
            max_concurrency=max_concurrency,
            retry=retry,
            sdk_max_retries=sdk_max_retries,
            request_timeout=request_timeout,
            ca_file=ca_file,
            progress_interval=progress_interval,
        )
        self.org_url = org_url.rstrip("/")
        self.auth = auth
        self.username_attribute: OktaUsernameAttribute = username_attribute
        self.active_statuses = frozenset(s.upper() for s in active_statuses)
        self.check_member_count = check_member_count

    def __repr__(self) -> str:
        return (
            f"OktaSource(name={self.name!r}, origin={self.origin!r}, org_url={self.org_url!r}, "
            f"auth={self.auth!r}, username_attribute={self.username_attribute!r})"
        )

    # -- internals -------------------------------------------------------------------------------
    def _secrets(self) -> list[str]:
        if isinstance(self.auth, OktaApiTokenAuth):
            return [self.auth.token.get_secret_value()]
        return [self.auth.private_key.get_secret_value()]

    def _sdk_config(self) -> dict[str, Any]:
        config: dict[str, Any] = {
            "orgUrl": self.org_url,
            "rateLimit": {"maxRetries": self.sdk_max_retries},
            "requestTimeout": self.request_timeout,
            "userAgent": "cf-access",
        }
        if isinstance(self.auth, OktaApiTokenAuth):
            config["authorizationMode"] = "SSWS"
            config["token"] = self.auth.token.get_secret_value()
        else:
            config["authorizationMode"] = "PrivateKey"
            config["clientId"] = self.auth.client_id
            config["scopes"] = list(self.auth.scopes)
            config["privateKey"] = self.auth.private_key.get_secret_value()
            if self.auth.key_id:
                config["kid"] = self.auth.key_id
        return config

    @contextlib.asynccontextmanager
    async def _connect(self) -> AsyncIterator[OktaClient]:
        try:
            client = OktaClient(self._sdk_config())
        except Exception as exc:  # the SDK validates the config in the constructor
            raise self._error(
                None, f"invalid Okta client configuration: {type(exc).__name__}: {exc}"
            ) from None
        # Our own aiohttp session (what `async with Client(...)` does, plus our CA bundle for
        # TLS; the SDK's `sslContext` key cannot be used, the SDK deep-copies its config).
        connector = aiohttp.TCPConnector(ssl=self._tls(), limit=max(10, self.max_concurrency * 2))
        async with aiohttp.ClientSession(connector=connector) as session:
            client._request_executor.set_session(session)
            yield client

    async def _call(
        self, group: str, what: str, fn: Callable[[], Awaitable[Any]]
    ) -> tuple[Any, dict[str, str]]:
        """One SDK call with our retries; returns (data, response headers)."""

        async def once() -> tuple[Any, dict[str, str]]:
            started = time.monotonic()
            try:
                data, resp, err = await fn()  # the SDK returns (data, response, error)
            except AttributeError:
                # The SDK got no response (connection error, timeout, 429/503 without headers)
                # and crashed reading `response.status`.
                elapsed = time.monotonic() - started
                if self.request_timeout > 0 and elapsed >= self.request_timeout * 0.9:
                    raise TransientError(
                        f"timed out after {elapsed:.1f}s (requestTimeoutSeconds={self.request_timeout:g})"
                    ) from None
                raise TransientError(
                    "no HTTP response from Okta (connection failed, timed out, or a 429/503 "
                    "without rate-limit headers)"
                ) from None
            except TimeoutError:
                raise TransientError(f"timed out (requestTimeoutSeconds={self.request_timeout:g})") from None
            except aiohttp.ClientError as exc:
                raise TransientError(f"connection error: {type(exc).__name__}: {exc}") from None
            except pydantic.ValidationError as exc:
                raise self._error(
                    group,
                    f"{what}: unexpected response from Okta ({exc.error_count()} validation error(s): "
                    f"{first_line(str(exc))})",
                ) from None
            if err is not None:
                raise self._classify(group, what, resp, err)
            headers = dict(getattr(resp, "headers", None) or {})
            return data, headers

        return await self._retrying(group, what, once)

    def _classify(self, group: str, what: str, resp: Any, err: Any) -> Exception:
        status = getattr(err, "status", None) or getattr(resp, "status", None)
        code = getattr(err, "error_code", None)
        summary = getattr(err, "error_summary", None) or first_line(str(err))
        detail = " ".join(str(x) for x in (f"HTTP {status}" if status else None, code, summary) if x)
        if isinstance(status, int) and status in RETRYABLE_STATUSES:
            return TransientError(scrub(detail, self._secrets()), _rate_limit_wait(resp))
        if status in (401, 403):
            hint = (
                "check the API token"
                if isinstance(self.auth, OktaApiTokenAuth)
                else f"check the service app {self.auth.client_id!r}, its key and its granted scopes "
                f"({' '.join(self.auth.scopes)})"
            )
            return self._error(group, f"{what}: not authorised by Okta ({detail}); {hint}")
        if status is None and "token" in detail.lower():
            return self._error(group, f"{what}: could not get an OAuth access token from Okta: {detail}")
        return self._error(group, f"{what} failed: {detail}")

    async def _find_group(self, client: OktaClient, name: str) -> _Group:
        quoted = name.replace("\\", "\\\\").replace('"', '\\"')
        query = f'profile.name eq "{quoted}"'
        expand = "stats" if self.check_member_count else None
        found: list[Any] = []
        after: str | None = None
        for _ in range(50):  # a name search never legitimately returns 50 pages
            page, headers = await self._call(
                name,
                "group lookup",
                functools.partial(client.list_groups, search=query, limit=200, after=after, expand=expand),
            )
            found.extend(page or [])
            after = PaginationHelper.extract_next_cursor(headers)
            if not after:
                break
        else:
            raise self._error(name, "group lookup did not finish paging (50 pages)")
        exact: list[_Group] = []
        near: list[str] = []
        for g in found:
            gname = _group_name(g)
            if gname == name:
                stats = getattr(getattr(g, "embedded", None), "stats", None)
                exact.append(_Group(str(g.id), gname, getattr(stats, "users_count", None)))
            elif gname is not None:
                near.append(gname)
        return self._one_group(name, exact, near, f"Okta {self.org_url}")

    async def _members(self, client: OktaClient, group: _Group, progress: Progress) -> tuple[Person, ...]:
        tally = MemberTally(group.name, self._error, progress)
        after: str | None = None
        while True:
            page, headers = await self._call(
                group.name,
                f"member page {tally.next_page()}",
                functools.partial(client.list_group_users, group.id, after=after, limit=self.page_size),
            )
            for user in page or []:
                person = self._person(group.name, user)
                tally.add(str(user.id), person)
            after = PaginationHelper.extract_next_cursor(headers)
            if not tally.page_done(after, "cursor"):
                break
        return tally.finish(group.users_count, "Okta reports usersCount")

    def _person(self, group: str, user: Any) -> Person:
        uid = str(getattr(user, "id", None) or "?")
        profile = getattr(user, "profile", None)
        login = getattr(profile, "login", None)
        mail = getattr(profile, "email", None)
        raw = login if self.username_attribute == "login" else mail
        if not raw:
            raise self._error(
                group,
                f"user {uid} ({login or 'no login'}) has no {self.username_attribute}; cannot name them "
                "in CF (fix the user in Okta or change usernameAttribute)",
            )
        status = getattr(getattr(user, "status", None), "value", None)
        if status is None:
            raise self._error(group, f"user {uid} ({raw}) has no status")
        username, email = self._usernames(group, uid, raw, mail)
        display = getattr(profile, "display_name", None) or " ".join(
            x for x in (getattr(profile, "first_name", None), getattr(profile, "last_name", None)) if x
        )
        return Person(
            username=username,
            origin=self.origin,
            active=str(status).upper() in self.active_statuses,
            source=self.name,
            external_id=uid,
            email=email,
            display_name=display or None,
        )


def _group_name(group: Any) -> str | None:
    profile = getattr(group, "profile", None)
    inner = getattr(profile, "actual_instance", profile)
    name = getattr(inner, "name", None)
    return str(name) if name is not None else None


def _rate_limit_wait(resp: Any) -> float | None:
    """Seconds until Okta's ``X-Rate-Limit-Reset`` (relative to the response ``Date``), + 1."""
    headers = getattr(resp, "headers", None)
    if not headers:
        return None
    reset = headers.get("X-Rate-Limit-Reset")
    if not reset:
        return None
    try:
        reset_at = float(reset)
        date = headers.get("Date")
        now = email.utils.parsedate_to_datetime(date).timestamp() if date else time.time()
    except (TypeError, ValueError):
        return None
    return max(0.0, reset_at - now) + 1.0
