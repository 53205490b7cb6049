"""``pulumi preview --json`` → a Markdown summary for a pull-request comment.

What a reviewer needs from a cf-access preview is not the resource diff but the
people: who gains and who loses which role where, and why. The preview JSON has
it all - each org's ``cf:OrgAccess`` step carries the old and new ``roles`` maps
(``role key -> {"<origin>/<username>": provenance}``) - so this module only reads,
compares and renders. Pure: no I/O, no Pulumi. The run that upgrades a stack from
the per-scope model (``cf:RoleMembership`` deletes, which only forget, plus
``cf:OrgAccess`` creates) nets out: it shows role changes only where there are any.

* Gains carry the new provenance (``group directory:payments-dev
  (mappings/payments.yaml:13)``); losses carry what granted the role before,
  or **drift** when a refresh found the holder in CF without any mapping
  (``found in CF, not granted by any mapping``). In a scheduled drift check
  (``drift=True``) every change is drift by definition.
* People joining and leaving the ``cf:UserSet`` maps are listed; with ``deprovisionPolicy:
  roles-only`` a delete only drops the user from cf-access's state.
* Warnings and errors come from the preview's diagnostics; the mass-removal
  brake's warnings get their own callout.
* The comment stays under GitHub's 65,536-character limit: totals, warnings and
  the brake come first and are never cut; the per-person lines are cut with a
  clear ``… and N more`` line.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

MARKER = "<!-- cf-access-summary -->"
GITHUB_COMMENT_LIMIT = 65_536
ORG_ACCESS_TYPE = "pulumi-python:dynamic/cf:OrgAccess"
# One resource per (scope, role type), before cf:OrgAccess (retired: a delete only forgets).
MEMBERSHIP_TYPE = "pulumi-python:dynamic/cf:RoleMembership"
USER_SET_TYPE = "pulumi-python:dynamic/cf:UserSet"
# One resource per person, from cf-access versions before the user sets (retired).
LEGACY_USER_TYPE = "pulumi-python:dynamic/cf:User"
FOUND_IN_CF = "found in CF, not granted by any mapping"  # = providers.FOUND_IN_CF
BRAKE_WORDS = ("mass-removal", "allowMassRemoval")
REPLACE_OPS = ("replace", "create-replacement", "delete-replaced")

Action = Literal["add", "remove"]


class PreviewParseError(ValueError):
    """The input is not ``pulumi preview --json`` output."""


@dataclass(frozen=True, order=True)
class RoleChange:
    """One person gaining or losing one role in one scope."""

    org: str
    space: str | None
    role: str
    action: Action
    user: str
    reason: str
    drift: bool = False

    @property
    def scope(self) -> str:
        return self.org if self.space is None else f"{self.org}/{self.space}"


@dataclass(frozen=True, order=True)
class UserChange:
    action: Literal["create", "delete"]
    user: str


@dataclass(frozen=True)
class MembershipNote:
    """A membership-level event worth a line of its own (replace, ownership change, new scope)."""

    scope: str
    role: str
    text: str


@dataclass
class PreviewSummary:
    stack: str | None = None
    role_changes: list[RoleChange] = field(default_factory=list)
    user_changes: list[UserChange] = field(default_factory=list)
    notes: list[MembershipNote] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    provenance_only: int = 0
    deprovision_policy: str | None = None
    operations: dict[str, int] = field(default_factory=dict)
    membership_ops: Counter[str] = field(default_factory=Counter)
    retired_user_resources: int = 0
    retired_membership_resources: int = 0

    @property
    def first_run(self) -> bool:
        """Every membership is being created: the stack has no state yet (new stack, or
        adopting a foundation after ``cf-access export``)."""
        ops = self.membership_ops
        return bool(ops) and set(ops) == {"create"}

    @property
    def brake_warnings(self) -> list[str]:
        return [w for w in self.warnings if any(word in w for word in BRAKE_WORDS)]

    @property
    def other_warnings(self) -> list[str]:
        return [w for w in self.warnings if not any(word in w for word in BRAKE_WORDS)]

    @property
    def has_changes(self) -> bool:
        return bool(
            self.role_changes
            or self.user_changes
            or self.notes
            or self.retired_user_resources
            or self.retired_membership_resources
        )

    def count(self, action: Action) -> int:
        return sum(1 for c in self.role_changes if c.action == action)


# --------------------------------------------------------------------------- parsing


def load_preview_text(text: str) -> dict[str, Any]:
    """The JSON document in ``pulumi preview --json`` output, tolerating text around it
    (a CLI message after a failed ``--expect-no-changes``, warnings printed before it)."""
    start = text.find("{")
    if start < 0:
        raise PreviewParseError("no JSON object found in the preview output")
    try:
        data, _ = json.JSONDecoder().raw_decode(text[start:])
    except json.JSONDecodeError as exc:
        raise PreviewParseError(f"preview output is not valid JSON: {exc}") from None
    if not isinstance(data, dict) or not ("steps" in data or "diagnostics" in data):
        raise PreviewParseError("JSON is not `pulumi preview --json` output (no 'steps' or 'diagnostics')")
    return data


def _stack_of(urn: str) -> str | None:
    # urn:pulumi:<stack>::<project>::<type>::<name>
    parts = urn.split("::")
    head = parts[0].split(":") if parts else []
    return head[2] if len(head) >= 3 and head[0] == "urn" else None


def _state_type(step: Mapping[str, Any]) -> str:
    for key in ("newState", "oldState"):
        state = step.get(key) or {}
        if isinstance(state, Mapping) and state.get("type"):
            return str(state["type"])
    urn = str(step.get("urn", ""))
    return urn.split("::")[2].split("$")[-1] if urn.count("::") >= 3 else ""


def _inputs(step: Mapping[str, Any], key: str) -> dict[str, Any]:
    state = step.get(key) or {}
    if not isinstance(state, Mapping):
        return {}
    inputs = state.get("inputs")
    if not isinstance(inputs, Mapping):
        inputs = state.get("outputs")
    return dict(inputs) if isinstance(inputs, Mapping) else {}


def _members(props: Mapping[str, Any]) -> dict[str, str]:
    members = props.get("members")
    if not isinstance(members, Mapping):
        return {}
    return {str(k): str(v) for k, v in members.items()}


def _clean(message: str) -> str:
    text = message.strip()
    for prefix in ("warning: ", "error: "):
        text = text.removeprefix(prefix)
    return text


# (provenance, org, space, role, member) -> the provenance with file:line (plan.locate_provenance)
Locate = Callable[[str, str, str | None, str, str], str]


def parse_preview(
    data: Mapping[str, Any], *, drift: bool = False, locate: Locate | None = None
) -> PreviewSummary:
    """Read the preview JSON into a summary (see module docstring)."""
    summary = PreviewSummary()
    steps = data.get("steps") or []
    if not isinstance(steps, list):
        raise PreviewParseError("'steps' is not a list")
    config = data.get("config") or {}
    if isinstance(config, Mapping):
        policy = config.get("cf-access:deprovisionPolicy")
        summary.deprovision_policy = str(policy) if policy else None
    change_summary = data.get("changeSummary") or {}
    if isinstance(change_summary, Mapping):
        summary.operations = {str(k): int(v) for k, v in change_summary.items() if isinstance(v, int)}

    # A replace shows up as "replace" plus "create-replacement"/"delete-replaced" for the
    # same URN; read each URN once, remembering it was replaced.
    # A replace shows up as "replace" plus "create-replacement"/"delete-replaced" for the
    # same URN; read each URN once, remembering it was replaced.
    replaced = {str(s.get("urn")) for s in steps if isinstance(s, Mapping) and s.get("op") in REPLACE_OPS}
    seen: set[str] = set()
    orgs: list[_OrgStep] = []
    legacy: dict[str, dict[tuple[str | None, str], dict[str, str]]] = defaultdict(dict)
    for step in steps:
        if not isinstance(step, Mapping):
            continue
        urn = str(step.get("urn", ""))
        op = str(step.get("op", ""))
        if summary.stack is None and urn:
            summary.stack = _stack_of(urn)
        kind = _state_type(step)
        if op in ("same", "read", "refresh", "discard", "import", "remove-pending-replace"):
            continue
        if urn in seen:
            continue
        if kind == ORG_ACCESS_TYPE:
            seen.add(urn)
            summary.membership_ops["replace" if urn in replaced else op] += 1
            orgs.append(_OrgStep(_inputs(step, "oldState"), _inputs(step, "newState"), op, urn in replaced))
        elif kind == MEMBERSHIP_TYPE and op == "delete":
            seen.add(urn)
            summary.membership_ops["forget"] += 1
            summary.retired_membership_resources += 1
            old = _inputs(step, "oldState")
            space = str(old["space"]) if old.get("space") else None
            legacy[str(old.get("org") or "?")][(space, str(old.get("role") or "?"))] = _members(old)
        elif kind == USER_SET_TYPE:
            seen.add(urn)
            _user_set_step(summary, step, op)
        elif kind == LEGACY_USER_TYPE and op == "delete":
            seen.add(urn)
            summary.retired_user_resources += 1
    for org_step in orgs:
        _org_step(summary, org_step, legacy.get(org_step.org, {}), drift, locate)

    for diag in data.get("diagnostics") or []:
        if not isinstance(diag, Mapping):
            continue
        message = _clean(str(diag.get("message", "")))
        severity = str(diag.get("severity", ""))
        if not message:
            continue
        if severity == "warning" and message not in summary.warnings:
            summary.warnings.append(message)
        elif severity == "error" and message not in summary.errors:
            summary.errors.append(message)
    summary.role_changes.sort(key=_change_order)
    summary.user_changes.sort()
    return summary


def _change_order(c: RoleChange) -> tuple[str, str, str, int, str]:
    return (c.org, c.space or "", c.role, 0 if c.action == "add" else 1, c.user)


@dataclass(frozen=True)
class _OrgStep:
    old: Mapping[str, Any]
    new: Mapping[str, Any]
    op: str
    replaced: bool

    @property
    def org(self) -> str:
        return str((self.new or self.old).get("org") or "?")


def _roles(props: Mapping[str, Any], name: str = "roles") -> dict[tuple[str | None, str], dict[str, str]]:
    """``{(space, role): members}`` of an OrgAccess input (role keys as model.role_key)."""
    raw = props.get(name)
    if not isinstance(raw, Mapping):
        return {}
    out: dict[tuple[str | None, str], dict[str, str]] = {}
    for key, members in raw.items():
        space, sep, role = str(key).rpartition("/")
        out[(space if sep else None, role)] = _members({"members": members})
    return out


def _org_step(
    summary: PreviewSummary,
    step: _OrgStep,
    legacy: Mapping[tuple[str | None, str], dict[str, str]],
    drift: bool,
    locate: Locate | None,
) -> None:
    """One org's step, role by role. On the upgrade run the org's ``before`` comes from
    the retired per-scope resources it replaces, so only real changes show."""
    old = {} if step.op == "create" else _roles(step.old)
    new = {} if step.op == "delete" else _roles(step.new)
    if step.op == "create":
        old = dict(legacy)
        # held, managed and not removed this run (changes._adopt): no change to show
        for key, members in _roles(step.new, "adopt").items():
            new[key] = {**members, **new.get(key, {})}
    org = step.org
    for space, role in sorted(set(old) | set(new), key=lambda k: (k[0] or "", k[1])):
        before, after = old.get((space, role), {}), new.get((space, role), {})
        scope = org if space is None else f"{org}/{space}"
        _role_changes(summary, org, space, role, before, after, drift, locate)
        if step.op == "update" and before.keys() == after.keys() and before != after:
            summary.provenance_only += 1
        if step.replaced and after:
            summary.notes.append(
                MembershipNote(
                    scope,
                    role,
                    f"replaced: the org's resource is deleted and re-created, so its {len(after)} "
                    "member(s) briefly lose the role",
                )
            )
        if step.op == "delete" and before:
            summary.notes.append(
                MembershipNote(scope, role, "no longer managed: the members cf-access granted lose the role")
            )
    was, now = step.old.get("ownership"), step.new.get("ownership")
    if step.op == "update" and was and was != now:
        summary.notes.append(MembershipNote(org, "*", f"ownership {was} → {now}"))


def _role_changes(
    summary: PreviewSummary,
    org: str,
    space: str | None,
    role: str,
    before: Mapping[str, str],
    after: Mapping[str, str],
    drift: bool,
    locate: Locate | None,
) -> None:
    for user in sorted(after.keys() - before.keys()):
        # State names the file only; reviewers get the line back from the mappings.
        reason = locate(after[user], org, space, role, user) if locate else after[user]
        summary.role_changes.append(RoleChange(org, space, role, "add", user, reason, drift))
    for user in sorted(before.keys() - after.keys()):
        was = before[user]
        is_drift = drift or was == FOUND_IN_CF
        reason = was if was == FOUND_IN_CF else f"no longer granted (was: {was})"
        summary.role_changes.append(RoleChange(org, space, role, "remove", user, reason, is_drift))


def _user_set_step(summary: PreviewSummary, step: Mapping[str, Any], op: str) -> None:
    before = set() if op == "create" else _user_keys(_inputs(step, "oldState"))
    after = set() if op == "delete" else _user_keys(_inputs(step, "newState"))
    summary.user_changes.extend(UserChange("create", user) for user in sorted(after - before))
    summary.user_changes.extend(UserChange("delete", user) for user in sorted(before - after))


def _user_keys(props: Mapping[str, Any]) -> set[str]:
    users = props.get("users")
    return {str(k) for k in users} if isinstance(users, Mapping) else set()


# --------------------------------------------------------------------------- rendering


def _cell(text: str) -> str:
    """Safe inside a Markdown table cell: no pipes, line breaks or stray backticks."""
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").replace("`", "'")


def _code(text: str) -> str:
    return f"`{_cell(text)}`"


def _plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{n} {word if n == 1 else (plural or word + 's')}"


def _scope_heading(org: str, space: str | None) -> str:
    return f"#### Org `{_cell(org)}`" if space is None else f"#### Space `{_cell(org)}/{_cell(space)}`"


def render_markdown(
    summary: PreviewSummary,
    *,
    title: str | None = None,
    drift: bool = False,
    max_chars: int = GITHUB_COMMENT_LIMIT,
    details_url: str | None = None,
) -> str:
    """The comment body. Never longer than ``max_chars`` characters."""
    stack = summary.stack or "?"
    head: list[str] = [MARKER]
    heading = title or (
        f"cf-access drift check — stack `{stack}`" if drift else f"cf-access preview — stack `{stack}`"
    )
    head.append(f"### {heading}")
    head.append("")

    adds, removes = summary.count("add"), summary.count("remove")
    creates = sum(1 for u in summary.user_changes if u.action == "create")
    deletes = sum(1 for u in summary.user_changes if u.action == "delete")
    orgs = sorted({c.org for c in summary.role_changes})
    people = {c.user for c in summary.role_changes}

    if summary.errors:
        head.append("❌ **The preview failed** — nothing can be applied until this is fixed:")
        head.append("")
        head.append("```")
        head.extend(e[:2000] for e in summary.errors[:20])
        head.append("```")
        head.append("")
    if not summary.has_changes and not summary.errors:
        if drift:
            head.append("✅ **No drift**: Cloud Foundry matches the mappings.")
        else:
            head.append("✅ **No changes**: Cloud Foundry already matches the mappings.")
        head.append("")
    elif summary.has_changes and not summary.role_changes and not summary.user_changes:
        head.append(
            f"**No role grants change**; {_plural(len(summary.notes), 'membership-level change')} below."
        )
        head.append("")
    elif summary.has_changes:
        drifted = sum(1 for c in summary.role_changes if c.drift)
        line = (
            f"**{_plural(adds, 'role grant')} to add, {_plural(removes, 'role grant')} to remove** "
            f"for {_plural(len(people), 'person', 'people')} in {_plural(len(orgs), 'org')}"
        )
        if creates or deletes:
            line += f"; {_plural(creates, 'user')} to create, {_plural(deletes, 'user')} to delete"
        head.append(line)
        if drifted:
            head.append("")
            head.append(
                f"🔀 **{_plural(drifted, 'change')} from drift** — made in Cloud Foundry by hand, "
                "outside the mappings; `pulumi up --refresh` puts them back in line."
            )
        head.append("")
        head.extend(_totals_table(summary))
        head.append("")
        if summary.first_run:
            head.append(
                "ℹ️ First run on this stack (no state yet): every membership is created. People who "
                "already hold a role in Cloud Foundry are adopted — no CF write for them "
                "(e.g. after `cf-access export`)."
            )
            head.append("")

    brake = summary.brake_warnings
    if brake:
        head.append("> [!CAUTION]")
        head.append("> **Mass-removal brake**")
        for w in brake:
            for i, part in enumerate(w.splitlines()):
                head.append(f"> {'- ' if i == 0 else '  '}{part}")
        head.append("")
    others = summary.other_warnings
    if others:
        head.append("> [!WARNING]")
        for w in others[:50]:
            for i, part in enumerate(w.splitlines()):
                head.append(f"> {'- ' if i == 0 else '  '}{part[:1000]}")
        if len(others) > 50:
            head.append(f"> - … and {len(others) - 50} more warnings (see the job log)")
        head.append("")

    body = _detail_lines(summary, drift)
    foot: list[str] = []
    if summary.provenance_only:
        foot.append(
            f"<sub>{_plural(summary.provenance_only, 'membership')} only change provenance text "
            "(e.g. a mapping moved lines): no Cloud Foundry writes.</sub>"
        )
    if details_url:
        foot.append(f"<sub>Full preview: {details_url}</sub>")

    return _fit(head, body, foot, max_chars, details_url)


def _totals_table(summary: PreviewSummary) -> list[str]:
    per: dict[str, Counter[str]] = defaultdict(Counter)
    for c in summary.role_changes:
        per[c.scope][c.action] += 1
    if not per:
        return []
    rows = ["| scope | ➕ add | ➖ remove |", "|---|---:|---:|"]
    for scope in sorted(per):
        rows.append(f"| `{_cell(scope)}` | {per[scope]['add']} | {per[scope]['remove']} |")
    if len(per) > 1:
        rows.append(f"| **total** | **{summary.count('add')}** | **{summary.count('remove')}** |")
    return rows


# One detail entry = (lines, how many changes it stands for)
_Entry = tuple[list[str], int]


def _detail_lines(summary: PreviewSummary, drift: bool) -> list[_Entry]:
    entries: list[_Entry] = []
    notes: dict[tuple[str, str], list[str]] = defaultdict(list)
    for n in summary.notes:
        notes[(n.scope, n.role)].append(n.text)

    by_scope: dict[tuple[str, str | None], list[RoleChange]] = defaultdict(list)
    for c in summary.role_changes:
        by_scope[(c.org, c.space)].append(c)
    scopes = sorted(set(by_scope) | {_split(s) for s, _ in notes}, key=lambda s: (s[0], s[1] or ""))
    for org, space in scopes:
        label = org if space is None else f"{org}/{space}"
        changes = by_scope.get((org, space), [])
        entries.append((["", _scope_heading(org, space), ""], 0))
        for (scope, note_role), texts in sorted(notes.items()):
            if scope == label:
                entries.append(([*(f"- ⚠️ `{_cell(note_role)}` {_cell(t)}" for t in texts), ""], 0))
        role: str | None = None
        for c in changes:
            lines: list[str] = []
            if c.role != role:
                if role is not None:
                    lines.append("")
                role = c.role
                lines.append(f"**{_cell(role)}**")
                lines.append("")
            sign = "➕" if c.action == "add" else "➖"
            reason = _cell(c.reason)
            if c.drift:
                reason = f"**drift** — {reason}"
            lines.append(f"- {sign} {_code(c.user)} — {reason}")
            entries.append((lines, 1))
    if summary.retired_membership_resources:
        text = (
            "- ♻️ upgrade: "
            + _plural(summary.retired_membership_resources, "per-scope `cf:RoleMembership` resource")
            + " "
            "from an earlier cf-access version leave the state without a CF change; each org's "
            "`cf:OrgAccess` now manages their roles (docs/operations.md, Upgrading)"
        )
        entries.append((["", "#### Upgrade", "", text], 0))
    users = summary.user_changes
    if users or summary.retired_user_resources:
        entries.append((["", "#### Users", ""], 0))
    if summary.retired_user_resources:
        text = (
            f"- ♻️ upgrade: {_plural(summary.retired_user_resources, 'per-person `cf:User` resource')} "
            "from an earlier cf-access version leave the state; users are now tracked in `cf:UserSet`. "
            "No CF change, except that with deprovisionPolicy delete-user a person left without any "
            "role after this run is deleted (docs/operations.md, Upgrading)"
        )
        entries.append(([text], 0))
    for u in users:
        if u.action == "create":
            text = f"- ➕ create {_code(u.user)} (UAA shadow user + CC user; adopted if they already exist)"
        elif summary.deprovision_policy == "delete-user":
            text = f"- ➖ delete {_code(u.user)} (CC user and UAA user; deprovisionPolicy delete-user)"
        else:
            text = (
                f"- ➖ stop tracking {_code(u.user)} (the CF user is kept; "
                f"deprovisionPolicy {summary.deprovision_policy or 'roles-only'})"
            )
        entries.append(([text], 1))
    return entries


def _split(scope: str) -> tuple[str, str | None]:
    org, sep, space = scope.partition("/")
    return (org, space if sep else None)


def _fit(
    head: list[str], body: list[_Entry], foot: list[str], max_chars: int, details_url: str | None
) -> str:
    text_head = "\n".join(head)
    text_foot = "\n".join(foot)
    total_changes = sum(n for _, n in body)
    # Room for the cut line (generous: digits + link).
    reserve = 300 + (len(details_url) if details_url else 0)
    budget = max_chars - len(text_head) - len(text_foot) - reserve - 4
    if budget < 0:
        # Even the head does not fit (thousands of warnings): hard cut, still valid Markdown.
        cut = f"\n\n… (cut to {max_chars} characters; see the job log)"
        return text_head[: max_chars - len(cut)] + cut
    shown: list[str] = []
    used = 0
    shown_changes = 0
    cut_off = False
    for lines, n in body:
        chunk = "\n".join(lines) + "\n"
        if used + len(chunk) > budget:
            cut_off = True
            break
        shown.append(chunk)
        used += len(chunk)
        shown_changes += n
    parts = [text_head.rstrip("\n"), "", "<details open><summary>Who gains and loses what</summary>", ""]
    if body:
        parts.append("".join(shown).strip("\n"))
    if cut_off:
        more = total_changes - shown_changes
        where = f" — see {details_url}" if details_url else " — see the full `pulumi preview` in the job log"
        parts.append("")
        parts.append(f"**… and {more} more change{'s' if more != 1 else ''} not shown**{where}")
    parts.append("")
    parts.append("</details>")
    if not body:
        parts = [text_head.rstrip("\n")]
    if text_foot:
        parts.append("")
        parts.append(text_foot)
    out = "\n".join(parts) + "\n"
    assert len(out) <= max_chars, (len(out), max_chars)
    return out


def summarize(text: str, **kwargs: Any) -> str:
    """Preview JSON text → Markdown (``drift``, ``title``, ``max_chars``, ``details_url``)."""
    drift = bool(kwargs.pop("drift", False))
    locate: Locate | None = kwargs.pop("locate", None)
    summary = parse_preview(load_preview_text(text), drift=drift, locate=locate)
    return render_markdown(summary, drift=drift, **kwargs)


def changes_by_user(changes: Iterable[RoleChange]) -> dict[str, list[RoleChange]]:
    out: dict[str, list[RoleChange]] = defaultdict(list)
    for c in changes:
        out[c.user].append(c)
    return dict(out)
