"""Protected users: the one place that decides whether a CF user is off limits.

Stack config ``protectedUsers`` lists regular expressions. A user is protected
when any pattern is *found* (``re.search``, case-insensitive) in either
``<origin>/<username>`` or the bare username. Search, not full match, because
the natural way to write "every admin account" is ``^admin`` and a full match
of that silently leaves ``admin@acme.com`` unprotected - the unsafe direction.
Anchor both ends (``^admin$``) for an exact name.

Every reader (plan, helper CLI, providers) goes through :class:`ProtectedUsers`
so the rule cannot drift between the preview and the writes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["ProtectedUsers", "ProtectionError", "unanchored_warning"]

# Anchors at either end; a pattern with none of them now matches anywhere in the name.
_ANCHORS = ("^", "$", r"\A", r"\Z")


class ProtectionError(ValueError):
    """A protectedUsers pattern is not a valid regular expression."""


@dataclass(frozen=True)
class ProtectedUsers:
    """Compiled ``protectedUsers`` patterns; :meth:`matches` is the rule."""

    patterns: tuple[re.Pattern[str], ...] = ()

    @classmethod
    def from_patterns(cls, patterns: Iterable[str], *, what: str = "protectedUsers") -> ProtectedUsers:
        """Compile ``patterns``; raise ProtectionError naming the index and pattern of a bad one."""
        compiled: list[re.Pattern[str]] = []
        for index, text in enumerate(patterns):
            try:
                compiled.append(re.compile(text, re.IGNORECASE))
            except re.error as exc:
                raise ProtectionError(
                    f"{what}[{index}] is not a valid regular expression ({exc}): {text!r}; "
                    "fix or quote the pattern (e.g. '^admin$' for exactly 'admin')"
                ) from None
        return cls(tuple(compiled))

    def matches(self, key: str) -> bool:
        """Whether ``key`` (``origin/username``; a bare username works too) is protected."""
        username = key.partition("/")[2] or key
        return any(p.search(key) or p.search(username) for p in self.patterns)

    def __bool__(self) -> bool:
        return bool(self.patterns)


def unanchored_warning(pattern: str, index: int, *, what: str = "protectedUsers") -> str | None:
    """A migration warning for a pattern with no anchor (it now matches inside longer names)."""
    if any(anchor in pattern for anchor in _ANCHORS):
        return None
    return (
        f"{what}[{index}] {pattern!r} has no '^' or '$' anchor, so it protects every user whose "
        f"name contains a match (protectedUsers matches by search, not by whole name); "
        f"write '^{pattern}$' to protect exactly that name"
    )
