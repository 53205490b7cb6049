"""Least privilege through the real CLI (issue #15, docs/permissions.md).

One stack whose file holds no CF secret: the client comes from CF_CLIENT_ID /
CF_CLIENT_SECRET, as in CI. The write client converges the foundation; then

- the read-only client (``cloud_controller.admin_read_only scim.read``) previews,
  refreshes, runs the drift check and ``cf-access doctor`` with **zero CF writes**
  (the sandbox's write counter), and its ``pulumi up`` fails naming the missing scopes,
  still with zero writes;
- a client without global read (``cloud_controller.read``) is stopped before any guard
  with the missing scope named - never "organization 'payments' does not exist" - in
  preview, refresh, doctor and why; ``why`` and ``export`` work with the read-only client.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.foundation import ORIGIN, SECRET, Foundation, cf_access_cli, foundation, use_client
from tests.pulumi_harness import Result

pytestmark = pytest.mark.e2e

WRITE = ("cf-access", SECRET)
READ = ("cf-access-read", "read-secret")
NO_GLOBAL_READ = ("auditor", "auditor-secret")
READ_SCOPE_MISSING = (
    "CF client 'auditor' lacks the scope cloud_controller.admin_read_only or "
    "cloud_controller.global_auditor or cloud_controller.admin to read every org, space, user and role"
)
WRITE_SCOPE_MISSING = (
    "CF client 'cf-access-read' lacks the scope cloud_controller.admin, scim.write "
    "to change roles and users (pulumi up); nothing was changed"
)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Foundation]:
    with foundation(tmp_path_factory.mktemp("leastpriv")) as f:
        # The stack file holds no CF secret: the environment supplies the client.
        f.stack.run("config", "rm", "cfClientSecret", "--config-file", str(f.stack.config_file))
        use_client(f, WRITE)
        f.stack.up("--yes")
        yield f


def writes(env: Foundation) -> int:
    count: int = env.control.counters()["writes"]
    return count


def assert_secret_free(*results: Result | subprocess.CompletedProcess[str]) -> None:
    for result in results:
        text = result.output if isinstance(result, Result) else result.stdout + result.stderr
        for secret in (SECRET, READ[1], NO_GLOBAL_READ[1]):
            assert secret not in text


def test_the_write_client_from_the_environment_converged(env: Foundation) -> None:
    assert env.roles() == env.expected()
    assert "cfClientSecret" not in env.stack.config_file.read_text(encoding="utf-8")


def test_read_only_client_previews_refreshes_and_checks_drift_with_zero_writes(env: Foundation) -> None:
    use_client(env, READ)
    env.control.reset_counters()
    preview = env.stack.preview("--refresh", "--expect-no-changes")
    refresh = env.stack.refresh("--yes")
    drift = env.stack.preview("--refresh", "--expect-no-changes", "--json")
    assert writes(env) == 0
    assert_secret_free(preview, refresh, drift)


def test_read_only_client_previews_a_change_but_up_is_refused(env: Foundation) -> None:
    use_client(env, READ)
    roles_before = env.roles()
    env.add_to_group("payments-dev", "judy@corp.com")
    try:
        env.control.reset_counters()
        preview = env.stack.preview("--diff")
        assert f"{ORIGIN}/judy@corp.com" in preview.output
        up = env.stack.up("--yes", check=False)
        assert not up.ok
        assert WRITE_SCOPE_MISSING in up.output
        assert writes(env) == 0
        assert_secret_free(preview, up)
        assert env.roles() == roles_before
    finally:
        env.edit_directory(lambda data: data["groups"]["payments-dev"].remove("judy@corp.com"))


def test_client_without_global_read_is_stopped_naming_the_scope(env: Foundation) -> None:
    use_client(env, NO_GLOBAL_READ)
    env.control.reset_counters()
    before = env.stack.export()["deployment"]["resources"]
    preview = env.stack.preview(check=False)
    refresh = env.stack.refresh("--yes", check=False)
    for result in (preview, refresh):
        assert not result.ok
        assert READ_SCOPE_MISSING in result.output
        assert "does not exist" not in result.output
    assert env.stack.export()["deployment"]["resources"] == before, "a refused refresh changes no resource"
    assert writes(env) == 0
    assert_secret_free(preview, refresh)


def test_doctor_names_the_missing_scope(env: Foundation) -> None:
    use_client(env, NO_GLOBAL_READ)
    env.control.reset_counters()
    result = cf_access_cli(env, "doctor")
    assert result.returncode == 1
    assert f"error [cf-scope] {READ_SCOPE_MISSING}" in result.stdout
    assert "missing-org" not in result.stdout
    use_client(env, READ)
    ok = cf_access_cli(env, "doctor")
    assert "cf-scope" not in ok.stdout and "cf-unreachable" not in ok.stdout, ok.stdout
    assert writes(env) == 0
    assert_secret_free(result, ok)


def test_why_and_export_work_with_the_read_only_client(env: Foundation, tmp_path: Path) -> None:
    use_client(env, READ)
    env.control.reset_counters()
    why = cf_access_cli(env, "why", f"{ORIGIN}/alice@corp.com")
    export = cf_access_cli(env, "export", "--out", str(tmp_path / "exported"))
    assert why.returncode == 0, why.stderr
    assert export.returncode == 0, export.stderr
    assert "export:" in export.stdout and list((tmp_path / "exported").glob("*.yaml"))
    assert writes(env) == 0
    use_client(env, NO_GLOBAL_READ)
    refused = cf_access_cli(env, "why", f"{ORIGIN}/alice@corp.com")
    assert refused.returncode == 1 and READ_SCOPE_MISSING in refused.stderr
    assert_secret_free(why, export, refused)
