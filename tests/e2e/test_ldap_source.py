"""cf-access end to end with LDAP identity sources: the real pulumi CLI runs the real program
against the local CF sandbox, with two LDAP sources in one run:

* ``ldap`` (the default source): a real OpenLDAP ``slapd`` on 127.0.0.1 (StartTLS, ``sizelimit
  100``), loaded over LDAP from ``sandbox/slapd/example.yaml`` (platform-engineers nests three
  deep with a cycle);
* ``ad``: the AD-like LDAP server (``sandbox/ldap_ad``, ldaps) for one extra mapping, with its own
  UAA origin.

Roles are read back through the Cloud Controller API, never from Pulumi state; every failure mode
must stop the run with zero writes to the sandbox (its write counters).
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ldap
import pytest
import yaml
from ldap.controls import ManageDSAITControl

from components.identity.base import read_snapshot
from components.identity.config import LDAP_PASSWORD_ENV, parse_identity_sources
from components.mappings import load_mappings
from components.plan import PlanSettings, build_plan
from sandbox.control import SandboxControl
from sandbox.idp.tls import make_server_tls
from sandbox.ldap_ad.launcher import AdServer, ad_entry, ad_server
from sandbox.server import SandboxServer
from sandbox.slapd import data as D
from sandbox.slapd.server import SlapdServer
from tests.pulumi_harness import REPO, PulumiStack, Result, new_stack

pytestmark = pytest.mark.e2e

LDAP_ORIGIN, AD_ORIGIN = "corp-ldap", "corp-ad"
CF_SECRET = "sandbox-secret"
LDAP_PASSWORD = "e2e-ldap-bind-Secret-5521"
AD_PASSWORD = "e2e-ad-bind-Secret-9034"
AD_PASSWORD_ENV = "CF_ACCESS_AD_BIND_PASSWORD"
AD_BIND = "CN=svc-cf-access,OU=Service,DC=ad,DC=example"
PROTECTED = ["(.*/)?admin(@.*)?"]
SEED: dict[str, Any] = {
    "orgs": [
        {"name": "payments", "spaces": ["dev", "prod"]},
        {"name": "platform", "spaces": ["tools", "sandbox"]},
        {"name": "data", "spaces": ["analytics"]},
    ]
}
PAGE_SIZE = 40
SIZE_LIMIT = 100
Assignment = tuple[str, str, str]


def ad_entries() -> list[dict[str, Any]]:
    users = f"OU=Users,{'DC=ad,DC=example'}"
    people = [
        ad_entry(
            f"CN={sam},{users}",
            objectClass="user",
            userPrincipalName=f"{sam}@ad.example",
            userAccountControl=uac,
        )
        for sam, uac in (("mallory", "512"), ("trent", "514"), *((f"svc{i}", "512") for i in range(12)))
    ]
    members = [f"CN=mallory,{users}", f"CN=trent,{users}"]
    group = ad_entry(
        "CN=data-managers,OU=Groups,DC=ad,DC=example", objectClass="group", cn="data-managers", member=members
    )
    return [*people, group]


@dataclass
class LdapFoundation:
    stack: PulumiStack
    control: SandboxControl
    slapd: SlapdServer
    ad: AdServer
    sources: dict[str, Any]  # identitySources with the passwords in clear (for the in-process plan)
    mappings_dir: Path
    tmp: Path

    def roles(self) -> list[Assignment]:
        out = []
        for origin, username, role_type, org, space in self.control.roles():
            if username:
                scope = (org or "") if space is None else f"{org}/{space}"
                out.append((f"{origin}/{username.casefold()}", role_type, scope))
        return sorted(out)

    def expected(self) -> list[Assignment]:
        sources = parse_identity_sources(self.sources, REPO)
        mappings = load_mappings(self.mappings_dir, known_sources=sources.keys())
        snapshot = read_snapshot(sources, mappings.group_refs("ldap"), "ldap")
        plan = build_plan(
            mappings,
            snapshot,
            PlanSettings(
                protected_users=tuple(PROTECTED),
                default_source="ldap",
                source_origins={n: s.origin for n, s in sources.items()},
            ),
            today=dt.date.today(),
        )
        return sorted((key, m.role, m.scope.label) for m in plan.memberships() for key in m.members)

    def set(self, path: str, value: str) -> None:
        self.stack.run("config", "set", "--path", f"identitySources.{path}", value)

    def admin(self) -> Any:
        return self.slapd.admin()


def _mappings(tmp: Path) -> Path:
    """The example mappings plus one group of the second LDAP source (the AD-like server)."""
    out = tmp / "mappings"
    shutil.copytree(REPO / "mappings", out)
    data = yaml.safe_load((out / "data.yaml").read_text(encoding="utf-8"))
    data["spaces"]["analytics"]["space_manager"] = {"groups": ["ad:data-managers"]}
    (out / "data.yaml").write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return out


@pytest.fixture
def env(tmp_path: Path) -> Iterator[LdapFoundation]:
    example = D.Data.from_yaml(REPO / "sandbox" / "slapd" / "example.yaml")
    with (
        SandboxServer.start(seed=SEED) as cf,
        SlapdServer.start(tmp_path / "slapd", size_limit=SIZE_LIMIT) as slapd,
        ad_server(tmp_path / "ad", ad_entries(), bind_dn=AD_BIND, bind_password=AD_PASSWORD) as ad,
    ):
        conn = slapd.admin()
        D.load(conn, example, LDAP_PASSWORD)
        conn.unbind_s()
        plain: dict[str, Any] = {
            "ldap": {
                "type": "ldap",
                "urls": [slapd.url],
                "caBundle": str(slapd.tls.ca_file),
                "bindDn": D.BIND_DN,
                "userBase": D.PEOPLE,
                "userFilter": "(objectClass=inetOrgPerson)",
                "groupBase": D.GROUPS,
                "groupFilter": "(objectClass=groupOfNames)",
                "usernameAttribute": "mail",
                "disabledFilter": "(pwdAccountLockedTime=*)",
                "origin": LDAP_ORIGIN,
                "pageSize": PAGE_SIZE,
                "maxNestingDepth": 5,
                "connectTimeoutSeconds": 5,
                "operationTimeoutSeconds": 5,
            },
            "ad": {
                "type": "ldap",
                "urls": [ad.url],
                "caBundle": str(ad.tls.ca_file),
                "bindDn": AD_BIND,
                "bindPasswordEnv": AD_PASSWORD_ENV,  # each source its own variable
                "userBase": "OU=Users,DC=ad,DC=example",
                "userFilter": "(objectClass=user)",
                "groupBase": "OU=Groups,DC=ad,DC=example",
                "groupFilter": "(objectClass=group)",
                "usernameAttribute": "userPrincipalName",
                "activeDirectory": True,
                "matchingRuleInChain": True,
                "origin": AD_ORIGIN,
                "pageSize": 5,
                "operationTimeoutSeconds": 5,
            },
            "directory": {
                "type": "directory",
                "file": str(REPO / "directory" / "example.yaml"),
                "origin": LDAP_ORIGIN,
            },
        }
        mappings_dir = _mappings(tmp_path)
        stack = new_stack(REPO, tmp_path)
        stack.env.pop(LDAP_PASSWORD_ENV, None)
        stack.env.pop(AD_PASSWORD_ENV, None)
        stack.config_set("cfClientSecret", CF_SECRET, secret=True)
        data = yaml.safe_load(stack.config_file.read_text(encoding="utf-8")) or {}
        values = {
            "cfApiUrl": cf.url,
            "mappingsDir": str(mappings_dir),
            "identitySource": "ldap",
            "identitySources": plain,
            "protectedUsers": PROTECTED,
            "deprovisionPolicy": "roles-only",
        }
        data.setdefault("config", {}).update({f"cf-access:{k}": v for k, v in values.items()})
        stack.config_file.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        # The bind passwords: Pulumi secrets, encrypted by the CLI.
        stack.run("config", "set", "--secret", "--path", "identitySources.ldap.bindPassword", LDAP_PASSWORD)
        stack.run("config", "set", "--secret", "--path", "identitySources.ad.bindPassword", AD_PASSWORD)
        clear = {k: dict(v) for k, v in plain.items()}
        clear["ldap"]["bindPassword"] = LDAP_PASSWORD
        clear["ad"]["bindPassword"] = AD_PASSWORD
        yield LdapFoundation(stack, SandboxControl(cf.url), slapd, ad, clear, mappings_dir, tmp_path)


def _fails_without_writes(env: LdapFoundation, *needles: str) -> Result:
    """``up`` fails, its output names every needle, no secret shows, CF saw zero writes."""
    before = env.roles()
    env.control.reset_counters()
    result = env.stack.up(check=False)
    assert not result.ok, result.output
    for needle in needles:
        assert needle in result.output, f"{needle!r} not in:\n{result.output}"
    assert LDAP_PASSWORD not in result.output and AD_PASSWORD not in result.output
    assert "Traceback" not in result.output
    assert env.control.counters()["writes"] == 0
    assert env.roles() == before
    return result


def who(env: LdapFoundation, user: str) -> list[Assignment]:
    return [r for r in env.roles() if r[0] == f"{LDAP_ORIGIN}/{user}@corp.com"]


def test_ldap_groups_become_cf_roles_and_failures_stop_the_run(env: LdapFoundation) -> None:
    # (a) preview: provenance names the LDAP group; nothing is written; no password anywhere.
    env.control.reset_counters()
    preview = env.stack.preview()
    assert "group ldap:platform-engineers" in preview.output
    assert env.control.counters()["writes"] == 0 and env.roles() == []
    assert LDAP_PASSWORD not in preview.output

    # (b) up: CF holds exactly the plan. Nested three deep with a cycle: everyone on the chain
    # platform-engineers -> core -> sre -> oncall (-> engineers) develops in platform/tools.
    env.stack.up()
    roles = env.roles()
    assert roles == env.expected()
    for user in ("frank", "grace", "oscar", "ivan"):
        assert (f"{LDAP_ORIGIN}/{user}@corp.com", "space_developer", "platform/tools") in roles, user
    assert who(env, "bob") == [], "bob's account is locked (pwdAccountLockedTime): no roles"
    assert (f"{AD_ORIGIN}/mallory@ad.example", "space_manager", "data/analytics") in roles
    assert [r for r in roles if r[0] == f"{AD_ORIGIN}/trent@ad.example"] == [], "userAccountControl 0x2"
    assert env.stack.preview("--expect-no-changes").ok

    # (c) a leaver disabled in LDAP loses their roles.
    assert who(env, "dave") != []
    conn = env.admin()
    D.lock_user(conn, "dave")
    env.stack.up()
    assert who(env, "dave") == []
    assert env.roles() == env.expected()

    # (d) a group that grew past the page size (40) and slapd's size limit (100) is read completely.
    newcomers = [D.User(f"analyst{i:03d}", f"analyst{i:03d}@corp.com") for i in range(130)]
    for newcomer in newcomers:
        D.add_user(conn, newcomer)
    D.add_members(conn, "data-analysts", [D.user_dn(u.uid) for u in newcomers])
    env.stack.up()
    auditors = [r for r in env.roles() if r[1:] == ("space_auditor", "data/analytics")]
    assert len(auditors) == 132  # heidi, peggy and the 130 newcomers
    assert env.roles() == env.expected()

    # (e) every failure mode stops the run before anything is registered: 0 writes.
    server = env.slapd.url
    env.stack.env[LDAP_PASSWORD_ENV] = "wrong-password-from-env"  # the variable wins over config
    _fails_without_writes(env, "identity source ldap", "bind as", "refused", server, "payments-dev")
    del env.stack.env[LDAP_PASSWORD_ENV]

    env.set("ldap.caBundle", str(make_server_tls(env.tmp / "other-ca").ca_file))
    _fails_without_writes(env, "identity source ldap", "TLS failed", server, "payments-dev")
    env.set("ldap.caBundle", str(env.slapd.tls.ca_file))

    env.slapd.pause()
    try:
        _fails_without_writes(env, "identity source ldap", "timed out", server, "payments-dev")
    finally:
        env.slapd.resume()

    conn.delete_s(D.group_dn("payments-oncall"))
    _fails_without_writes(env, "identity source ldap:payments-oncall", "group not found", server)
    D.add_group(conn, D.Group("payments-oncall", ("carol",)))

    D.add_referral(conn, "elsewhere", "ldap://127.0.0.1:1/ou=groups,dc=other")
    _fails_without_writes(env, "identity source ldap:", "referral", server)
    conn.delete_ext_s(f"cn=elsewhere,{D.GROUPS}", serverctrls=[ManageDSAITControl()])
    conn.unbind_s()

    with ad_server(
        env.tmp / "ad-drops-cookie",
        ad_entries(),
        bind_dn=AD_BIND,
        bind_password=AD_PASSWORD,
        drop_paging_after=1,
    ) as flaky:
        env.set("ad.urls[0]", flaky.url)
        env.set("ad.caBundle", str(flaky.tls.ca_file))
        _fails_without_writes(
            env, "identity source ad", "dropped the paged-results control", flaky.url, "data-managers"
        )
    env.set("ad.urls[0]", env.ad.url)
    env.set("ad.caBundle", str(env.ad.tls.ca_file))

    env.slapd.restart(size_limit=SIZE_LIMIT, paged_unlimited=False)
    _fails_without_writes(env, "identity source ldap", "size limit exceeded", server, "data-analysts")

    # Back to normal limits: the run converges again, and no password reached the state.
    env.slapd.restart(size_limit=SIZE_LIMIT)
    assert env.stack.preview("--expect-no-changes").ok
    state = env.stack.export_text()
    assert LDAP_PASSWORD not in state and AD_PASSWORD not in state
    assert ldap.__version__  # python-ldap, the real client, did all of the above
