"""Unit tests for the CC V3 + UAA client against an in-process fake (httpx.MockTransport)."""

from __future__ import annotations

import base64
import email.utils
import json
import logging
import pickle
import random
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from components.cloudfoundry.client import CloudFoundryClient, path_template
from components.cloudfoundry.errors import (
    BatchError,
    CfConnectionError,
    CloudFoundryError,
    JobFailedError,
    JobTimeoutError,
    UaaError,
)
from components.cloudfoundry.models import CfUser, Role, UaaUser
from components.cloudfoundry.query import chunk_filters
from components.cloudfoundry.retry import parse_retry_after

RATE_LIMIT_BODY = b'{"errors":[{"detail":"Rate Limit Exceeded","title":"CF-RateLimitExceeded","code":10013}]}'
API = "https://api.cf.test"
UAA = "https://uaa.cf.test"
SECRET = "s3cr3t-VALUE-never-shown"
CLIENT_ID = "cf-access"


def cc_error(status: int, code: int, title: str, detail: str, **headers: str) -> httpx.Response:
    return httpx.Response(
        status, json={"errors": [{"detail": detail, "title": title, "code": code}]}, headers=headers
    )


@dataclass
class Fault:
    """Scripted misbehaviour for the next matching request(s)."""

    method: str
    path: str  # prefix match on the path
    response: Callable[[], httpx.Response] | None = None
    exc: type[Exception] | None = None
    after: bool = False  # apply after the request was processed (ambiguous failure)
    times: int = 1


class _ChaosStatus(Exception):
    def __init__(self, status: int) -> None:
        self.status = status


@dataclass
class FakeCF:
    expires_in: int = 3600
    tokens: list[str] = field(default_factory=list)
    valid_tokens: set[str] = field(default_factory=set)
    orgs: dict[str, dict[str, Any]] = field(default_factory=dict)
    spaces: dict[str, dict[str, Any]] = field(default_factory=dict)
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    roles: dict[str, dict[str, Any]] = field(default_factory=dict)
    uaa_users: dict[str, dict[str, Any]] = field(default_factory=dict)
    jobs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # guid -> states to serve
    faults: list[Fault] = field(default_factory=list)
    log: list[httpx.Request] = field(default_factory=list)
    per_page_cap: int = 5000
    uaa_409_user_id: bool = True
    next_host: str = API
    lock: threading.RLock = field(default_factory=threading.RLock)

    # ----------------------------------------------------------------- helpers
    def calls(self, method: str, path: str) -> int:
        return sum(1 for r in self.log if r.method == method and r.url.path == path)

    def add_org(self, name: str) -> str:
        guid = str(uuid.uuid4())
        self.orgs[guid] = {"guid": guid, "name": name}
        return guid

    def add_space(self, name: str, org: str) -> str:
        guid = str(uuid.uuid4())
        self.spaces[guid] = {
            "guid": guid,
            "name": name,
            "relationships": {"organization": {"data": {"guid": org}}},
        }
        return guid

    def add_user(self, guid: str, username: str | None = None, origin: str | None = None) -> None:
        self.users[guid] = {"guid": guid, "username": username, "origin": origin}

    def add_role(self, type_: str, user: str, org: str | None = None, space: str | None = None) -> str:
        guid = str(uuid.uuid4())
        self.roles[guid] = {
            "guid": guid,
            "type": type_,
            "relationships": {
                "user": {"data": {"guid": user}},
                "organization": {"data": {"guid": org} if org else None},
                "space": {"data": {"guid": space} if space else None},
            },
        }
        if user not in self.users:
            self.add_user(user)
        return guid

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    # ----------------------------------------------------------------- dispatch
    def _fault(self, request: httpx.Request, after: bool) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if (
                    fault.after == after
                    and fault.times > 0
                    and fault.method == request.method
                    and request.url.path.startswith(fault.path)
                ):
                    fault.times -= 1
                    return fault
        return None

    def _apply(self, fault: Fault, request: httpx.Request) -> httpx.Response:
        if fault.exc is not None:
            raise fault.exc("injected", request=request)  # type: ignore[call-arg]
        assert fault.response is not None
        return fault.response()

    chaos: random.Random | None = None  # random before/after faults on every request
    chaos_rate: float = 0.0

    def _chaos(self, request: httpx.Request) -> None:
        if self.chaos is None or request.url.path in ("/", "/oauth/token"):
            return
        with self.lock:
            roll = self.chaos.random()
            kind = self.chaos.choice(["500", "503", "429", "drop", "timeout"])
        if roll < self.chaos_rate:
            if kind == "drop":
                raise httpx.RemoteProtocolError("injected", request=request)
            if kind == "timeout":
                raise httpx.ReadTimeout("injected", request=request)
            raise _ChaosStatus(int(kind))

    def handle(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            self.log.append(request)
        fault = self._fault(request, after=False)
        if fault is not None:
            return self._apply(fault, request)
        try:
            self._chaos(request)
        except _ChaosStatus as st:
            return httpx.Response(st.status, headers={"Retry-After": "0"} if st.status == 429 else {})
        with self.lock:
            response = self._route(request)
        fault = self._fault(request, after=True)
        if fault is not None:
            return self._apply(fault, request)
        try:
            self._chaos(request)  # after processing: the ambiguous kind
        except _ChaosStatus as st:
            return httpx.Response(st.status)
        return response

    def _route(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        host = f"{url.scheme}://{url.host}"
        path = url.path
        if host == UAA:
            return self._uaa(request)
        if path == "/" and request.method == "GET":
            return httpx.Response(200, json={"links": {"uaa": {"href": UAA}, "login": {"href": UAA}}})
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("bearer ") or auth[7:] not in self.valid_tokens:
            return cc_error(401, 1000, "CF-InvalidAuthToken", "Invalid Auth Token")
        q = {k: v[0] for k, v in parse_qs(url.query.decode(), keep_blank_values=True).items()}
        parts = path.strip("/").split("/")
        if request.method == "GET" and path == "/v3/roles":
            return self._list_roles(q)
        if request.method == "GET" and path == "/v3/organizations":
            return self._page([o for o in self.orgs.values() if self._match(q, "names", o["name"])], q, path)
        if request.method == "GET" and path == "/v3/spaces":
            items = [
                s
                for s in self.spaces.values()
                if self._match(q, "names", s["name"])
                and self._match(q, "organization_guids", s["relationships"]["organization"]["data"]["guid"])
            ]
            return self._page(items, q, path)
        if request.method == "GET" and path == "/v3/users":
            if "origins" in q and "usernames" not in q:
                return cc_error(422, 10008, "CF-UnprocessableEntity", "Origins filter cannot be provided")
            items = [
                u
                for u in self.users.values()
                if self._match(q, "guids", u["guid"])
                and self._match(q, "usernames", u["username"])
                and self._match(q, "origins", u["origin"])
            ]
            return self._page(items, q, path)
        if request.method == "GET" and parts[:2] == ["v3", "roles"] and len(parts) == 3:
            role = self.roles.get(parts[2])
            if role is None:
                return cc_error(404, 10010, "CF-ResourceNotFound", "Role not found")
            return httpx.Response(200, json=role)
        if request.method == "GET" and parts[:2] == ["v3", "users"] and len(parts) == 3:
            user = self.users.get(parts[2])
            if user is None:
                return cc_error(404, 10010, "CF-ResourceNotFound", "User not found")
            return httpx.Response(200, json=user)
        if request.method == "POST" and path == "/v3/users":
            body = json.loads(request.content)
            if body["guid"] in self.users:
                return cc_error(
                    422, 10008, "CF-UnprocessableEntity", f"User with guid '{body['guid']}' already exists."
                )
            self.add_user(body["guid"])
            return httpx.Response(201, json=self.users[body["guid"]])
        if request.method == "POST" and path == "/v3/roles":
            return self._create_role(json.loads(request.content))
        if request.method == "DELETE" and parts[:2] in (["v3", "roles"], ["v3", "users"]) and len(parts) == 3:
            store = self.roles if parts[1] == "roles" else self.users
            if parts[2] not in store:
                return cc_error(404, 10010, "CF-ResourceNotFound", "Role not found")
            del store[parts[2]]
            job = str(uuid.uuid4())
            self.jobs.setdefault(job, [{"state": "PROCESSING"}, {"state": "COMPLETE"}])
            return httpx.Response(
                202, headers={"Location": f"https://other-host.example/v3/jobs/{job}"}, content=b""
            )
        if request.method == "GET" and parts[:2] == ["v3", "jobs"]:
            states = self.jobs.get(parts[2])
            if states is None:
                return cc_error(404, 10010, "CF-ResourceNotFound", "Job not found")
            state = states.pop(0) if len(states) > 1 else states[0]
            return httpx.Response(
                200,
                json={"guid": parts[2], "operation": "role.delete", "errors": [], "warnings": [], **state},
            )
        return cc_error(404, 10000, "CF-NotFound", "Unknown request")

    @staticmethod
    def _match(q: dict[str, str], key: str, value: str | None) -> bool:
        if key not in q:
            return True
        return value in q[key].split(",")

    def _page(self, items: list[dict[str, Any]], q: dict[str, str], path: str) -> httpx.Response:
        per_page = min(int(q.get("per_page", "50")), self.per_page_cap)
        page = int(q.get("page", "1"))
        chunk = items[(page - 1) * per_page : page * per_page]
        nxt = None
        if page * per_page < len(items):
            nq = {**q, "page": str(page + 1)}
            nxt = {"href": str(httpx.URL(self.next_host + path, params=nq))}
        body: dict[str, Any] = {
            "pagination": {"total_results": len(items), "next": nxt},
            "resources": chunk,
        }
        return httpx.Response(200, json=body)

    def _list_roles(self, q: dict[str, str]) -> httpx.Response:
        def rel(r: dict[str, Any], name: str) -> str | None:
            data = r["relationships"][name]["data"]
            return data["guid"] if data else None

        items = [
            r
            for r in self.roles.values()
            if self._match(q, "types", r["type"])
            and self._match(q, "user_guids", rel(r, "user"))
            and (
                "organization_guids" not in q or rel(r, "organization") in q["organization_guids"].split(",")
            )
            and ("space_guids" not in q or rel(r, "space") in q["space_guids"].split(","))
        ]
        resp = self._page(items, q, "/v3/roles")
        if q.get("include") == "user":
            body = json.loads(resp.content)
            guids = {rel(r, "user") for r in body["resources"]}
            body["included"] = {"users": [u for g, u in self.users.items() if g in guids]}
            resp = httpx.Response(200, json=body)
        return resp

    def _create_role(self, body: dict[str, Any]) -> httpx.Response:
        rels = body["relationships"]
        user = rels["user"]["data"]["guid"]
        org = (rels.get("organization") or {}).get("data", {}).get("guid") if "organization" in rels else None
        space = (rels.get("space") or {}).get("data", {}).get("guid") if "space" in rels else None
        for r in self.roles.values():
            rr = r["relationships"]
            if (
                r["type"] == body["type"]
                and rr["user"]["data"]["guid"] == user
                and (rr["organization"]["data"] or {}).get("guid") == org
                and (rr["space"]["data"] or {}).get("guid") == space
            ):
                where = f"organization '{org}'" if org else f"space '{space}'"
                return cc_error(
                    422,
                    10008,
                    "CF-UnprocessableEntity",
                    f"User '{user}' already has '{body['type']}' role in {where}.",
                )
        guid = self.add_role(body["type"], user, org=org, space=space)
        return httpx.Response(201, json=self.roles[guid])

    # ----------------------------------------------------------------- UAA
    def _uaa(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/oauth/token":
            expected = "Basic " + base64.b64encode(f"{CLIENT_ID}:{SECRET}".encode()).decode()
            if request.headers.get("Authorization") != expected:
                return httpx.Response(
                    401, json={"error": "unauthorized", "error_description": "Bad credentials"}
                )
            assert b"grant_type=client_credentials" in request.content
            token = f"tok-{len(self.tokens)}-{uuid.uuid4()}"
            self.tokens.append(token)
            self.valid_tokens.add(token)
            return httpx.Response(
                200, json={"access_token": token, "token_type": "bearer", "expires_in": self.expires_in}
            )
        auth = request.headers.get("Authorization", "")
        if auth[7:] not in self.valid_tokens:
            return httpx.Response(401, json={"error": "invalid_token", "error_description": "expired"})
        q = {k: v[0] for k, v in parse_qs(request.url.query.decode()).items()}
        if request.method == "GET" and path == "/Users":
            flt = q.get("filter", "")
            items = [u for u in self.uaa_users.values() if self._uaa_filter(flt, u)]
            start = int(q.get("startIndex", "1"))
            count = min(int(q.get("count", "100")), 500)
            page = items[start - 1 : start - 1 + count]
            return httpx.Response(
                200,
                json={
                    "resources": page,
                    "startIndex": start,
                    "itemsPerPage": count,
                    "totalResults": len(items),
                },
            )
        if request.method == "POST" and path == "/Users":
            body = json.loads(request.content)
            for u in self.uaa_users.values():
                if u["userName"].lower() == body["userName"].lower() and u["origin"] == body["origin"]:
                    err: dict[str, Any] = {
                        "error": "scim_resource_already_exists",
                        "error_description": f"Username already in use: {u['userName']}",
                        "origin": u["origin"],
                    }
                    if self.uaa_409_user_id:
                        err["user_id"] = u["id"]
                    return httpx.Response(409, json=err)
            uid = str(uuid.uuid4())
            self.uaa_users[uid] = {"id": uid, **body}
            return httpx.Response(201, json=self.uaa_users[uid], headers={"ETag": '"0"'})
        if request.method == "GET" and path.startswith("/Users/"):
            found = self.uaa_users.get(path.rsplit("/", 1)[1])
            if found is None:
                return httpx.Response(404, json={"error": "scim_resource_not_found"})
            return httpx.Response(200, json=found)
        if request.method == "DELETE" and path.startswith("/Users/"):
            assert request.headers.get("If-Match") == "*"
            uid = path.rsplit("/", 1)[1]
            if uid not in self.uaa_users:
                return httpx.Response(
                    404,
                    json={
                        "error": "scim_resource_not_found",
                        "error_description": f"User {uid} does not exist",
                    },
                )
            return httpx.Response(200, json=self.uaa_users.pop(uid))
        return httpx.Response(404, json={"error": "not_found"})

    @staticmethod
    def _uaa_filter(flt: str, user: dict[str, Any]) -> bool:
        if not flt:
            return True
        # only the form the client sends: userName eq "x" and origin eq "y"
        import re

        m = re.fullmatch(r'userName eq "((?:[^"\\]|\\.)*)" and origin eq "((?:[^"\\]|\\.)*)"', flt)
        assert m, flt

        def unescape(s: str) -> str:
            return re.sub(r"\\(.)", r"\1", s)

        return bool(
            user["userName"].lower() == unescape(m.group(1)).lower()
            and user["origin"].lower() == unescape(m.group(2)).lower()
        )


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0
        self.wall = 1_700_000_000.0
        self.sleeps: list[float] = []
        self.lock = threading.Lock()

    def clock(self) -> float:
        return self.now

    def wall_clock(self) -> float:
        return self.wall

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.sleeps.append(seconds)
            self.now += seconds
            self.wall += seconds


@pytest.fixture
def fake() -> FakeCF:
    return FakeCF()


@pytest.fixture
def ftime() -> FakeTime:
    return FakeTime()


def make_client(fake: FakeCF, ftime: FakeTime, **kw: Any) -> CloudFoundryClient:
    kw.setdefault("rng", random.Random(7))
    return CloudFoundryClient(
        API,
        CLIENT_ID,
        SECRET,
        transport=fake.transport(),
        sleep=ftime.sleep,
        clock=ftime.clock,
        wall_clock=ftime.wall_clock,
        **kw,
    )


@pytest.fixture
def client(fake: FakeCF, ftime: FakeTime) -> Any:
    with make_client(fake, ftime) as c:
        yield c


# =============================================================================== token + discovery


def test_discovery_and_token_cached(fake: FakeCF, client: CloudFoundryClient) -> None:
    org = fake.add_org("o1")
    assert [o.guid for o in client.list_orgs()] == [org]
    assert [o.name for o in client.list_orgs(["o1"])] == ["o1"]
    assert client.uaa_url == UAA
    assert fake.calls("GET", "/") == 1
    assert fake.calls("POST", "/oauth/token") == 1
    counts = client.request_counts()
    assert counts["GET /v3/organizations"] == 2
    assert counts["POST uaa:/oauth/token"] == 1


def test_token_refreshed_before_expiry(fake: FakeCF, ftime: FakeTime, client: CloudFoundryClient) -> None:
    fake.expires_in = 3600
    client.list_orgs()
    ftime.now += 3600 - 61
    client.list_orgs()
    assert len(fake.tokens) == 1
    ftime.now += 2  # within 60 s of expiry
    client.list_orgs()
    assert len(fake.tokens) == 2


def test_short_token_refreshed_at_half_life(
    fake: FakeCF, ftime: FakeTime, client: CloudFoundryClient
) -> None:
    fake.expires_in = 40
    client.list_orgs()
    ftime.now += 19
    client.list_orgs()
    assert len(fake.tokens) == 1
    ftime.now += 2
    client.list_orgs()
    assert len(fake.tokens) == 2


def test_401_refreshes_token_once(fake: FakeCF, client: CloudFoundryClient) -> None:
    client.list_orgs()
    fake.valid_tokens.clear()  # server revoked the token
    client.list_orgs()
    assert len(fake.tokens) == 2
    assert client.event_counts()["token_rejected"] == 1


def test_401_twice_fails(fake: FakeCF, client: CloudFoundryClient) -> None:
    fake.faults.append(
        Fault(
            "GET", "/v3/organizations", lambda: cc_error(401, 1000, "CF-InvalidAuthToken", "Invalid"), times=2
        )
    )
    with pytest.raises(CloudFoundryError) as ei:
        client.list_orgs()
    assert ei.value.status == 401
    assert ei.value.code == 1000
    assert len(fake.tokens) == 2


def test_bad_credentials_raise_uaa_error_without_secret(fake: FakeCF, ftime: FakeTime) -> None:
    with make_client(fake, ftime) as c:
        c._secret = type(c._secret)("wrong-" + SECRET)
        with pytest.raises(UaaError) as ei:
            c.list_orgs()
    assert ei.value.status == 401
    assert "Bad credentials" in str(ei.value)
    assert SECRET not in str(ei.value) and SECRET not in repr(ei.value)


def test_concurrent_first_use_fetches_one_token(fake: FakeCF, ftime: FakeTime) -> None:
    fake.add_org("o")
    with make_client(fake, ftime) as c:
        c.map_concurrently(lambda _: c.list_orgs(), range(16))
    assert len(fake.tokens) == 1
    assert fake.calls("GET", "/") == 1


# =============================================================================== retries


def test_retry_after_seconds(fake: FakeCF, ftime: FakeTime, client: CloudFoundryClient) -> None:
    fake.faults.append(
        Fault(
            "GET",
            "/v3/organizations",
            lambda: cc_error(
                429, 10013, "CF-RateLimitExceeded", "Rate Limit Exceeded", **{"Retry-After": "3"}
            ),
        )
    )
    client.list_orgs()
    assert ftime.sleeps == [3.0]
    assert client.request_counts()["GET /v3/organizations"] == 2
    assert client.event_counts()["retry"] == 1


def test_retry_after_http_date(fake: FakeCF, ftime: FakeTime, client: CloudFoundryClient) -> None:
    when = email.utils.formatdate(ftime.wall + 7, usegmt=True)
    fake.faults.append(
        Fault("GET", "/v3/organizations", lambda: httpx.Response(503, headers={"Retry-After": when}))
    )
    client.list_orgs()
    assert len(ftime.sleeps) == 1
    assert 6.0 <= ftime.sleeps[0] <= 7.0


def test_x_ratelimit_reset_on_429(fake: FakeCF, ftime: FakeTime, client: CloudFoundryClient) -> None:
    reset = str(int(ftime.wall) + 5)
    fake.faults.append(
        Fault(
            "GET",
            "/v3/organizations",
            lambda: httpx.Response(
                429,
                content=RATE_LIMIT_BODY,
                headers={"Content-Type": "text/plain; charset=utf-8", "X-RateLimit-Reset": reset},
            ),
        )
    )
    client.list_orgs()
    assert ftime.sleeps == [5.0]


def test_server_hint_capped_by_backoff_max(fake: FakeCF, ftime: FakeTime) -> None:
    fake.faults.append(
        Fault("GET", "/v3/organizations", lambda: httpx.Response(429, headers={"Retry-After": "3600"}))
    )
    with make_client(fake, ftime, backoff_max_s=4) as c:
        c.list_orgs()
    assert ftime.sleeps == [4.0]


def test_exponential_full_jitter_and_exhaustion(fake: FakeCF, ftime: FakeTime) -> None:
    fake.faults.append(
        Fault(
            "GET",
            "/v3/organizations",
            lambda: httpx.Response(
                429,
                content=RATE_LIMIT_BODY,
                headers={"Content-Type": "text/plain; charset=utf-8"},
            ),
            times=100,
        )
    )
    with (
        make_client(fake, ftime, max_retries=4, backoff_base_s=1, backoff_max_s=5) as c,
        pytest.raises(CloudFoundryError) as ei,
    ):
        c.list_orgs()
    err = ei.value
    # the 429 body is JSON even though it says text/plain
    assert (err.status, err.code, err.title) == (429, 10013, "CF-RateLimitExceeded")
    assert str(err) == "GET /v3/organizations failed: 429 CF-RateLimitExceeded (10013): Rate Limit Exceeded"
    assert len(ftime.sleeps) == 4
    for n, slept in enumerate(ftime.sleeps, start=1):
        assert 0 <= slept <= min(5, 2 ** (n - 1))
    assert fake.calls("GET", "/v3/organizations") == 5


@pytest.mark.parametrize("exc", [httpx.ConnectError, httpx.ReadTimeout, httpx.RemoteProtocolError])
def test_transport_errors_retried(fake: FakeCF, client: CloudFoundryClient, exc: type[Exception]) -> None:
    fake.add_org("o")
    fake.faults.append(Fault("GET", "/v3/organizations", exc=exc, times=2))
    assert len(client.list_orgs()) == 1
    assert client.event_counts()["retry"] == 2


def test_transport_errors_exhausted(fake: FakeCF, ftime: FakeTime) -> None:
    fake.faults.append(Fault("GET", "/v3/organizations", exc=httpx.ConnectError, times=100))
    with make_client(fake, ftime, max_retries=2) as c, pytest.raises(CfConnectionError) as ei:
        c.list_orgs()
    assert "GET /v3/organizations failed: ConnectError" in str(ei.value)


def test_4xx_not_retried(fake: FakeCF, client: CloudFoundryClient) -> None:
    fake.faults.append(
        Fault("GET", "/v3/organizations", lambda: cc_error(400, 10005, "CF-BadQueryParameter", "bad"))
    )
    with pytest.raises(CloudFoundryError) as ei:
        client.list_orgs()
    assert ei.value.status == 400
    assert fake.calls("GET", "/v3/organizations") == 1


def test_parse_retry_after() -> None:
    assert parse_retry_after("2", 0) == 2.0
    assert parse_retry_after("1.5", 0) == 1.5
    assert parse_retry_after("garbage", 0) is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1445412470.0) == 10.0


# =============================================================================== role writes


@pytest.fixture
def org_user(fake: FakeCF) -> tuple[str, str, str]:
    org = fake.add_org("org")
    space = fake.add_space("dev", org)
    user = str(uuid.uuid4())
    fake.add_user(user, "alice", "okta")
    return org, space, user


def test_create_role(fake: FakeCF, client: CloudFoundryClient, org_user: tuple[str, str, str]) -> None:
    org, space, user = org_user
    role = client.create_role("organization_user", user, org_guid=org)
    assert role == Role(role.guid, "organization_user", user, org, None)
    srole = client.create_role("space_developer", user, space_guid=space)
    assert srole.space_guid == space and srole.org_guid is None
    assert client.get_role(srole.guid) == srole
    assert client.get_role("missing") is None
    assert len(fake.roles) == 2


def test_create_role_validates_arguments(client: CloudFoundryClient) -> None:
    with pytest.raises(ValueError):
        client.create_role("organization_user", "u")
    with pytest.raises(ValueError):
        client.create_role("space_developer", "u", org_guid="o")
    with pytest.raises(ValueError):
        client.create_role("organization_user", "u", space_guid="s")


def test_create_role_already_has_is_adopted(
    fake: FakeCF, client: CloudFoundryClient, org_user: tuple[str, str, str]
) -> None:
    org, _, user = org_user
    existing = fake.add_role("organization_manager", user, org=org)
    role = client.create_role("organization_manager", user, org_guid=org)
    assert role.guid == existing
    assert len(fake.roles) == 1
    assert client.event_counts()["adopt_role"] == 1


@pytest.mark.parametrize(
    "fault",
    [
        Fault("POST", "/v3/roles", lambda: cc_error(500, 10001, "UnknownError", "boom"), after=True),
        Fault("POST", "/v3/roles", lambda: httpx.Response(502), after=True),
        Fault("POST", "/v3/roles", exc=httpx.ReadTimeout, after=True),
        Fault("POST", "/v3/roles", exc=httpx.RemoteProtocolError, after=True),
    ],
    ids=["500", "502", "read-timeout", "dropped"],
)
def test_ambiguous_post_failure_adopts_created_role(
    fake: FakeCF, client: CloudFoundryClient, org_user: tuple[str, str, str], fault: Fault
) -> None:
    org, _, user = org_user
    fake.faults.append(fault)
    role = client.create_role("organization_auditor", user, org_guid=org)
    assert len(fake.roles) == 1
    assert role.guid in fake.roles
    assert fake.calls("POST", "/v3/roles") == 1  # never re-POSTed
    assert fake.calls("GET", "/v3/roles") == 1  # looked it up
    assert client.event_counts()["adopt_after_ambiguous"] == 1


def test_ambiguous_post_failure_not_applied_is_retried(
    fake: FakeCF, client: CloudFoundryClient, org_user: tuple[str, str, str]
) -> None:
    org, _, user = org_user
    fake.faults.append(Fault("POST", "/v3/roles", lambda: httpx.Response(503), after=False))
    role = client.create_role("organization_auditor", user, org_guid=org)
    assert list(fake.roles) == [role.guid]
    assert fake.calls("POST", "/v3/roles") == 2
    assert fake.calls("GET", "/v3/roles") == 1


def test_unambiguous_post_failure_retried_without_lookup(
    fake: FakeCF, client: CloudFoundryClient, org_user: tuple[str, str, str]
) -> None:
    org, _, user = org_user
    fake.faults.append(Fault("POST", "/v3/roles", lambda: httpx.Response(429, headers={"Retry-After": "1"})))
    fake.faults.append(Fault("POST", "/v3/roles", exc=httpx.ConnectError))
    client.create_role("organization_auditor", user, org_guid=org)
    assert len(fake.roles) == 1
    assert fake.calls("POST", "/v3/roles") == 3
    assert fake.calls("GET", "/v3/roles") == 0


def test_ambiguous_failure_on_last_attempt_still_adopts(
    fake: FakeCF, ftime: FakeTime, org_user: tuple[str, str, str]
) -> None:
    org, _, user = org_user
    fake.faults.append(Fault("POST", "/v3/roles", exc=httpx.ReadTimeout, after=True))
    with make_client(fake, ftime, max_retries=0) as c:
        role = c.create_role("organization_auditor", user, org_guid=org)
    assert role.guid in fake.roles


def test_space_role_org_membership_error_surfaces(
    fake: FakeCF, client: CloudFoundryClient, org_user: tuple[str, str, str]
) -> None:
    _, space, user = org_user
    detail = (
        "Users cannot be assigned roles in a space if they do not have a role in that space's organization."
    )
    fake.faults.append(
        Fault("POST", "/v3/roles", lambda: cc_error(422, 10008, "CF-UnprocessableEntity", detail))
    )
    with pytest.raises(CloudFoundryError) as ei:
        client.create_role("space_developer", user, space_guid=space)
    assert str(ei.value) == f"POST /v3/roles failed: 422 CF-UnprocessableEntity (10008): {detail}"
    assert not ei.value.is_already_has_role


# =============================================================================== deletes + jobs


def test_delete_role_polls_job(fake: FakeCF, ftime: FakeTime, client: CloudFoundryClient) -> None:
    guid = fake.add_role("organization_user", "u1", org=fake.add_org("o"))
    client.delete_role(guid)
    assert guid not in fake.roles
    assert client.request_counts()["GET /v3/jobs/{guid}"] == 2  # PROCESSING, COMPLETE
    assert ftime.sleeps == [pytest.approx(0.2)]


def test_delete_role_404_is_already_gone(fake: FakeCF, client: CloudFoundryClient) -> None:
    client.delete_role("missing")
    assert client.event_counts()["delete_already_gone"] == 1


def test_delete_retried_after_ambiguous_failure_then_404(fake: FakeCF, client: CloudFoundryClient) -> None:
    guid = fake.add_role("organization_user", "u1", org=fake.add_org("o"))
    fake.faults.append(Fault("DELETE", "/v3/roles", exc=httpx.ReadTimeout, after=True))
    client.delete_role(guid)
    assert guid not in fake.roles
    assert fake.calls("DELETE", f"/v3/roles/{guid}") == 2


def test_delete_org_user_guard_422(fake: FakeCF, client: CloudFoundryClient) -> None:
    msg = "Cannot delete organization_user role while user has roles in spaces in that organization."
    fake.faults.append(
        Fault("DELETE", "/v3/roles", lambda: cc_error(422, 10008, "CF-UnprocessableEntity", msg))
    )
    with pytest.raises(CloudFoundryError) as ei:
        client.delete_role("r")
    assert ei.value.status == 422 and ei.value.detail == msg


def test_job_failed(fake: FakeCF, client: CloudFoundryClient) -> None:
    fake.jobs["j1"] = [
        {"state": "PROCESSING"},
        {
            "state": "FAILED",
            "errors": [
                {"code": 10008, "title": "CF-UnprocessableEntity", "detail": "first"},
                {"code": 10001, "title": "UnknownError", "detail": "second"},
            ],
        },
    ]
    with pytest.raises(JobFailedError) as ei:
        client.wait_for_job(f"{API}/v3/jobs/j1")
    msg = str(ei.value)
    assert "j1" in msg and "first" in msg and "second" in msg
    assert ei.value.code == 10008


def test_job_by_guid_and_timeout(fake: FakeCF, ftime: FakeTime) -> None:
    fake.jobs["j2"] = [{"state": "PROCESSING"}]
    with make_client(fake, ftime, job_timeout_s=5) as c:
        with pytest.raises(JobTimeoutError):
            c.wait_for_job("j2")
        assert sum(ftime.sleeps) == pytest.approx(5.0)
        assert max(ftime.sleeps) <= 2.0


def test_delete_user_polls_job(fake: FakeCF, client: CloudFoundryClient) -> None:
    fake.add_user("u9")
    client.delete_user("u9")
    assert "u9" not in fake.users


# =============================================================================== reads + pagination


def test_pagination_follows_next_href_on_other_host(fake: FakeCF, client: CloudFoundryClient) -> None:
    fake.per_page_cap = 3
    fake.next_host = "https://api.public-name.example"  # server-side URL differs from ours
    org = fake.add_org("o")
    users = [str(uuid.uuid4()) for _ in range(8)]
    for i, u in enumerate(users):
        fake.add_user(u, f"user{i}", "okta")
        fake.add_role("organization_user", u, org=org)
    roles, included = client.list_roles(organization_guids=[org], include_users=True)
    assert {r.user_guid for r in roles} == set(users)
    assert included[users[0]] == CfUser(users[0], "user0", "okta")
    assert fake.calls("GET", "/v3/roles") == 3
    assert all(r.url.host == "api.cf.test" for r in fake.log if r.url.path == "/v3/roles")
    first = fake.log[[r.url.path for r in fake.log].index("/v3/roles")]
    assert first.url.params["per_page"] == "5000"


def test_list_roles_org_filter_returns_only_org_roles(fake: FakeCF, client: CloudFoundryClient) -> None:
    org = fake.add_org("o")
    space = fake.add_space("s", org)
    fake.add_role("organization_user", "u", org=org)
    fake.add_role("space_developer", "u", space=space)
    roles, users = client.list_roles(organization_guids=[org])
    assert [r.type for r in roles] == ["organization_user"]
    assert users == {}
    roles, _ = client.list_roles(space_guids=[space], types=["space_developer"])
    assert [r.type for r in roles] == ["space_developer"]


def test_empty_filter_matches_nothing_without_request(fake: FakeCF, client: CloudFoundryClient) -> None:
    assert client.list_roles(user_guids=[]) == ([], {})
    assert client.list_users(guids=[]) == []
    assert fake.calls("GET", "/v3/roles") == 0


def test_long_filters_are_chunked(fake: FakeCF, client: CloudFoundryClient) -> None:
    org = fake.add_org("o")
    users = [str(uuid.uuid4()) for _ in range(600)]
    for u in users[::7]:
        fake.add_role("organization_manager", u, org=org)
    roles, _ = client.list_roles(user_guids=users, organization_guids=[org], types=["organization_manager"])
    assert len(roles) == len(users[::7])
    role_calls = [r for r in fake.log if r.url.path == "/v3/roles"]
    assert len(role_calls) > 1
    assert all(len(str(r.url)) < 6000 for r in role_calls)


def test_chunk_filters_cross_product() -> None:
    many = [f"{i:036d}" for i in range(400)]
    queries = chunk_filters({"a": many, "b": many, "types": ["x"]}, budget=3000)
    seen = {(a, b) for q in queries for a in q["a"].split(",") for b in q["b"].split(",")}
    assert len(seen) == 400 * 400
    assert all(q["types"] == "x" for q in queries)
    assert chunk_filters({}) == [{}]
    assert chunk_filters({"a": ["1", "1", "2"]}) == [{"a": "1,2"}]


def test_list_spaces_and_users(fake: FakeCF, client: CloudFoundryClient) -> None:
    o1, o2 = fake.add_org("o1"), fake.add_org("o2")
    s1 = fake.add_space("dev", o1)
    fake.add_space("dev", o2)
    assert [s.guid for s in client.list_spaces([o1], ["dev"])] == [s1]
    assert len(client.list_spaces()) == 2
    fake.add_user("a", "alice", "okta")
    fake.add_user("b", "bob", "ldap")
    fake.add_user("c")  # a client
    assert len(client.list_users()) == 3
    assert [u.guid for u in client.list_users(usernames=["alice"], origins=["okta"])] == ["a"]
    assert [u.guid for u in client.list_users(origins=["ldap"])] == ["b"]  # filtered locally
    assert [u.guid for u in client.list_users(guids=["c"])] == ["c"]


def test_get_and_create_user(fake: FakeCF, client: CloudFoundryClient) -> None:
    assert client.get_user("nope") is None
    created = client.create_user("g1")
    assert created.guid == "g1"
    again = client.create_user("g1")  # 422 already exists -> adopted
    assert again.guid == "g1"
    assert client.event_counts()["adopt_user"] == 1


def test_create_user_ambiguous_adopts(fake: FakeCF, client: CloudFoundryClient) -> None:
    fake.faults.append(Fault("POST", "/v3/users", lambda: httpx.Response(504), after=True))
    assert client.create_user("g2").guid == "g2"
    assert fake.calls("POST", "/v3/users") == 1


# =============================================================================== UAA


def test_uaa_find_escapes_and_creates(fake: FakeCF, client: CloudFoundryClient) -> None:
    name = 'we"ird\\name@corp.com'
    assert client.find_uaa_user(name, "okta") is None
    created = client.create_uaa_user(name, "okta")
    assert created.username == name and created.origin == "okta"
    assert fake.uaa_users[created.id]["emails"] == [{"value": name, "primary": True}]
    assert client.find_uaa_user(name, "okta") == created
    flt = next(r for r in fake.log if r.url.path == "/Users" and r.method == "GET").url.params["filter"]
    assert flt == 'userName eq "we\\"ird\\\\name@corp.com" and origin eq "okta"'


def test_uaa_create_409_adopts_with_user_id(fake: FakeCF, client: CloudFoundryClient) -> None:
    first = client.create_uaa_user("bob@corp.com", "okta", email="bob@mail")
    second = client.create_uaa_user("bob@corp.com", "okta")
    assert second.id == first.id
    assert fake.calls("GET", "/Users") == 0


def test_uaa_create_409_without_user_id_looks_up(fake: FakeCF, client: CloudFoundryClient) -> None:
    fake.uaa_409_user_id = False
    first = client.create_uaa_user("bob@corp.com", "okta")
    second = client.create_uaa_user("bob@corp.com", "okta")
    assert second == first
    assert fake.calls("GET", "/Users") == 1


def test_uaa_create_ambiguous_adopts(fake: FakeCF, client: CloudFoundryClient) -> None:
    fake.faults.append(Fault("POST", "/Users", exc=httpx.RemoteProtocolError, after=True))
    user = client.create_uaa_user("carol@corp.com", "okta")
    assert list(fake.uaa_users) == [user.id]
    assert fake.calls("POST", "/Users") == 1


def test_uaa_delete(fake: FakeCF, client: CloudFoundryClient) -> None:
    user = client.create_uaa_user("dave@corp.com", "okta")
    assert client.get_uaa_user(user.id) == user
    client.delete_uaa_user(user.id)
    client.delete_uaa_user(user.id)  # 404 is fine
    assert fake.uaa_users == {}
    assert client.get_uaa_user(user.id) is None


def test_uaa_pagination(fake: FakeCF, client: CloudFoundryClient) -> None:
    for i in range(1203):
        uid = f"id{i}"
        fake.uaa_users[uid] = {"id": uid, "userName": f"u{i}", "origin": "okta"}
    users = client.list_uaa_users()
    assert len(users) == 1203
    starts = [r.url.params["startIndex"] for r in fake.log if r.url.path == "/Users"]
    assert starts == ["1", "501", "1001"]


def test_uaa_error_shape(fake: FakeCF, client: CloudFoundryClient) -> None:
    fake.faults.append(
        Fault(
            "POST",
            "/Users",
            lambda: httpx.Response(
                403, json={"error": "insufficient_scope", "error_description": "scim.write"}
            ),
        )
    )
    with pytest.raises(UaaError) as ei:
        client.create_uaa_user("x", "okta")
    assert str(ei.value) == "UAA POST /Users failed: 403 insufficient_scope: scim.write"


def test_ensure_user(fake: FakeCF, client: CloudFoundryClient) -> None:
    user = client.ensure_user("erin@corp.com", "okta")
    assert user.username == "erin@corp.com" and user.origin == "okta"
    assert user.guid in fake.users and user.guid in fake.uaa_users
    again = client.ensure_user("erin@corp.com", "okta")
    assert again.guid == user.guid
    assert fake.calls("POST", "/Users") == 1
    assert fake.calls("POST", "/v3/users") == 1


def test_ensure_user_probably_missing_creates_directly_and_adopts(
    fake: FakeCF, client: CloudFoundryClient
) -> None:
    client.reset_counts()
    user = client.ensure_user("erin@corp.com", "okta", probably_missing=True)
    assert user.username == "erin@corp.com" and user.origin == "okta"
    counts = client.request_counts()
    assert (counts["POST uaa:/Users"], counts["POST /v3/users"]) == (1, 1)
    assert not any(key.startswith(("GET uaa:/Users", "GET /v3/users")) for key in counts), counts
    # A stale bulk list: the user exists in UAA and CC; both creates adopt it.
    again = client.ensure_user("erin@corp.com", "okta", probably_missing=True)
    assert again.guid == user.guid
    assert list(fake.users).count(user.guid) == 1 and fake.calls("POST", "/v3/users") == 2


# =============================================================================== concurrency


def test_map_concurrently_collects_all_errors(client: CloudFoundryClient) -> None:
    def work(i: int) -> int:
        if i % 4 == 0:
            raise ValueError(f"bad {i}")
        return i * 10

    assert client.map_concurrently(lambda i: i + 1, range(20)) == list(range(1, 21))
    with pytest.raises(BatchError) as ei:
        client.map_concurrently(work, range(10), limit=3)
    err = ei.value
    assert [item for item, _ in err.failures] == [0, 4, 8]
    assert err.total == 10
    assert err.results == [10, 20, 30, 50, 60, 70, 90]
    assert "3 of 10 operations failed" in str(err)
    for i in (0, 4, 8):
        assert f"bad {i}" in str(err)


def test_map_concurrently_bounded_and_nested(fake: FakeCF, ftime: FakeTime) -> None:
    active = 0
    peak = 0
    lock = threading.Lock()
    gate = threading.Event()

    def work(i: int) -> int:
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        gate.wait(0.01)
        with lock:
            active -= 1
        return i

    with make_client(fake, ftime, concurrency=4) as c:
        assert c.map_concurrently(work, range(40)) == list(range(40))
        assert peak <= 4
        # nested use from inside a worker runs inline instead of deadlocking
        out = c.map_concurrently(lambda i: sum(c.map_concurrently(lambda j: j, range(i))), range(10))
        assert out == [sum(range(i)) for i in range(10)]


# =============================================================================== secrets + logging


def test_secrets_never_in_errors_reprs_or_logs(
    fake: FakeCF, ftime: FakeTime, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="cf_access.cf")
    org = fake.add_org("o")
    # a misbehaving server echoing credentials back must not leak them either
    basic = base64.b64encode(f"{CLIENT_ID}:{SECRET}".encode()).decode()
    fake.faults.append(
        Fault("GET", "/v3/spaces", lambda: cc_error(400, 10005, "CF-BadQueryParameter", f"echo {SECRET}"))
    )
    errors: list[BaseException] = []
    with make_client(fake, ftime, max_retries=1) as c:
        c.list_orgs()
        token = fake.tokens[-1]
        fake.faults.append(
            Fault("GET", "/v3/roles", lambda: cc_error(422, 10008, "CF-UnprocessableEntity", f"tok {token}"))
        )
        for call in (
            c.list_spaces,
            lambda: c.list_roles(),
            lambda: c.create_role("organization_user", "nope", space_guid="x"),
        ):
            try:
                call()
            except Exception as exc:
                errors.append(exc)
        fake.faults.append(Fault("GET", "/v3/users", exc=httpx.ConnectError, times=5))
        try:
            c.list_users()
        except Exception as exc:
            errors.append(exc)
        try:
            c.map_concurrently(lambda _: c.create_role("space_developer", "u", org_guid=org), range(2))
        except Exception as exc:
            errors.append(exc)
        texts = [repr(c), str(c), repr(vars(c)), caplog.text]
        with pytest.raises(TypeError):
            pickle.dumps(c)
    assert len(errors) == 5
    texts += [str(e) for e in errors] + [repr(e) for e in errors]
    for text in texts:
        assert SECRET not in text
        assert token not in text
        assert basic not in text
        assert "bearer" not in text.lower()
    assert repr(c) == "CloudFoundryClient(api_url='https://api.cf.test', client_id='cf-access')"


def test_errors_pickle_roundtrip() -> None:
    err = CloudFoundryError(422, 10008, "CF-UnprocessableEntity", "already has", "POST", "/v3/roles")
    again = pickle.loads(pickle.dumps(err))
    assert str(again) == str(err) and again.code == 10008
    uerr = pickle.loads(pickle.dumps(UaaError(409, "scim_resource_already_exists", "x", "POST", "/Users")))
    assert uerr.status == 409


def test_path_template() -> None:
    assert path_template("cc", "/v3/roles/abc") == "/v3/roles/{guid}"
    assert path_template("cc", "/v3/roles") == "/v3/roles"
    assert path_template("uaa", "/Users/abc") == "uaa:/Users/{id}"


def test_closed_client_refuses(fake: FakeCF, ftime: FakeTime) -> None:
    c = make_client(fake, ftime)
    c.close()
    with pytest.raises(Exception, match="closed"):
        c.list_orgs()


def test_uaa_user_model() -> None:
    assert UaaUser("i", "u", "o").origin == "o"


def test_chaos_run_converges_without_duplicates(fake: FakeCF, ftime: FakeTime) -> None:
    """300 role creates then 150 deletes under 10% random faults, before and after processing."""
    orgs = [fake.add_org(f"o{i}") for i in range(3)]
    users = [str(uuid.uuid4()) for _ in range(100)]
    for u in users:
        fake.add_user(u)
    fake.chaos = random.Random(42)
    fake.chaos_rate = 0.10
    wanted = [(u, o) for u in users for o in orgs]
    with make_client(fake, ftime, max_retries=10) as c:
        roles = c.map_concurrently(
            lambda uo: c.create_role("organization_auditor", uo[0], org_guid=uo[1]), wanted
        )
        assert len(roles) == 300
        pairs = [
            (r["relationships"]["user"]["data"]["guid"], r["relationships"]["organization"]["data"]["guid"])
            for r in fake.roles.values()
        ]
        assert sorted(pairs) == sorted(wanted)  # exactly once each
        assert {r.guid for r in roles} == set(fake.roles)
        c.map_concurrently(c.delete_role, [r.guid for r in roles[::2]])
        assert set(fake.roles) == {r.guid for r in roles[1::2]}
        events = c.event_counts()
    assert events["retry"] > 20
    assert events.get("adopt_after_ambiguous", 0) > 0


def test_ratelimit_reset_only_counts_on_429(
    fake: FakeCF, ftime: FakeTime, client: CloudFoundryClient
) -> None:
    far = str(int(ftime.wall) + 3000)
    fake.faults.append(
        Fault("GET", "/v3/organizations", lambda: httpx.Response(503, headers={"X-RateLimit-Reset": far}))
    )
    client.list_orgs()
    assert len(ftime.sleeps) == 1 and ftime.sleeps[0] <= 0.2  # jittered backoff, not 3000 s
    past = str(int(ftime.wall) - 10)
    fake.faults.append(
        Fault("GET", "/v3/organizations", lambda: httpx.Response(429, headers={"X-RateLimit-Reset": past}))
    )
    client.list_orgs()
    assert ftime.sleeps[1] == 0.0


def test_expired_token_refreshed_once_under_concurrency(
    fake: FakeCF, ftime: FakeTime, client: CloudFoundryClient
) -> None:
    fake.add_org("o")
    client.list_orgs()
    ftime.now += 10_000
    client.map_concurrently(lambda _: client.list_orgs(), range(32))
    assert len(fake.tokens) == 2
