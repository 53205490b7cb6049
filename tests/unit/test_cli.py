"""``cf-access validate`` (offline, fast) and ``cf-access export`` (pure part), plus the
stack config reader the CLI shares."""

from __future__ import annotations

import datetime as dt
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from components.cli.__main__ import main
from components.cli.export import ExportNameError, build_exports, file_name, file_names, write_exports
from components.cli.inventory import HeldRole, Inventory
from components.cli.stackconfig import SECRET_PLACEHOLDER, read_offline
from components.cloudfoundry.models import CfUser
from components.identity.base import IdentitySnapshot
from components.mappings import load_mappings
from components.model import UserRef
from components.plan import PlanSettings, build_plan
from tests.pulumi_harness import REPO

BAD = Path(__file__).resolve().parent / "data" / "mappings_bad"


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, [*args, "--project-dir", str(REPO)], catch_exceptions=False)
    return result.exit_code, result.output


def test_validate_dev_stack_ok() -> None:
    code, out = invoke("validate", "--stack", "dev")
    assert code == 0, out
    assert out.startswith(
        "validate: OK - 3 mapping files, 3 orgs, 5 spaces, 8 groups checked offline (directory)"
    )


def test_validate_reports_every_mapping_problem_with_location(tmp_path: Path) -> None:
    shutil.copytree(BAD, tmp_path / "mappings")
    code, out = invoke("validate", "--stack", "dev", "--mappings", str(tmp_path / "mappings"))
    assert code == 1
    lines = out.splitlines()
    assert lines[-1].startswith("validate: 9 problem(s)")
    assert (
        "mappings/payments.yaml:12:5: spaces.dev.space_develper: unknown space role type 'space_develper'"
        in out
    )


def test_validate_missing_group_and_directory_problem(tmp_path: Path) -> None:
    mappings = tmp_path / "mappings"
    mappings.mkdir()
    (mappings / "a.yaml").write_text(
        "org: a\norg_roles:\n  organization_auditor: {groups: [auditors, nope]}\n"
    )
    directory = tmp_path / "dir.yaml"
    directory.write_text("users:\n  - {username: x, status: ACTIVE}\ngroups:\n  auditors: [x, y]\n")
    stack = tmp_path / "Pulumi.t.yaml"
    stack.write_text(
        yaml.safe_dump(
            {
                "config": {
                    "cf-access:cfApiUrl": "https://api.example.com",
                    "cf-access:cfClientSecret": {"secure": "v1:abc"},
                    "cf-access:mappingsDir": str(mappings),
                    "cf-access:directoryFile": str(directory),
                }
            }
        )
    )
    code, out = invoke("validate", "--config-file", str(stack))
    assert code == 1
    assert "dir.yaml:4: groups.auditors[1]: unknown user 'y'" in out
    # the directory cannot be read at all, so its groups are not judged yet
    assert "does not exist" not in out
    directory.write_text("users:\n  - {username: x, status: ACTIVE}\ngroups:\n  auditors: [x]\n")
    code, out = invoke("validate", "--config-file", str(stack))
    assert code == 1
    assert out.splitlines() == [
        "mappings/a.yaml:3: group directory:nope does not exist in the identity source",
        out.splitlines()[-1],
    ]


def test_validate_bad_setting(tmp_path: Path) -> None:
    stack = tmp_path / "Pulumi.t.yaml"
    stack.write_text(
        "config:\n  cf-access:cfApiUrl: https://api.example.com\n  cf-access:concurrency: lots\n"
    )
    code, out = invoke("validate", "--config-file", str(stack))
    assert code == 1
    assert "the CF client secret is not set: export CF_CLIENT_SECRET" in out or "cf-access:concurrency" in out


def test_validate_runs_offline_as_a_pre_commit_hook() -> None:
    """The whole command in a fresh interpreter, as a pre-commit hook runs it."""
    exe = Path(sys.executable).parent / "cf-access"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "components.cli"]
    started = time.perf_counter()
    proc = subprocess.run(
        [*cmd, "validate", "--stack", "dev"], cwd=REPO, capture_output=True, text=True, check=False
    )
    took = time.perf_counter() - started
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # A figure, not a timed assertion (docs/operations.md reports it).
    print(f"cf-access validate --stack dev: {took:.2f} s wall")


def test_offline_config_masks_secrets() -> None:
    config = read_offline(REPO, "dev")
    assert config.get("cfClientSecret") == SECRET_PLACEHOLDER
    assert "cfClientSecret" in config.secret_keys
    assert config.get("directoryOrigin") == "corp-sso"
    assert config.get("concurrency") == "8"  # Pulumi.yaml default
    assert config.get_object("protectedUsers") == ["^(.*/)?admin(@.*)?$"]


def test_env_overrides_cf_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CF_API_URL", "https://api.sys.example.com")
    monkeypatch.setenv("CF_CLIENT_SECRET", "s3cret")
    config = read_offline(REPO, "dev")
    assert config.get("cfApiUrl") == "https://api.sys.example.com"
    assert config.get("cfClientSecret") == "s3cret"


# --------------------------------------------------------------------------- export

ORIGIN = "corp-sso"


def inventory() -> Inventory:
    users = {
        "u1": CfUser("u1", "Alice@corp.com", ORIGIN),
        "u2": CfUser("u2", "bob@corp.com", ORIGIN),
        "u3": CfUser("u3", "ext@partner.com", "partner-idp"),
        "u4": CfUser("u4", "admin@corp.com", ORIGIN),
        "c1": CfUser("c1", None, None),
    }
    roles = [
        HeldRole("payments", None, "organization_manager", "u1"),
        HeldRole("payments", None, "organization_user", "u1"),
        HeldRole("payments", None, "organization_user", "u2"),
        HeldRole("payments", None, "organization_user", "u3"),
        HeldRole("payments", "dev", "space_developer", "u1"),
        HeldRole("payments", "dev", "space_developer", "u2"),
        HeldRole("payments", None, "organization_user", "u4"),
        HeldRole("payments", None, "organization_manager", "u4"),
        HeldRole("payments", None, "organization_manager", "c1"),
        HeldRole("data", None, "organization_auditor", "u3"),
        HeldRole("data", None, "organization_user", "u3"),
    ]
    return Inventory({"payments", "data", "empty"}, {("payments", "dev")}, users, roles, "https://api.x")


SETTINGS = PlanSettings(
    protected_users=("(.*/)?admin(@.*)?",), default_source="directory", source_origins={"directory": ORIGIN}
)


def test_export_files() -> None:
    exports = {e.name: e for e in build_exports(inventory(), SETTINGS, ORIGIN)}
    assert sorted(exports) == ["data", "payments"]  # 'empty' holds no roles
    payments = yaml.safe_load(exports["payments"].text)
    assert payments == {
        "org": "payments",
        "ownership": "additive",
        "org_roles": {
            "organization_manager": {"users": ["alice@corp.com"]},
            # only people with no space role here: the others get it implied
            "organization_user": {"users": [{"user": "ext@partner.com", "origin": "partner-idp"}]},
        },
        "spaces": {"dev": {"space_developer": {"users": ["alice@corp.com", "bob@corp.com"]}}},
    }
    assert "admin" not in exports["payments"].text  # protected: never touched anyway
    assert exports["payments"].text.startswith("# yaml-language-server: $schema=./schema.json\n")


def test_export_round_trips_through_the_plan(tmp_path: Path) -> None:
    """The exported mappings plan exactly the (non-protected) roles CF holds."""
    inv = inventory()
    write_exports(build_exports(inv, SETTINGS, ORIGIN), tmp_path)
    mappings = load_mappings(tmp_path, known_sources=["directory"])
    plan = build_plan(mappings, IdentitySnapshot({}), SETTINGS, today=dt.date(2026, 11, 29))
    planned = sorted((m.scope.label, m.role, key) for m in plan.memberships() for key in m.members)
    held = sorted(
        (role.scope, role.role, key)
        for key, role in inv.keyed_roles()
        if not SETTINGS.is_protected(UserRef.parse(key))
    )
    assert planned == held


def test_export_refuses_to_overwrite(tmp_path: Path) -> None:
    exports = build_exports(inventory(), SETTINGS, ORIGIN)
    write_exports(exports, tmp_path)
    with pytest.raises(FileExistsError, match="--force"):
        write_exports(exports, tmp_path)
    write_exports(exports, tmp_path, force=True)


def test_export_only_some_orgs() -> None:
    assert [e.name for e in build_exports(inventory(), SETTINGS, ORIGIN, orgs={"data"})] == ["data"]


@pytest.mark.parametrize(
    ("orgs", "plain"),
    [
        (["a_b", "a/b"], "a_b"),  # the org the plain name spells keeps it
        (["Payments", "payments"], "Payments"),  # one file on case-insensitive file systems
        (["x y", "x:y"], "x y"),  # neither spells 'x_y': the first in sorted order keeps it
    ],
)
def test_export_file_names_never_collide(orgs: list[str], plain: str) -> None:
    names = file_names(orgs)
    assert len({n.casefold() for n in names}) == len(orgs)
    assert names[orgs.index(plain)] == file_name(plain)
    other = next(o for o in orgs if o != plain)
    assert re.fullmatch(
        re.escape(file_name(other).removesuffix(".yaml")) + r"-[0-9a-f]{8}\.yaml", names[orgs.index(other)]
    )
    assert file_names(list(reversed(orgs))) == list(reversed(names))  # order-independent


def test_export_writes_colliding_orgs_to_distinct_files(tmp_path: Path) -> None:
    users = {"u1": CfUser("u1", "alice@corp.com", ORIGIN), "u2": CfUser("u2", "bob@corp.com", ORIGIN)}
    roles = [
        HeldRole("a/b", None, "organization_manager", "u1"),
        HeldRole("a_b", None, "organization_manager", "u2"),
    ]
    inv = Inventory({"a/b", "a_b"}, set(), users, roles, "https://api.x")
    paths = write_exports(build_exports(inv, SETTINGS, ORIGIN), tmp_path)
    assert len(set(paths)) == 2
    written = {yaml.safe_load(p.read_text())["org"]: p.name for p in tmp_path.iterdir()}
    assert written["a_b"] == "a_b.yaml"
    assert written["a/b"].startswith("a_b-")


def test_export_refuses_when_a_hashed_name_meets_a_real_org() -> None:
    hashed = file_names(["a_b", "a/b"])[1].removesuffix(".yaml")
    with pytest.raises(ExportNameError, match="would be written twice"):
        file_names(["a_b", "a/b", hashed])
