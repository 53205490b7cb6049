"""A real third-party client (PyPI ``cloudfoundry-client``) against the sandbox.

The client lives in its own virtualenv (``.tools/cfclient-venv``) because it needs protobuf 7,
which conflicts with pulumi's pin; the fixture creates it once and reuses it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.server import SandboxServer

pytestmark = pytest.mark.integration

CFCLIENT_VERSION = "1.40.4"
REPO = Path(__file__).resolve().parents[2]
VENV = REPO / ".tools" / "cfclient-venv"

SCRIPT = textwrap.dedent(
    """
    import json, sys
    from cloudfoundry_client.client import CloudFoundryClient
    from cloudfoundry_client.errors import InvalidStatusCode

    url = sys.argv[1]
    client = CloudFoundryClient(url, client_id="cf-access", client_secret="sandbox-secret")
    client.init_with_client_credentials()
    out = {"token_endpoint": client.service_information.token_service}

    out["orgs"] = sorted(o["name"] for o in client.v3.organizations.list(per_page=2))
    out["spaces"] = sorted(s["name"] for s in client.v3.spaces.list(per_page=3))
    out["users"] = sorted(u["presentation_name"] for u in client.v3.users.list(per_page=4))
    roles = list(client.v3.roles.list(per_page=5, include="user"))
    out["role_count"] = len(roles)
    out["role_types"] = sorted({r["type"] for r in roles})
    # included users are mixed into the entities by the client
    out["included_user_names"] = sorted({r.user()["presentation_name"] for r in roles})

    org = client.v3.organizations.get_first(names="payments")
    space = client.v3.spaces.get_first(names="dev", organization_guids=org["guid"])
    created = client.v3.roles._create({
        "type": "organization_auditor",
        "relationships": {"user": {"data": {"username": "zed@corp.com", "origin": "okta"}},
                          "organization": {"data": {"guid": org["guid"]}}},
    })
    out["created_type"] = created["type"]
    out["created_user"] = client.v3.users.get(created["relationships"]["user"]["data"]["guid"])["username"]

    victim = next(r for r in client.v3.roles.list(space_guids=space["guid"], types="space_developer"))
    client.v3.roles.remove(victim["guid"], asynchronous=False)   # polls /v3/jobs until COMPLETE
    try:
        client.v3.roles.get(victim["guid"])
        out["deleted_status"] = 200
    except InvalidStatusCode as exc:
        out["deleted_status"] = exc.status_code.value
        out["deleted_code"] = exc.body["errors"][0]["code"]
    print(json.dumps(out))
    """
)


@pytest.fixture(scope="session")
def cfclient_python() -> Path:
    python = VENV / "bin" / "python"
    probe = [
        str(python),
        "-c",
        f"import importlib.metadata as m; assert m.version('cloudfoundry-client') == '{CFCLIENT_VERSION}'",
    ]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return python
    VENV.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", f"cloudfoundry-client=={CFCLIENT_VERSION}"],
        check=True,
        timeout=600,
    )
    return python


def _seed() -> dict[str, object]:
    orgs = [
        {"name": n, "spaces": ["dev", "prod", "qa"]} for n in ("payments", "platform", "data", "ml", "web")
    ]
    users = [{"username": f"user{i}@corp.com", "origin": "okta"} for i in range(9)]
    roles: list[dict[str, str]] = []
    for i in range(9):
        u = {"username": f"user{i}@corp.com", "origin": "okta"}
        roles.append({**u, "type": "organization_user", "org": "payments"})
        roles.append({**u, "type": "space_developer", "org": "payments", "space": "dev"})
    return {"orgs": orgs, "users": users, "roles": roles}


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    with SandboxServer.start(seed=_seed()) as srv:
        yield srv


def test_cloudfoundry_client_lists_creates_and_deletes(
    cfclient_python: Path, server: SandboxServer, tmp_path: Path
) -> None:
    script = tmp_path / "cfclient_script.py"
    script.write_text(SCRIPT)
    proc = subprocess.run(
        [str(cfclient_python), str(script), server.url], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])

    assert out["token_endpoint"] == f"{server.url}/uaa/oauth/token"
    assert out["orgs"] == ["data", "ml", "payments", "platform", "web"]  # 3 pages of 2
    assert len(out["spaces"]) == 15  # 5 pages of 3
    # 9 seeded users + the client itself (client-credentials callers become CC users)
    assert "cf-access" in out["users"] and len(out["users"]) == 10
    assert out["role_count"] == 18  # 4 pages of 5
    assert out["role_types"] == ["organization_user", "space_developer"]
    assert out["included_user_names"] == sorted(f"user{i}@corp.com" for i in range(9))
    assert out["created_type"] == "organization_auditor"
    assert out["created_user"] == "zed@corp.com"  # shadow user created in UAA
    assert out["deleted_status"] == 404 and out["deleted_code"] == 10010


READ_ONLY_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from cloudfoundry_client.client import CloudFoundryClient
    from cloudfoundry_client.errors import InvalidStatusCode

    url, how = sys.argv[1], sys.argv[2]
    if how == "password":  # what `cf login -u reader` does: the public client "cf", a password grant
        client = CloudFoundryClient(url, client_id="cf", client_secret="")
        client.init_with_user_credentials("reader", "reader-password")
    else:
        client = CloudFoundryClient(url, client_id="cf-access-read", client_secret="read-secret")
        client.init_with_client_credentials()
    out = {"orgs": sorted(o["name"] for o in client.v3.organizations.list(per_page=2))}
    out["role_count"] = len(list(client.v3.roles.list(per_page=5)))
    org = client.v3.organizations.get_first(names="payments")
    try:
        client.v3.roles._create({
            "type": "organization_auditor",
            "relationships": {"user": {"data": {"username": "zed@corp.com", "origin": "okta"}},
                              "organization": {"data": {"guid": org["guid"]}}},
        })
        out["create_status"] = 201
    except InvalidStatusCode as exc:
        out["create_status"] = exc.status_code.value
        out["create_title"] = exc.body["errors"][0]["title"]
    print(json.dumps(out))
    """
)


@pytest.mark.parametrize("how", ["password", "client_credentials"])
def test_cloudfoundry_client_read_only_reads_all_and_cannot_write(
    cfclient_python: Path, server: SandboxServer, tmp_path: Path, how: str
) -> None:
    """The reader login (password grant) and the read-only client, as a third-party client sees
    them: every org and role readable, a role create refused with CC's 403."""
    script = tmp_path / "cfclient_read_only.py"
    script.write_text(READ_ONLY_SCRIPT)
    proc = subprocess.run(
        [str(cfclient_python), str(script), server.url, how], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["orgs"] == ["data", "ml", "payments", "platform", "web"]
    assert out["role_count"] >= 18
    assert (out["create_status"], out["create_title"]) == (403, "CF-NotAuthorized")
