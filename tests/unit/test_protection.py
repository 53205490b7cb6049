from __future__ import annotations

import pytest

from components.protection import ProtectedUsers, ProtectionError, unanchored_warning


@pytest.mark.parametrize(
    ("pattern", "key"),
    [
        ("^admin", "uaa/admin@acme.com"),  # fullmatch missed this one: the reason for search
        ("^admin", "uaa/ADMIN"),
        ("^uaa/admin$", "uaa/admin"),
        ("^admin$", "corp-sso/admin"),
        ("@ops\\.acme\\.com$", "corp-sso/jo@ops.acme.com"),
        ("ci-bot", "uaa/team-ci-bot-7"),
        # patterns written for fullmatch keep protecting what they protected
        ("(.*/)?admin(@.*)?", "uaa/admin@corp.com"),
        ("uaa/.*min", "uaa/admin"),
    ],
)
def test_search_protects(pattern: str, key: str) -> None:
    assert ProtectedUsers.from_patterns([pattern]).matches(key)


@pytest.mark.parametrize(
    ("pattern", "key"),
    [
        ("^admin$", "uaa/admin@acme.com"),
        ("^admin", "uaa/sysadmin"),
        ("^uaa/admin$", "corp-sso/admin"),
        ("@ops\\.acme\\.com$", "uaa/jo@ops.acme.com.evil"),
    ],
)
def test_anchors_keep_exact_matching(pattern: str, key: str) -> None:
    assert not ProtectedUsers.from_patterns([pattern]).matches(key)


def test_no_patterns_protect_nobody() -> None:
    users = ProtectedUsers.from_patterns([])
    assert not users
    assert not users.matches("uaa/admin")


def test_invalid_regex_names_index_and_pattern() -> None:
    with pytest.raises(
        ProtectionError, match=r"protectedUsers\[1\] is not a valid regular expression .*'\(x'"
    ):
        ProtectedUsers.from_patterns(["ok", "(x"])


@pytest.mark.parametrize("pattern", ["^admin", "admin$", "^admin$", r"\Aadmin\Z"])
def test_anchored_patterns_need_no_warning(pattern: str) -> None:
    assert unanchored_warning(pattern, 0) is None


def test_unanchored_pattern_warns_with_the_exact_form() -> None:
    warning = unanchored_warning("admin", 2)
    assert warning is not None
    assert "protectedUsers[2] 'admin'" in warning
    assert "'^admin$'" in warning
