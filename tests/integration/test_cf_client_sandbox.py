"""The CC V3 + UAA client against the real local sandbox (HTTP over 127.0.0.1)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from components.cloudfoundry import client as client_module
from components.cloudfoundry.client import CloudFoundryClient
from components.cloudfoundry.errors import CloudFoundryError, UaaError
from sandbox.control import SandboxControl
from sandbox.server import SandboxServer

pytestmark = pytest.mark.integration

CLIENT_ID = "cf-access"
SECRET = "sandbox-secret"
SPACE_MEMBERSHIP = (
    "Users cannot be assigned roles in a space if they do not have a role in that space's organization."
)
ORG_USER_GUARD = "Cannot delete organization_user role while user has roles in spaces in that organization."


@pytest.fixture
def cf(sandbox: SandboxServer, ctl: SandboxControl) -> Iterator[CloudFoundryClient]:
    with CloudFoundryClient(sandbox.url, CLIENT_ID, SECRET, job_poll_interval_s=0.02) as client:
        yield client


def seed_orgs(
    ctl: SandboxControl, n_orgs: int = 2, spaces: tuple[str, ...] = ("dev", "prod")
) -> dict[str, Any]:
    seeded = ctl.seed({"orgs": [{"name": f"org{i}", "spaces": list(spaces)} for i in range(n_orgs)]})
    orgs: dict[str, Any] = seeded["orgs"]
    return orgs


def role_keys(cf: CloudFoundryClient, **filters: Any) -> list[tuple[str, str, str | None, str | None]]:
    roles, _ = cf.list_roles(**filters)
    return sorted((r.type, r.user_guid, r.org_guid, r.space_guid) for r in roles)


def test_discovery_users_roles_full_flow(
    cf: CloudFoundryClient, ctl: SandboxControl, sandbox: SandboxServer
) -> None:
    orgs = seed_orgs(ctl, 1)
    org = orgs["org0"]["guid"]
    dev = orgs["org0"]["spaces"]["dev"]
    assert cf.uaa_url == sandbox.url + "/uaa"
    assert [o.name for o in cf.list_orgs(["org0"])] == ["org0"]
    assert {s.name for s in cf.list_spaces([org])} == {"dev", "prod"}
    assert [s.guid for s in cf.list_spaces([org], ["dev"])] == [dev]

    alice = cf.ensure_user("alice@corp.com", "okta")
    assert (alice.username, alice.origin) == ("alice@corp.com", "okta")
    assert cf.ensure_user("alice@corp.com", "okta") == alice  # idempotent
    assert cf.find_uaa_user("ALICE@corp.com", "okta") is not None  # UAA compares case-insensitively
    assert [u.guid for u in cf.list_users(usernames=["alice@corp.com"], origins=["okta"])] == [alice.guid]

    org_user = cf.create_role("organization_user", alice.guid, org_guid=org)
    dev_role = cf.create_role("space_developer", alice.guid, space_guid=dev)
    # create again -> 422 "already has" -> adopted, same guid
    assert cf.create_role("space_developer", alice.guid, space_guid=dev) == dev_role
    assert cf.event_counts()["adopt_role"] == 1

    roles, users = cf.list_roles(user_guids=[alice.guid], include_users=True)
    assert {r.guid for r in roles} == {org_user.guid, dev_role.guid}
    assert users[alice.guid].username == "alice@corp.com"
    # organization_guids returns org roles only
    assert [r.guid for r in cf.list_roles(organization_guids=[org])[0]] == [org_user.guid]
    assert [r.guid for r in cf.list_roles(space_guids=[dev])[0]] == [dev_role.guid]
    assert ("okta", "alice@corp.com", "space_developer", "org0", "dev") in ctl.roles()

    cf.delete_role(dev_role.guid)
    cf.delete_role(dev_role.guid)  # 404 -> already gone
    cf.delete_role(org_user.guid)
    assert cf.list_roles(user_guids=[alice.guid]) == ([], {})

    cf.delete_user(alice.guid)
    assert cf.get_user(alice.guid) is None
    assert cf.find_uaa_user("alice@corp.com", "okta") is not None  # CC delete leaves UAA alone
    cf.delete_uaa_user(alice.guid)
    cf.delete_uaa_user(alice.guid)  # 404 fine
    assert cf.find_uaa_user("alice@corp.com", "okta") is None
    counts = cf.request_counts()
    assert counts["GET /"] == 1
    assert counts["POST uaa:/oauth/token"] == 1
    assert counts["GET /v3/jobs/{guid}"] >= 3


def test_a_configured_uaa_url_saves_the_discovery_call(sandbox: SandboxServer, ctl: SandboxControl) -> None:
    seed_orgs(ctl, 1)
    with CloudFoundryClient(sandbox.url, CLIENT_ID, SECRET, uaa_url=sandbox.url + "/uaa/") as cf:
        assert [o.name for o in cf.list_orgs(["org0"])] == ["org0"]
        counts = cf.request_counts()
    assert "GET /" not in counts
    assert counts["POST uaa:/oauth/token"] == 1
    assert ctl.counters()["requests"].get("GET /", 0) == 0


def test_a_wrong_configured_uaa_url_says_where_it_came_from(sandbox: SandboxServer) -> None:
    wrong = CloudFoundryClient(sandbox.url, CLIENT_ID, SECRET, uaa_url=sandbox.url + "/login")
    with wrong as cf, pytest.raises(UaaError) as raised:
        cf.list_orgs(["org0"])
    assert raised.value.status == 404
    assert str(raised.value).endswith(
        f"(UAA URL {sandbox.url}/login is set by cfUaaUrl or CF_UAA_URL: it must be links.uaa.href "
        f"of GET {sandbox.url}/; correct it or unset it to discover UAA)"
    )


def test_org_membership_ordering(cf: CloudFoundryClient, ctl: SandboxControl) -> None:
    orgs = seed_orgs(ctl, 1)
    org = orgs["org0"]["guid"]
    dev = orgs["org0"]["spaces"]["dev"]
    bob = cf.ensure_user("bob@corp.com", "okta")

    # a space role needs organization_user first; another org role does not count
    cf.create_role("organization_manager", bob.guid, org_guid=org)
    with pytest.raises(CloudFoundryError) as ei:
        cf.create_role("space_developer", bob.guid, space_guid=dev)
    assert (ei.value.status, ei.value.code, ei.value.detail) == (422, 10008, SPACE_MEMBERSHIP)
    assert str(ei.value).startswith("POST /v3/roles failed: 422 CF-UnprocessableEntity (10008): ")

    org_user = cf.create_role("organization_user", bob.guid, org_guid=org)
    space_role = cf.create_role("space_developer", bob.guid, space_guid=dev)
    # removing organization_user while a space role remains is refused synchronously
    with pytest.raises(CloudFoundryError) as ei:
        cf.delete_role(org_user.guid)
    assert (ei.value.status, ei.value.detail) == (422, ORG_USER_GUARD)
    assert ei.value.method == "DELETE" and ei.value.path == f"/v3/roles/{org_user.guid}"

    cf.delete_role(space_role.guid)
    cf.delete_role(org_user.guid)
    assert [r.type for r in cf.list_roles(user_guids=[bob.guid])[0]] == ["organization_manager"]


def test_create_user_adopts_existing(cf: CloudFoundryClient) -> None:
    uaa = cf.create_uaa_user("carol@corp.com", "ldap", email="carol@mail.corp.com")
    assert cf.create_uaa_user("carol@corp.com", "ldap").id == uaa.id  # 409 -> adopted
    first = cf.create_user(uaa.id)
    assert cf.create_user(uaa.id).guid == first.guid  # 422 already exists -> adopted
    assert cf.get_user(uaa.id) is not None
    assert cf.get_uaa_user(uaa.id) == uaa


def test_pagination_and_chunked_filters(
    cf: CloudFoundryClient, ctl: SandboxControl, monkeypatch: pytest.MonkeyPatch
) -> None:
    orgs = seed_orgs(ctl, 1, ())
    org = orgs["org0"]["guid"]
    users = [{"username": f"user{i:04d}@corp.com", "origin": "okta"} for i in range(1100)]
    seeded = ctl.seed({"users": users})
    guids = list(seeded["users"].values())
    ctl.seed(
        {"roles": [{"type": "organization_auditor", "user_guid": g, "org": "org0"} for g in guids[:150]]}
    )

    assert len(cf.list_uaa_users()) == 1100  # 3 UAA pages of <= 500
    assert cf.request_counts()["GET uaa:/Users"] == 3

    monkeypatch.setattr(client_module, "CC_PER_PAGE", 40)
    roles, users_by_guid = cf.list_roles(organization_guids=[org], include_users=True)
    assert {r.user_guid for r in roles} == set(guids[:150])
    assert len(users_by_guid) == 150
    assert cf.request_counts()["GET /v3/roles"] == 4  # 150 / 40 -> 4 pages
    monkeypatch.setattr(client_module, "CC_PER_PAGE", 5000)

    cf.reset_counts()
    roles, _ = cf.list_roles(user_guids=guids, types=["organization_auditor"])  # ~43 KB of guids
    assert len(roles) == 150
    assert cf.request_counts()["GET /v3/roles"] >= 8
    assert len(cf.list_users(guids=guids)) == 1100
    assert len(cf.list_users()) >= 1100  # includes the client's own CC user


def test_short_tokens_are_refreshed(sandbox: SandboxServer, ctl: SandboxControl) -> None:
    ctl.set_config(token_validity_s=2)
    seed_orgs(ctl, 1)
    with CloudFoundryClient(sandbox.url, CLIENT_ID, SECRET) as cf:
        cf.list_orgs()
        time.sleep(1.2)  # past half-life
        cf.list_orgs()
        assert cf.event_counts()["token_fetch"] == 2
        assert cf.event_counts().get("token_rejected", 0) == 0


def test_rate_limiter_429_is_waited_out(sandbox: SandboxServer, ctl: SandboxControl) -> None:
    seed_orgs(ctl, 1)
    ctl.set_rate_limit(limit=3, reset_interval_s=1)
    with CloudFoundryClient(sandbox.url, CLIENT_ID, SECRET, backoff_max_s=2) as cf:
        for _ in range(6):
            assert len(cf.list_orgs()) == 1
        assert cf.event_counts()["retry"] >= 1


def test_bad_secret_is_not_echoed(sandbox: SandboxServer, ctl: SandboxControl) -> None:
    wrong = "definitely-wrong-secret-123"
    with CloudFoundryClient(sandbox.url, CLIENT_ID, wrong) as cf, pytest.raises(UaaError) as ei:
        cf.list_orgs()
    assert ei.value.status == 401
    for text in (str(ei.value), repr(ei.value), repr(cf)):
        assert wrong not in text


def test_fault_run_converges_exactly(sandbox: SandboxServer, ctl: SandboxControl) -> None:
    """300 role creates and 150 deletes under 10% 5xx, 5% 429 and 2% dropped connections."""
    orgs = seed_orgs(ctl, 3, ("dev",))
    people = [f"person{i:02d}@corp.com" for i in range(50)]
    with CloudFoundryClient(
        sandbox.url,
        CLIENT_ID,
        SECRET,
        concurrency=8,
        max_retries=10,
        backoff_base_s=0.01,
        backoff_max_s=0.5,
        job_poll_interval_s=0.02,
    ) as cf:
        cf.list_orgs()  # token + discovery before the faults start
        ctl.set_faults(error_rate=0.10, rate_429=0.05, drop_rate=0.02, retry_after_s=0, seed=1234)

        users = cf.map_concurrently(lambda name: cf.ensure_user(name, "okta"), people)
        org_guids = [orgs[f"org{i}"]["guid"] for i in range(3)]
        space_guids = [orgs[f"org{i}"]["spaces"]["dev"] for i in range(3)]
        org_wanted = [(u.guid, o) for u in users for o in org_guids]
        space_wanted = [(u.guid, s) for u in users for s in space_guids]
        # ordering: organization_user first, then space roles
        org_roles = cf.map_concurrently(
            lambda w: cf.create_role("organization_user", w[0], org_guid=w[1]), org_wanted
        )
        space_roles = cf.map_concurrently(
            lambda w: cf.create_role("space_developer", w[0], space_guid=w[1]), space_wanted
        )
        assert len(org_roles) + len(space_roles) == 300
        # remove the space roles of every other user, then their org_user too
        leavers = {u.guid for u in users[::2]}
        cf.map_concurrently(cf.delete_role, [r.guid for r in space_roles if r.user_guid in leavers])
        cf.map_concurrently(cf.delete_role, [r.guid for r in org_roles if r.user_guid in leavers])
        events = cf.event_counts()
        faults_seen = ctl.counters()
        ctl.clear_faults()

        roles, _ = cf.list_roles(user_guids=[u.guid for u in users])
        got = sorted((r.type, r.user_guid, r.org_guid or r.space_guid) for r in roles)
        stayers = [u.guid for u in users if u.guid not in leavers]
        want = sorted(
            [("organization_user", u, o) for u in stayers for o in org_guids]
            + [("space_developer", u, s) for u in stayers for s in space_guids]
        )
        assert got == want  # exactly right: nothing missing, nothing duplicated, nothing left over
        assert len({u.guid for u in users}) == 50
        assert len(cf.list_uaa_users()) == 50  # no duplicate shadow users either
    print(events, faults_seen)
    assert events["retry"] > 20, (events, faults_seen)


def org_users(cf: CloudFoundryClient, ctl: SandboxControl, n: int) -> tuple[str, list[Any], list[Any]]:
    """A fresh org with ``n`` users holding organization_user: (org guid, users, roles)."""
    org = seed_orgs(ctl, 1)["org0"]["guid"]
    users = [cf.ensure_user(f"u{i}@corp.com", "uaa") for i in range(n)]
    return org, users, [cf.create_role("organization_user", u.guid, org_guid=org) for u in users]


def test_delete_roles_checks_what_is_left_with_one_list_instead_of_polling_every_job(
    cf: CloudFoundryClient, ctl: SandboxControl
) -> None:
    org, _, roles = org_users(cf, ctl, 6)
    gone_already = roles[0].guid
    cf.delete_role(gone_already)
    ctl.reset_counters()
    assert cf.delete_roles([r.guid for r in roles]) == {}
    assert role_keys(cf, organization_guids=[org]) == []
    requests = ctl.counters()["requests"]
    assert requests["DELETE /v3/roles/{guid}"] == 6
    assert requests.get("GET /v3/jobs/{guid}", 0) == 0, "every job was done by the time of the check"
    assert requests["GET /v3/roles"] == 2  # the check, and role_keys above


def test_delete_roles_polls_unfinished_jobs_and_names_failures(
    cf: CloudFoundryClient, ctl: SandboxControl
) -> None:
    org, users, roles = org_users(cf, ctl, 3)
    ctl.set_config(job_delay_ms=60_000, job_polls=2)  # still PROCESSING at the check; done on the 2nd poll
    try:
        assert cf.delete_roles([r.guid for r in roles]) == {}
    finally:
        ctl.set_config(job_delay_ms=20, job_polls=0)
    assert role_keys(cf, organization_guids=[org]) == []
    ctl.set_config(job_fail_rate=1.0)
    try:
        again = [cf.create_role("organization_user", u.guid, org_guid=org) for u in users]
        failures = cf.delete_roles([r.guid for r in again])
    finally:
        ctl.set_config(job_fail_rate=0.0)
    assert sorted(failures) == sorted(r.guid for r in again)
    assert all("Job" in type(e).__name__ for e in failures.values()), failures
