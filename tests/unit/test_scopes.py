"""components/cloudfoundry/scopes.py: which scopes each access needs, and the message."""

from __future__ import annotations

import pytest

from components.cloudfoundry.scopes import MissingScopeError, describe_missing, missing_scopes, require

READ_GROUP = "cloud_controller.admin_read_only|cloud_controller.global_auditor|cloud_controller.admin"


@pytest.mark.parametrize(
    ("granted", "access", "missing"),
    [
        ({"cloud_controller.admin_read_only", "scim.read"}, "read", []),
        ({"cloud_controller.global_auditor"}, "read", []),
        ({"cloud_controller.admin"}, "read", []),
        ({"cloud_controller.read", "scim.read"}, "read", [READ_GROUP]),
        (set(), "read", [READ_GROUP]),
        ({"cloud_controller.admin", "scim.read", "scim.write"}, "write", []),
        (
            {"cloud_controller.admin_read_only", "scim.read"},
            "write",
            ["cloud_controller.admin", "scim.write"],
        ),
        ({"cloud_controller.read"}, "write", ["cloud_controller.admin", "scim.read", "scim.write"]),
        ({"cloud_controller.admin", "scim.write"}, "write", ["scim.read"]),
    ],
)
def test_missing_scopes(granted: set[str], access: str, missing: list[str]) -> None:
    assert missing_scopes(granted, access) == missing  # type: ignore[arg-type]


def test_messages_name_client_scope_and_fix() -> None:
    assert describe_missing("ok", {"cloud_controller.admin"}, "read") is None
    read = describe_missing("auditor", {"cloud_controller.read"}, "read")
    assert read == (
        "CF client 'auditor' lacks the scope cloud_controller.admin_read_only or "
        "cloud_controller.global_auditor or cloud_controller.admin to read every org, space, user "
        "and role - without global read Cloud Controller shows only the client's own orgs, and the "
        "preview would be wrong; its token has: cloud_controller.read. grant it: uaac client update "
        'auditor --authorities "cloud_controller.admin_read_only scim.read" (or '
        "cloud_controller.global_auditor)"
    )
    with pytest.raises(MissingScopeError, match=r"^CF client 'ro' lacks the scope scim\.write to change"):
        require("ro", {"cloud_controller.admin", "scim.read"}, "write")
    assert "its token has: (none)" in str(describe_missing("x", set(), "write"))
