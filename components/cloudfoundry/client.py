"""Synchronous, thread-safe Cloud Foundry V3 (Cloud Controller) + UAA client.

One instance owns one ``httpx.Client`` (connection pool, timeouts), one cached
UAA client-credentials token and one bounded thread pool for fan-out
(:meth:`CloudFoundryClient.map_concurrently`). Instances are safe to share
between threads; the dynamic providers keep one per process.

Semantics worth knowing (details in ``/work/shared/reference/cf-api.md``):

* Discovery: ``GET /`` → ``links.uaa.href``; token from ``<uaa>/oauth/token``
  (client_credentials, HTTP Basic). The token is refreshed 60 s before expiry
  (half-life for short tokens) and once after a 401.
* Retries: 429/500/502/503/504, connect errors, timeouts and dropped
  connections, exponential backoff with full jitter, honouring ``Retry-After``
  and (on 429) ``X-RateLimit-Reset``.
* Non-idempotent writes are never retried blindly: after an ambiguous failure
  (5xx, timeout, dropped connection) the write first looks up whether it
  happened and adopts the result. "Already exists" answers are adopted too.
* DELETEs are idempotent: 404 means already gone; 202 jobs are polled.
* Errors never contain the client secret, tokens or headers; the client
  refuses to be pickled.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
import tenacity

from components.cloudfoundry.errors import (
    BatchError,
    CfApiError,
    CfConnectionError,
    CfErrorItem,
    CloudFoundryError,
    JobFailedError,
    JobTimeoutError,
    UaaError,
)
from components.cloudfoundry.models import (
    ORG_ROLE_TYPES,
    SPACE_ROLE_TYPES,
    CfUser,
    Job,
    Org,
    Role,
    Space,
    UaaUser,
    parse_cf_user,
    parse_job,
    parse_org,
    parse_role,
    parse_space,
    parse_uaa_user,
)
from components.cloudfoundry.query import chunk_filters
from components.cloudfoundry.retry import (
    RETRY_STATUSES,
    BackoffWait,
    RetryableStatus,
    is_ambiguous,
    is_retryable,
)
from components.cloudfoundry.scopes import Access, require

if TYPE_CHECKING:
    from components.settings import CfConnection

logger = logging.getLogger("cf_access.cf")

T = TypeVar("T")
R = TypeVar("R")

CC_PER_PAGE = 5000
UAA_PAGE_SIZE = 500
TOKEN_REFRESH_MARGIN_S = 60.0
_MAX_PAGES = 100_000

_CC_PATH_TEMPLATE = re.compile(r"^(/v3/[a-z_]+)/[^/]+")
_UAA_PATH_TEMPLATE = re.compile(r"^/Users/[^/]+")


class _Secret:
    """Holds a credential; its repr/str never show the value."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "<redacted>"

    __str__ = __repr__

    def __reduce__(self) -> tuple[Any, ...]:
        raise TypeError("secrets cannot be pickled")


class _Token:
    __slots__ = ("refresh_at", "scopes", "secret")

    def __init__(self, value: str, refresh_at: float, scopes: frozenset[str] = frozenset()) -> None:
        self.secret = _Secret(value)
        self.refresh_at = refresh_at
        self.scopes = scopes

    def __repr__(self) -> str:
        return f"<token refresh_at={self.refresh_at:.0f}>"


def path_template(service: str, path: str) -> str:
    """``/v3/roles/<guid>`` → ``/v3/roles/{guid}``; UAA paths get a ``uaa:`` prefix."""
    if service == "uaa":
        return "uaa:" + _UAA_PATH_TEMPLATE.sub("/Users/{id}", path)
    return _CC_PATH_TEMPLATE.sub(r"\1/{guid}", path)


def _json_body(response: httpx.Response) -> Any:
    """Decode a JSON body regardless of Content-Type (CC sends 429 JSON as text/plain)."""
    if not response.content:
        return None
    try:
        return json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        return None


def _uaa_filter_value(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _dedupe(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))


def _token_scopes(body: Mapping[str, Any], access_token: str) -> frozenset[str]:
    """The scopes UAA granted: the token response's ``scope`` (RFC 6749 5.1), else the
    JWT's ``scope`` claim (read without verifying: only used to explain a refusal early;
    Cloud Controller and UAA still enforce the real thing)."""
    raw: Any = body.get("scope")
    if not raw:
        try:
            payload = access_token.split(".")[1]
            claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        except (IndexError, ValueError, binascii.Error):
            return frozenset()
        raw = claims.get("scope") if isinstance(claims, dict) else None
    if isinstance(raw, str):
        return frozenset(raw.split())
    if isinstance(raw, list):
        return frozenset(str(s) for s in raw)
    return frozenset()


class CloudFoundryClient:
    """Cloud Controller V3 + UAA client (see module docstring)."""

    def __init__(
        self,
        api_url: str,
        client_id: str,
        client_secret: str,
        *,
        concurrency: int = 8,
        timeout_s: float = 30,
        verify_tls: bool = True,
        max_retries: int = 6,
        backoff_base_s: float = 0.2,
        backoff_max_s: float = 30,
        job_poll_interval_s: float = 0.2,
        job_timeout_s: float = 300,
        uaa_url: str | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        check_scopes: bool = False,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        if max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        self.api_url = api_url.rstrip("/")
        self.client_id = client_id
        self._secret = _Secret(client_secret)
        self.concurrency = concurrency
        self.max_retries = max_retries
        self.job_poll_interval_s = job_poll_interval_s
        self.job_timeout_s = job_timeout_s
        self._sleep = sleep
        self._clock = clock
        self._wall_clock = wall_clock
        self._wait = BackoffWait(backoff_base_s, backoff_max_s, rng=rng, wall_clock=wall_clock)

        pool = max(16, concurrency * 2 + 8)
        self._http = httpx.Client(
            timeout=httpx.Timeout(timeout_s),
            verify=verify_tls,
            transport=transport,
            limits=httpx.Limits(max_connections=pool, max_keepalive_connections=pool),
            headers={"Accept": "application/json", "User-Agent": "cf-access"},
            follow_redirects=False,
        )
        self._uaa_url: str | None = uaa_url.rstrip("/") if uaa_url else None
        self._uaa_url_configured = self._uaa_url is not None
        # Refuse, before sending, a request the token's scopes cannot make (scopes.py):
        # a read without global read would be silently filtered by CC, a write refused.
        self._check_scopes = check_scopes
        self._discovery_lock = threading.Lock()
        self._token: _Token | None = None
        self._token_lock = threading.Lock()

        self._counts: Counter[str] = Counter()
        self._events: Counter[str] = Counter()
        self._counts_lock = threading.Lock()

        self._executor: ThreadPoolExecutor | None = None
        self._executor_lock = threading.Lock()
        self._local = threading.local()
        self._closed = False

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        self._closed = True
        with self._executor_lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)
        self._http.close()

    def __enter__(self) -> CloudFoundryClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"CloudFoundryClient(api_url={self.api_url!r}, client_id={self.client_id!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        raise TypeError(
            "CloudFoundryClient cannot be pickled (it holds credentials); "
            "create it inside the provider process instead"
        )

    # ------------------------------------------------------------------ counters

    def request_counts(self) -> dict[str, int]:
        """HTTP requests sent (every attempt), keyed ``"<METHOD> <path template>"``."""
        with self._counts_lock:
            return dict(self._counts)

    def event_counts(self) -> dict[str, int]:
        """Retries, token fetches, adoptions and similar events, by name."""
        with self._counts_lock:
            return dict(self._events)

    def reset_counts(self) -> None:
        with self._counts_lock:
            self._counts.clear()
            self._events.clear()

    def _count(self, key: str) -> None:
        with self._counts_lock:
            self._counts[key] += 1

    def _event(self, name: str) -> None:
        with self._counts_lock:
            self._events[name] += 1

    # ------------------------------------------------------------------ discovery + token

    @property
    def uaa_url(self) -> str:
        """The UAA base URL (``links.uaa.href`` of ``GET /``), discovered once."""
        if self._uaa_url is not None:
            return self._uaa_url
        with self._discovery_lock:
            if self._uaa_url is None:
                body = self._get_json("cc", "/", auth=False)
                href = None
                if isinstance(body, dict):
                    links = body.get("links") or {}
                    uaa = links.get("uaa") or links.get("login") or {}
                    href = uaa.get("href") if isinstance(uaa, dict) else None
                if not href:
                    raise CfApiError(f"GET {self.api_url}/ did not return links.uaa.href")
                self._uaa_url = str(href).rstrip("/")
                logger.debug("discovered UAA at %s", self._uaa_url)
            return self._uaa_url

    def _current_token(self) -> str:
        token = self._token
        if token is not None and self._clock() < token.refresh_at:
            return token.secret.get()
        with self._token_lock:
            token = self._token
            if token is not None and self._clock() < token.refresh_at:
                return token.secret.get()
            token = self._fetch_token()
            self._token = token
            return token.secret.get()

    def _invalidate_token(self, value: str) -> None:
        with self._token_lock:
            if self._token is not None and self._token.secret.get() == value:
                self._token = None

    def _fetch_token(self) -> _Token:
        url = self.uaa_url + "/oauth/token"
        started = self._clock()

        def once() -> httpx.Response:
            return self._attempt(
                "POST",
                url,
                service="uaa",
                path="/oauth/token",
                data={"grant_type": "client_credentials"},
                auth=False,
                basic_auth=True,
            )

        try:
            resp = self._with_retries("POST", "/oauth/token", "uaa", once)
        except CfConnectionError as exc:
            raise CfConnectionError(exc.method, exc.path, exc.reason + self._configured_uaa_hint()) from exc
        if resp.status_code != 200:
            error = self._uaa_error(resp, "POST", "/oauth/token")
            if resp.status_code == 404:
                described = error.description + self._configured_uaa_hint()
                error = UaaError(error.status, error.error, described, error.method, error.path)
            raise error
        body = _json_body(resp)
        if not isinstance(body, dict) or not body.get("access_token"):
            raise UaaError(
                resp.status_code, "invalid_token_response", "no access_token", "POST", "/oauth/token"
            )
        try:
            expires_in = float(body.get("expires_in", 600))
        except (TypeError, ValueError):
            expires_in = 600.0
        margin = min(TOKEN_REFRESH_MARGIN_S, expires_in / 2)
        self._event("token_fetch")
        logger.debug("fetched UAA token (expires in %.0fs)", expires_in)
        value = str(body["access_token"])
        return _Token(value, started + expires_in - margin, _token_scopes(body, value))

    def _configured_uaa_hint(self) -> str:
        """Where a configured UAA URL came from, for a token request that found no UAA there."""
        if not self._uaa_url_configured:
            return ""
        return (
            f" (UAA URL {self.uaa_url} is set by cfUaaUrl or CF_UAA_URL: it must be links.uaa.href "
            f"of GET {self.api_url}/; correct it or unset it to discover UAA)"
        )

    def granted_scopes(self) -> frozenset[str]:
        """The scopes of the current UAA token (fetching one if needed)."""
        self._current_token()
        token = self._token
        return token.scopes if token is not None else frozenset()

    def require_scopes(self, access: Access) -> None:
        """Raise MissingScopeError naming the missing scope when the token cannot ``access``
        (components/cloudfoundry/scopes.py says why reads are checked too)."""
        require(self.client_id, self.granted_scopes(), access)

    # ------------------------------------------------------------------ transport

    def _attempt(
        self,
        method: str,
        url: str,
        *,
        service: str,
        path: str,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        data: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        auth: bool = True,
        basic_auth: bool = False,
    ) -> httpx.Response:
        """One HTTP exchange (plus one re-send after a 401 with a fresh token).

        Raises :class:`RetryableStatus` for 429/5xx and lets httpx transport
        errors through; every other response is returned to the caller.
        """
        if self._closed:
            raise CfApiError("CloudFoundryClient is closed")
        key = f"{method} {path_template(service, path)}"
        for auth_try in range(2):
            hdrs: dict[str, str] = dict(headers or {})
            token: str | None = None
            if auth:
                if self._check_scopes:
                    self.require_scopes("read" if method in ("GET", "HEAD") else "write")
                token = self._current_token()
                hdrs["Authorization"] = f"bearer {token}"
            self._count(key)
            started = self._clock()
            try:
                resp = self._http.request(
                    method,
                    url,
                    params=params,
                    json=json_body,
                    data=data,
                    headers=hdrs,
                    auth=httpx.BasicAuth(self.client_id, self._secret.get()) if basic_auth else None,
                )
            except httpx.TransportError as exc:
                logger.debug("%s %s -> %s", method, path, type(exc).__name__)
                raise
            logger.debug(
                "%s %s -> %d (%.0f ms)", method, path, resp.status_code, (self._clock() - started) * 1000
            )
            if resp.status_code == 401 and auth and token is not None and auth_try == 0:
                self._event("token_rejected")
                self._invalidate_token(token)
                continue
            if resp.status_code in RETRY_STATUSES:
                raise RetryableStatus(resp, method, path, service)
            return resp
        return resp  # second 401: the caller turns it into an error

    def _before_sleep(self, method: str, path: str) -> Callable[[tenacity.RetryCallState], None]:
        def log(state: tenacity.RetryCallState) -> None:
            self._event("retry")
            exc = state.outcome.exception() if state.outcome is not None else None
            what = (
                f"HTTP {exc.response.status_code}" if isinstance(exc, RetryableStatus) else type(exc).__name__
            )
            wait_s = state.upcoming_sleep
            logger.info(
                "retrying %s %s after %s (attempt %d, waiting %.2fs)",
                method,
                path,
                what,
                state.attempt_number,
                wait_s,
            )

        return log

    def _with_retries(
        self,
        method: str,
        path: str,
        service: str,
        fn: Callable[[], T],
        *,
        recover: Callable[[], T | None] | None = None,
    ) -> T:
        """Run ``fn`` with the retry policy.

        ``recover`` marks ``fn`` as a non-idempotent write: after an ambiguous
        failure (the server may have applied it) ``recover`` is called before
        the next attempt and, if it finds the result, that result is adopted
        instead of writing again.
        """
        ambiguous = False

        def once() -> T:
            nonlocal ambiguous
            if ambiguous and recover is not None:
                found = recover()
                if found is not None:
                    self._event("adopt_after_ambiguous")
                    logger.info("%s %s: adopted result after an ambiguous failure", method, path)
                    return found
            try:
                return fn()
            except Exception as exc:
                ambiguous = is_ambiguous(exc)
                raise

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception(is_retryable),
            stop=tenacity.stop_after_attempt(self.max_retries + 1),
            wait=self._wait,
            sleep=self._sleep,
            before_sleep=self._before_sleep(method, path),
            reraise=True,
        )
        try:
            return retrying(once)
        except RetryableStatus as exc:
            if recover is not None and ambiguous:
                found = recover()
                if found is not None:
                    self._event("adopt_after_ambiguous")
                    return found
            if exc.service == "uaa":
                raise self._uaa_error(exc.response, exc.method, exc.path) from None
            raise self._cc_error(exc.response, exc.method, exc.path) from None
        except httpx.TransportError as exc:
            if recover is not None and ambiguous:
                found = recover()
                if found is not None:
                    self._event("adopt_after_ambiguous")
                    return found
            reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            raise CfConnectionError(method, path, self._redact(reason)) from None

    def _redact(self, text: str) -> str:
        secret = self._secret.get()
        if secret and secret in text:
            text = text.replace(secret, "<redacted>")
        token = self._token
        if token is not None and token.secret.get() in text:
            text = text.replace(token.secret.get(), "<redacted>")
        return text

    def _cc_error(self, resp: httpx.Response, method: str, path: str) -> CloudFoundryError:
        body = _json_body(resp)
        items: list[CfErrorItem] = []
        if isinstance(body, dict) and isinstance(body.get("errors"), list):
            for err in body["errors"]:
                if not isinstance(err, dict):
                    continue
                code = err.get("code")
                items.append(
                    CfErrorItem(
                        code=int(code) if isinstance(code, int | str) and str(code).isdigit() else None,
                        title=self._redact(str(err.get("title") or f"HTTP {resp.status_code}")),
                        detail=self._redact(str(err.get("detail") or "")),
                    )
                )
        if not items:
            text = resp.text[:500].strip() if resp.content else ""
            items.append(
                CfErrorItem(
                    code=None,
                    title=f"HTTP {resp.status_code}",
                    detail=self._redact(text or resp.reason_phrase),
                )
            )
        first = items[0]
        return CloudFoundryError(
            resp.status_code, first.code, first.title, first.detail, method, path, errors=items
        )

    def _uaa_error(self, resp: httpx.Response, method: str, path: str) -> UaaError:
        body = _json_body(resp)
        if isinstance(body, dict) and ("error" in body or "error_description" in body):
            error = str(body.get("error") or f"HTTP {resp.status_code}")
            desc = str(body.get("error_description") or body.get("message") or "")
        else:
            error = f"HTTP {resp.status_code}"
            desc = resp.text[:500].strip() if resp.content else resp.reason_phrase
        return UaaError(resp.status_code, self._redact(error), self._redact(desc), method, path)

    def _service_base(self, service: str) -> str:
        return self.uaa_url if service == "uaa" else self.api_url

    def _retarget(self, href: str, service: str = "cc") -> str:
        """Point a server-provided absolute href (next page, job Location) at our base URL."""
        base = self._service_base(service)
        if href.startswith(base):
            return href
        target = httpx.URL(href)
        return str(httpx.URL(base).copy_with(raw_path=target.raw_path))

    def _relative_path(self, url: str, service: str) -> str:
        base_path = httpx.URL(self._service_base(service)).path.rstrip("/")
        path = httpx.URL(url).path
        if base_path and path.startswith(base_path):
            path = path[len(base_path) :] or "/"
        return path

    def _request(
        self,
        method: str,
        service: str,
        path: str,
        *,
        url: str | None = None,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        auth: bool = True,
    ) -> httpx.Response:
        """An idempotent request with retries; returns any non-retryable response."""
        target = url or (self._service_base(service) + path)

        def once() -> httpx.Response:
            return self._attempt(
                method,
                target,
                service=service,
                path=path,
                params=params,
                json_body=json_body,
                headers=headers,
                auth=auth,
            )

        return self._with_retries(method, path, service, once)

    def _get_json(
        self,
        service: str,
        path: str,
        *,
        url: str | None = None,
        params: Mapping[str, str] | None = None,
        auth: bool = True,
        allow_404: bool = False,
    ) -> Any:
        resp = self._request("GET", service, path, url=url, params=params, auth=auth)
        if resp.status_code == 404 and allow_404:
            return None
        if resp.status_code != 200:
            if service == "uaa":
                raise self._uaa_error(resp, "GET", path)
            raise self._cc_error(resp, "GET", path)
        body = _json_body(resp)
        if body is None:
            raise CloudFoundryError(
                resp.status_code, None, "InvalidResponse", "body is not JSON", "GET", path
            )
        return body

    # ------------------------------------------------------------------ pagination

    def _cc_pages(self, path: str, params: Mapping[str, str]) -> Iterator[dict[str, Any]]:
        """Yield every page of a CC V3 list, following ``pagination.next.href``."""
        url: str | None = None
        query: Mapping[str, str] | None = {"per_page": str(CC_PER_PAGE), **params}
        seen: set[str] = set()
        for _ in range(_MAX_PAGES):
            body = self._get_json("cc", path, url=url, params=query)
            if not isinstance(body, dict):
                raise CloudFoundryError(
                    200, None, "InvalidResponse", "list body is not an object", "GET", path
                )
            yield body
            nxt = ((body.get("pagination") or {}).get("next") or {}).get("href")
            if not nxt:
                return
            url = self._retarget(str(nxt))
            if url in seen:
                raise CloudFoundryError(
                    200, None, "InvalidResponse", "pagination loops back to a seen page", "GET", path
                )
            seen.add(url)
            query = None
        raise CloudFoundryError(200, None, "InvalidResponse", "too many pages", "GET", path)

    def _cc_list(
        self,
        path: str,
        filters: Mapping[str, Sequence[str] | None],
        extra: Mapping[str, str] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Pages of a filtered CC list; long filters are split over several requests.

        A filter given as an empty sequence matches nothing (no request is made).
        """
        given = {k: _dedupe(v) for k, v in filters.items() if v is not None}
        if any(not v for v in given.values()):
            return
        for query in chunk_filters(given):
            yield from self._cc_pages(path, {**query, **(extra or {})})

    def _uaa_pages(self, path: str, params: Mapping[str, str]) -> Iterator[dict[str, Any]]:
        """Yield every page of a UAA SCIM list (``startIndex``/``count`` paging)."""
        start = 1
        for _ in range(_MAX_PAGES):
            body = self._get_json(
                "uaa", path, params={**params, "startIndex": str(start), "count": str(UAA_PAGE_SIZE)}
            )
            if not isinstance(body, dict):
                raise UaaError(200, "invalid_response", "list body is not an object", "GET", path)
            yield body
            resources = body.get("resources") or []
            total = int(body.get("totalResults") or 0)
            if not resources:
                return
            start += len(resources)
            if start > total:
                return
        raise UaaError(200, "invalid_response", "too many pages", "GET", path)

    # ------------------------------------------------------------------ orgs / spaces

    def list_orgs(self, names: Sequence[str] | None = None) -> list[Org]:
        out: dict[str, Org] = {}
        for page in self._cc_list("/v3/organizations", {"names": names}):
            for res in page.get("resources") or []:
                org = parse_org(res)
                out[org.guid] = org
        return list(out.values())

    def list_spaces(
        self, org_guids: Sequence[str] | None = None, names: Sequence[str] | None = None
    ) -> list[Space]:
        out: dict[str, Space] = {}
        for page in self._cc_list("/v3/spaces", {"organization_guids": org_guids, "names": names}):
            for res in page.get("resources") or []:
                space = parse_space(res)
                out[space.guid] = space
        return list(out.values())

    # ------------------------------------------------------------------ CC users

    def list_users(
        self,
        usernames: Sequence[str] | None = None,
        origins: Sequence[str] | None = None,
        guids: Sequence[str] | None = None,
    ) -> list[CfUser]:
        """CC users; no filter = all users. ``origins`` without ``usernames`` is applied locally
        (CC rejects that combination)."""
        local_origins: set[str] | None = None
        filters: dict[str, Sequence[str] | None] = {"usernames": usernames, "guids": guids}
        if origins is not None and usernames is None:
            local_origins = set(origins)
        else:
            filters["origins"] = origins
        out: dict[str, CfUser] = {}
        for page in self._cc_list("/v3/users", filters):
            for res in page.get("resources") or []:
                user = parse_cf_user(res)
                if local_origins is not None and user.origin not in local_origins:
                    continue
                out[user.guid] = user
        return list(out.values())

    def get_user(self, guid: str) -> CfUser | None:
        body = self._get_json("cc", f"/v3/users/{guid}", allow_404=True)
        return parse_cf_user(body) if body is not None else None

    def create_user(self, guid: str) -> CfUser:
        """``POST /v3/users {"guid"}``; an existing user (422 already exists) is adopted."""
        path = "/v3/users"
        url = self.api_url + path

        def once() -> CfUser:
            resp = self._attempt("POST", url, service="cc", path=path, json_body={"guid": guid})
            if resp.status_code in (200, 201):
                return parse_cf_user(_json_body(resp))
            err = self._cc_error(resp, "POST", path)
            if err.is_already_exists:
                found = self.get_user(guid)
                if found is not None:
                    self._event("adopt_user")
                    return found
            raise err

        return self._with_retries("POST", path, "cc", once, recover=lambda: self.get_user(guid))

    def delete_user(self, guid: str) -> None:
        """``DELETE /v3/users/<guid>`` and wait for the job; 404 = already gone.

        The UAA user is not touched (see :meth:`delete_uaa_user`)."""
        self._delete_with_job(f"/v3/users/{guid}")

    # ------------------------------------------------------------------ roles

    def list_roles(
        self,
        *,
        types: Sequence[str] | None = None,
        user_guids: Sequence[str] | None = None,
        organization_guids: Sequence[str] | None = None,
        space_guids: Sequence[str] | None = None,
        guids: Sequence[str] | None = None,
        include_users: bool = False,
    ) -> tuple[list[Role], dict[str, CfUser]]:
        """Roles matching all given filters (values within one filter OR together).

        Note: ``organization_guids`` matches org roles only, never space roles
        in that org's spaces. An empty filter sequence matches nothing.
        With ``include_users`` the second element maps user guid → user.
        """
        extra = {"include": "user"} if include_users else None
        filters = {
            "types": types,
            "user_guids": user_guids,
            "organization_guids": organization_guids,
            "space_guids": space_guids,
            "guids": guids,
        }
        roles: dict[str, Role] = {}
        users: dict[str, CfUser] = {}
        for page in self._cc_list("/v3/roles", filters, extra):
            for res in page.get("resources") or []:
                role = parse_role(res)
                roles[role.guid] = role
            for res in (page.get("included") or {}).get("users") or []:
                user = parse_cf_user(res)
                users[user.guid] = user
        return list(roles.values()), users

    def get_role(self, guid: str) -> Role | None:
        """``GET /v3/roles/<guid>``; None when it does not exist (404)."""
        body = self._get_json("cc", f"/v3/roles/{guid}", allow_404=True)
        return parse_role(body) if body is not None else None

    def find_role(
        self, type: str, user_guid: str, *, org_guid: str | None = None, space_guid: str | None = None
    ) -> Role | None:
        roles, _ = self.list_roles(
            types=[type],
            user_guids=[user_guid],
            organization_guids=[org_guid] if org_guid is not None else None,
            space_guids=[space_guid] if space_guid is not None else None,
        )
        for role in roles:
            if (
                role.type == type
                and role.user_guid == user_guid
                and role.org_guid == org_guid
                and role.space_guid == space_guid
            ):
                return role
        return None

    def create_role(
        self, type: str, user_guid: str, *, org_guid: str | None = None, space_guid: str | None = None
    ) -> Role:
        """``POST /v3/roles`` by user guid. Idempotent: an existing role is adopted
        (422 "already has", or found by lookup after an ambiguous failure)."""
        if (org_guid is None) == (space_guid is None):
            raise ValueError("create_role needs exactly one of org_guid and space_guid")
        if org_guid is not None and type not in ORG_ROLE_TYPES:
            raise ValueError(f"{type!r} is not an organization role type")
        if space_guid is not None and type not in SPACE_ROLE_TYPES:
            raise ValueError(f"{type!r} is not a space role type")
        scope = (
            {"organization": {"data": {"guid": org_guid}}}
            if org_guid
            else {"space": {"data": {"guid": space_guid}}}
        )
        body = {"type": type, "relationships": {"user": {"data": {"guid": user_guid}}, **scope}}
        path = "/v3/roles"
        url = self.api_url + path

        def lookup() -> Role | None:
            return self.find_role(type, user_guid, org_guid=org_guid, space_guid=space_guid)

        def once() -> Role:
            resp = self._attempt("POST", url, service="cc", path=path, json_body=body)
            if resp.status_code in (200, 201):
                return parse_role(_json_body(resp))
            err = self._cc_error(resp, "POST", path)
            if err.is_already_has_role:
                found = lookup()
                if found is not None:
                    self._event("adopt_role")
                    return found
            raise err

        return self._with_retries("POST", path, "cc", once, recover=lookup)

    def delete_role(self, guid: str) -> None:
        """``DELETE /v3/roles/<guid>``: 202 → poll the job; 404 → already gone."""
        self._delete_with_job(f"/v3/roles/{guid}")

    def delete_roles(self, guids: Sequence[str]) -> dict[str, BaseException]:
        """Delete many roles; returns the failures by role guid (empty: all gone).

        CC answers each DELETE with a job. Instead of polling every job, wait one poll
        interval, then list the roles that are still there (``guids`` filter, one request
        per ~100): a role that is gone is deleted, whatever its job says. Only the jobs of
        roles still listed are polled (a failed job names CF's reason)."""
        jobs: dict[str, str] = {}
        lock = threading.Lock()

        def submit(guid: str) -> None:
            path = f"/v3/roles/{guid}"
            resp = self._request("DELETE", "cc", path)
            if resp.status_code == 404:
                self._event("delete_already_gone")
            elif resp.status_code == 202 and resp.headers.get("Location"):
                with lock:
                    jobs[guid] = resp.headers["Location"]
            elif resp.status_code not in (200, 202, 204):
                raise self._cc_error(resp, "DELETE", path)

        failures = self._map_failures(submit, guids)
        if not jobs:
            return failures
        self._sleep(self.job_poll_interval_s)
        remaining, _ = self.list_roles(guids=sorted(jobs))
        failures.update(self._map_failures(lambda g: self.wait_for_job(jobs[g]), [r.guid for r in remaining]))
        return failures

    def _map_failures(self, fn: Callable[[str], object], items: Sequence[str]) -> dict[str, BaseException]:
        try:
            self.map_concurrently(fn, items)
        except BatchError as batch:
            return {str(item): exc for item, exc in batch.failures}
        return {}

    def _delete_with_job(self, path: str) -> None:
        resp = self._request("DELETE", "cc", path)
        if resp.status_code == 404:
            self._event("delete_already_gone")
            return
        if resp.status_code == 202:
            location = resp.headers.get("Location")
            if location:
                self.wait_for_job(location)
            return
        if resp.status_code in (200, 204):
            return
        raise self._cc_error(resp, "DELETE", path)

    # ------------------------------------------------------------------ jobs

    def wait_for_job(self, location_or_guid: str) -> Job:
        """Poll ``/v3/jobs/<guid>`` until COMPLETE; FAILED → :class:`JobFailedError`."""
        if "/" in location_or_guid:
            url = self._retarget(location_or_guid)
            guid = httpx.URL(url).path.rstrip("/").rsplit("/", 1)[-1]
        else:
            guid = location_or_guid
            url = f"{self.api_url}/v3/jobs/{guid}"
        path = f"/v3/jobs/{guid}"
        started = self._clock()
        interval = self.job_poll_interval_s
        max_interval = max(self.job_poll_interval_s, 2.0)
        while True:
            job = parse_job(self._get_json("cc", path, url=url))
            if job.state == "COMPLETE":
                return job
            if job.state == "FAILED":
                items = [
                    CfErrorItem(
                        code=e.get("code") if isinstance(e.get("code"), int) else None,
                        title=str(e.get("title") or "JobFailed"),
                        detail=self._redact(str(e.get("detail") or "")),
                    )
                    for e in job.errors
                ]
                raise JobFailedError(job.guid, job.operation, items, "GET", path)
            waited = self._clock() - started
            if waited >= self.job_timeout_s:
                raise JobTimeoutError(job.guid, job.state, waited)
            self._sleep(min(interval, max(0.0, self.job_timeout_s - waited)))
            interval = min(interval * 1.5, max_interval)

    # ------------------------------------------------------------------ UAA

    def list_uaa_users(self, filter: str | None = None) -> list[UaaUser]:
        params = {"attributes": "id,userName,origin"}
        if filter:
            params["filter"] = filter
        out: dict[str, UaaUser] = {}
        for page in self._uaa_pages("/Users", params):
            for res in page.get("resources") or []:
                user = parse_uaa_user(res)
                out[user.id] = user
        return list(out.values())

    def get_uaa_user(self, id: str) -> UaaUser | None:
        """``GET <uaa>/Users/<id>``; None when it does not exist (404)."""
        body = self._get_json("uaa", f"/Users/{id}", allow_404=True)
        return parse_uaa_user(body) if body is not None else None

    def find_uaa_user(self, username: str, origin: str) -> UaaUser | None:
        flt = f"userName eq {_uaa_filter_value(username)} and origin eq {_uaa_filter_value(origin)}"
        users = self.list_uaa_users(flt)
        for user in users:  # exact match first; UAA compares case-insensitively
            if user.username == username and user.origin == origin:
                return user
        for user in users:
            if user.username.lower() == username.lower() and user.origin.lower() == origin.lower():
                return user
        return None

    def create_uaa_user(self, username: str, origin: str, email: str | None = None) -> UaaUser:
        """Create a UAA shadow user; an existing one (409) is adopted."""
        path = "/Users"
        body = {
            "userName": username,
            "origin": origin,
            "emails": [{"value": email or username, "primary": True}],
            "active": True,
            "verified": True,
        }

        def lookup() -> UaaUser | None:
            return self.find_uaa_user(username, origin)

        def once() -> UaaUser:
            resp = self._attempt("POST", self.uaa_url + path, service="uaa", path=path, json_body=body)
            if resp.status_code in (200, 201):
                return parse_uaa_user(_json_body(resp))
            err = self._uaa_error(resp, "POST", path)
            if resp.status_code == 409 and err.error == "scim_resource_already_exists":
                self._event("adopt_uaa_user")
                data = _json_body(resp)
                user_id = data.get("user_id") if isinstance(data, dict) else None
                if user_id:
                    return UaaUser(id=str(user_id), username=username, origin=origin)
                found = lookup()
                if found is not None:
                    return found
            raise err

        return self._with_retries("POST", path, "uaa", once, recover=lookup)

    def delete_uaa_user(self, id: str) -> None:
        """``DELETE <uaa>/Users/<id>`` with ``If-Match: *``; 404 = already gone."""
        path = f"/Users/{id}"
        resp = self._request("DELETE", "uaa", path, headers={"If-Match": "*"})
        if resp.status_code == 404:
            self._event("delete_already_gone")
            return
        if resp.status_code not in (200, 204):
            raise self._uaa_error(resp, "DELETE", path)

    def ensure_user(self, username: str, origin: str, *, probably_missing: bool = False) -> CfUser:
        """UAA find-or-create (shadow user), then CC get-or-create by the UAA id.

        ``probably_missing``: the caller's bulk user list did not have this user, so
        create straight away (2 calls instead of 4); both creates adopt an existing
        user (UAA 409, CC 422), so this stays correct when the list was stale."""
        if probably_missing:
            uaa = self.create_uaa_user(username, origin)
            user = self.create_user(uaa.id)
        else:
            uaa = self.find_uaa_user(username, origin) or self.create_uaa_user(username, origin)
            user = self.get_user(uaa.id) or self.create_user(uaa.id)
        if user.username is None or user.origin is None:
            user = CfUser(guid=user.guid, username=uaa.username, origin=uaa.origin)
        return user

    # ------------------------------------------------------------------ concurrency

    def _get_executor(self) -> ThreadPoolExecutor:
        with self._executor_lock:
            if self._executor is None:
                if self._closed:
                    raise CfApiError("CloudFoundryClient is closed")
                self._executor = ThreadPoolExecutor(
                    max_workers=self.concurrency,
                    thread_name_prefix="cf-client",
                    initializer=self._mark_worker,
                )
            return self._executor

    def _mark_worker(self) -> None:
        self._local.worker = True

    def map_concurrently(self, fn: Callable[[T], R], items: Iterable[T], limit: int | None = None) -> list[R]:
        """Apply ``fn`` to every item on the client's bounded pool; results in input order.

        Every item is attempted. If any fail, :class:`BatchError` lists *all*
        failures (and carries the successful results). ``limit`` lowers the
        number of items in flight for this call. Called from inside a pool
        worker it runs sequentially (no nested-pool deadlock).
        """
        seq = list(items)
        results: list[Any] = [None] * len(seq)
        ok = [False] * len(seq)
        failures: list[tuple[int, BaseException]] = []
        width = min(self.concurrency, limit or self.concurrency, len(seq))
        if width <= 1 or getattr(self._local, "worker", False):
            for index, item in enumerate(seq):
                try:
                    results[index] = fn(item)
                    ok[index] = True
                except Exception as exc:
                    failures.append((index, exc))
        else:
            executor = self._get_executor()
            pending: dict[Future[R], int] = {}
            queue = iter(enumerate(seq))
            exhausted = False
            while True:
                while not exhausted and len(pending) < width:
                    nxt = next(queue, None)
                    if nxt is None:
                        exhausted = True
                        break
                    pending[executor.submit(fn, nxt[1])] = nxt[0]
                if not pending:
                    break
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    index = pending.pop(fut)
                    error = fut.exception()
                    if error is None:
                        results[index] = fut.result()
                        ok[index] = True
                    else:
                        failures.append((index, error))
        if failures:
            failures.sort(key=lambda f: f[0])
            raise BatchError(
                [(seq[i], exc) for i, exc in failures],
                total=len(seq),
                results=[r for r, good in zip(results, ok, strict=True) if good],
            )
        return results


def client_for(connection: CfConnection) -> CloudFoundryClient:
    """The client for a validated stack connection (scopes checked before each request)."""
    return CloudFoundryClient(
        connection.api_url,
        connection.client_id,
        connection.client_secret.get_secret_value(),
        concurrency=connection.concurrency,
        verify_tls=not connection.skip_tls_verify,
        check_scopes=True,
        uaa_url=connection.uaa_url,
    )
