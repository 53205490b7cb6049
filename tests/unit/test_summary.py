"""The PR summary on real ``pulumi preview --json`` output (fixtures generated against the
sandbox by tests/unit/data/preview/generate.py): one fixture per change kind, plus
warnings, the brake and truncation."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any, cast

import pytest
from click.testing import CliRunner

from components.cli.__main__ import main
from components.summary import (
    GITHUB_COMMENT_LIMIT,
    MARKER,
    PreviewParseError,
    RoleChange,
    UserChange,
    load_preview_text,
    parse_preview,
    render_markdown,
    summarize,
)

DATA = Path(__file__).resolve().parent / "data" / "preview"
CAROL = "corp-sso/carol@corp.com"
JUDY = "corp-sso/judy@corp.com"
PAY_DEV = "group directory:payments-dev (mappings/payments.yaml)"  # state names the file only


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DATA / f"{name}.json").read_text())
    return data


def changes(name: str, **kw: Any) -> list[RoleChange]:
    return parse_preview(fixture(name), **kw).role_changes


def test_fixtures_are_real_and_secret_free() -> None:
    for path in DATA.glob("*.json"):
        text = path.read_text()
        assert "sandbox-secret" not in text
        data = json.loads(text)
        assert data["config"]["cf-access:cfClientSecret"] == "[secret]"
        assert "steps" in data, path.name


def test_add() -> None:
    assert changes("add") == [
        RoleChange(
            "payments",
            None,
            "organization_user",
            "add",
            JUDY,
            "implied by space roles dev/space_developer, prod/space_auditor",
        ),
        RoleChange("payments", "dev", "space_developer", "add", JUDY, PAY_DEV),
        RoleChange(
            "payments",
            "prod",
            "space_auditor",
            "add",
            JUDY,
            "group directory:payments-dev (mappings/payments.yaml)",
        ),
    ]
    md = render_markdown(parse_preview(fixture("add")))
    assert md.startswith(MARKER + "\n### cf-access preview — stack `ci`")
    assert "**3 role grants to add, 0 role grants to remove** for 1 person in 1 org" in md
    assert f"- ➕ `{JUDY}` — {PAY_DEV}" in md
    assert "#### Space `payments/dev`" in md and "#### Org `payments`" in md


def test_remove() -> None:
    got = changes("remove")
    assert {c.action for c in got} == {"remove"}
    assert {(c.scope, c.role) for c in got} == {
        ("payments", "organization_user"),
        ("payments/dev", "space_developer"),
        ("payments/prod", "space_developer"),
        ("payments/prod", "space_auditor"),
    }
    assert all(c.user == CAROL for c in got)
    dev = next(c for c in got if c.scope == "payments/dev")
    assert dev.reason == f"no longer granted (was: {PAY_DEV})"
    assert not any(c.drift for c in got)
    md = summarize((DATA / "remove.json").read_text())
    assert f"- ➖ `{CAROL}` — no longer granted (was: {PAY_DEV})" in md
    # roles-only: the cf:User leaves state, the CF user stays
    assert f"stop tracking `{CAROL}` (the CF user is kept; deprovisionPolicy roles-only)" in md


def test_drift() -> None:
    summary = parse_preview(fixture("drift"), drift=True)
    mallory = [c for c in summary.role_changes if c.user == "corp-sso/mallory@corp.com"]
    assert {(c.action, c.scope, c.reason, c.drift) for c in mallory} == {
        ("remove", "payments", "found in CF, not granted by any mapping", True),
        ("remove", "payments/dev", "found in CF, not granted by any mapping", True),
    }
    alice = [c for c in summary.role_changes if c.user == "corp-sso/alice@corp.com"]
    assert [(c.action, c.scope, c.reason, c.drift) for c in alice] == [("add", "payments/dev", PAY_DEV, True)]
    md = render_markdown(summary, drift=True)
    assert "### cf-access drift check — stack `ci`" in md
    assert "🔀 **3 changes from drift**" in md
    assert "- ➖ `corp-sso/mallory@corp.com` — **drift** — found in CF, not granted by any mapping" in md
    # Without --drift, a removal found by refresh is still drift; the re-add is not marked.
    plain = parse_preview(fixture("drift"))
    assert {c.user for c in plain.role_changes if c.drift} == {"corp-sso/mallory@corp.com"}


def test_user_create() -> None:
    summary = parse_preview(fixture("user_create"))
    assert summary.user_changes == [UserChange("create", "corp-sso/kim@corp.com")]
    md = render_markdown(summary)
    assert "1 user to create, 0 users to delete" in md
    assert (
        "- ➕ create `corp-sso/kim@corp.com` (UAA shadow user + CC user; adopted if they already exist)" in md
    )


def test_user_delete() -> None:
    summary = parse_preview(fixture("user_delete"))
    assert summary.deprovision_policy == "delete-user"
    assert summary.user_changes == [UserChange("delete", CAROL)]
    md = render_markdown(summary)
    assert f"- ➖ delete `{CAROL}` (CC user and UAA user; deprovisionPolicy delete-user)" in md


def test_replace() -> None:
    summary = parse_preview(fixture("replace"))
    assert summary.role_changes == []
    # every role of the replaced org that holds someone gets a note
    assert [(n.scope, n.role) for n in summary.notes] == [
        ("data", "organization_user"),
        ("data/analytics", "space_auditor"),
        ("data/analytics", "space_developer"),
    ]
    md = render_markdown(summary)
    assert "**No role grants change**; 3 membership-level changes below." in md
    assert (
        "- ⚠️ `space_auditor` replaced: the org's resource is deleted and re-created, so its 2 member(s)" in md
    )


def test_org_removed() -> None:
    """A deleted mapping file: the org stays declared with no roles, so its update lists each
    person losing each role (no resource is deleted)."""
    summary = parse_preview(fixture("org_removed"))
    assert {c.action for c in summary.role_changes} == {"remove"}
    assert len(summary.role_changes) == 8
    assert {c.org for c in summary.role_changes} == {"data"}
    assert summary.membership_ops == {"update": 1}
    assert summary.notes == []


def test_upgrade_from_per_scope_resources_nets_out() -> None:
    """The upgrade run: the retired per-scope resources are deleted (they only forget) and
    the org's cf:OrgAccess is created with the same members: no role change to show."""
    data = copy.deepcopy(fixture("noop"))
    members = {"corp-sso/alice@corp.com": "named user (mappings/payments.yaml)"}
    legacy_type = "pulumi-python:dynamic/cf:RoleMembership"
    old = {"org": "payments", "space": "dev", "role": "space_manager", "ownership": "authoritative"}
    data["steps"] = [
        {
            "op": "delete",
            "urn": f"urn:pulumi:ci::cf-access::cf-access:index:OrgAccess${legacy_type}"
            "::payments/dev:space_manager",
            "oldState": {"type": legacy_type, "inputs": {**old, "members": members}},
        },
        {
            "op": "create",
            "urn": "urn:pulumi:ci::cf-access::pulumi-python:dynamic/cf:OrgAccess::payments",
            "newState": {
                "type": "pulumi-python:dynamic/cf:OrgAccess",
                "inputs": {
                    "org": "payments",
                    "ownership": "authoritative",
                    "roles": {"dev/space_manager": members},
                },
            },
        },
    ]
    summary = parse_preview(data)
    assert summary.role_changes == [] and not summary.first_run
    assert summary.retired_membership_resources == 1
    assert "upgrade: 1 per-scope `cf:RoleMembership` resource" in render_markdown(summary)


def test_no_changes() -> None:
    summary = parse_preview(fixture("noop"))
    assert not summary.has_changes
    md = render_markdown(summary)
    assert "✅ **No changes**: Cloud Foundry already matches the mappings." in md
    assert "<details" not in md
    assert "✅ **No drift**" in render_markdown(summary, drift=True)


def test_first_run_notes_adoption() -> None:
    summary = parse_preview(fixture("create"))
    assert summary.first_run
    assert len(summary.user_changes) == 11
    assert "First run on this stack" in render_markdown(summary)
    assert not parse_preview(fixture("add")).first_run


def test_sample_change_with_warning() -> None:
    md = summarize((DATA / "change.json").read_text())
    assert "**7 role grants to add, 4 role grants to remove** for 3 people in 3 orgs" in md
    assert "1 user to create, 1 user to delete" in md
    assert re.search(
        r"> \[!WARNING\]\n> - mappings/platform.yaml:\d+: grant of platform/sandbox/space_developer "
        r"to user corp-sso/oscar@corp.com expires in 3 days",
        md,
    )
    assert "| **total** | **7** | **4** |" in md


def test_brake_warning_gets_its_own_callout() -> None:
    data = fixture("remove")
    data["diagnostics"].append(
        {
            "severity": "warning",
            "message": "warning: mass-removal brake near its limit: 4 of 35 managed role assignments "
            "would be removed (limit 100 / 25%)\n",
        }
    )
    md = render_markdown(parse_preview(data))
    assert "> [!CAUTION]\n> **Mass-removal brake**\n> - mass-removal brake near its limit: 4 of 35" in md
    assert "[!WARNING]" not in md


def test_failed_preview_shows_the_error() -> None:
    data = {"steps": [], "diagnostics": [{"severity": "error", "message": "mappings/x.yaml:3:5: bad\n"}]}
    md = render_markdown(parse_preview(data))
    assert "❌ **The preview failed**" in md and "mappings/x.yaml:3:5: bad" in md
    assert "No changes" not in md


def test_text_around_json_is_tolerated() -> None:
    text = "warning: something\n" + (DATA / "noop.json").read_text() + "\nerror: no changes expected\n"
    assert "steps" in load_preview_text(text)
    with pytest.raises(PreviewParseError):
        load_preview_text("error: could not read the stack")
    with pytest.raises(PreviewParseError):
        load_preview_text('{"hello": 1}')


def big_preview(people: int) -> dict[str, Any]:
    """The 'add' fixture with the dev developer membership grown to ``people`` joiners."""
    data = copy.deepcopy(fixture("add"))
    step = next(s for s in data["steps"] if s["urn"].endswith("cf:OrgAccess::payments"))
    members = step["newState"]["inputs"]["roles"]["dev/space_developer"]
    for i in range(people):
        members[f"corp-sso/person{i:05d}@corp.com"] = PAY_DEV
    return data


def test_truncation_keeps_totals_and_says_how_many_more() -> None:
    summary = parse_preview(big_preview(5000))
    assert summary.count("add") == 5003
    md = render_markdown(summary)
    assert len(md) <= GITHUB_COMMENT_LIMIT
    assert "**5003 role grants to add, 0 role grants to remove**" in md  # totals are never cut
    shown = md.count("- ➕ ")
    match = re.search(
        r"\*\*… and (\d+) more changes not shown\*\* — see the full `pulumi preview` in the job log", md
    )
    assert match, md[-500:]
    assert shown + int(match.group(1)) == 5003
    assert md.rstrip().endswith("</details>")


@pytest.mark.parametrize("limit", [3000, 10_000, 65_536])
def test_truncation_respects_any_limit(limit: int) -> None:
    md = render_markdown(parse_preview(big_preview(2000)), max_chars=limit, details_url="https://ci/run/1")
    assert len(md) <= limit
    assert "more changes not shown** — see https://ci/run/1" in md


def test_small_preview_is_not_cut() -> None:
    md = render_markdown(parse_preview(big_preview(10)))
    assert "not shown" not in md


def test_markdown_special_characters_are_escaped() -> None:
    data = copy.deepcopy(fixture("add"))
    step = next(s for s in data["steps"] if s["urn"].endswith("cf:OrgAccess::payments"))
    step["newState"]["inputs"]["roles"]["dev/space_developer"]["corp-sso/o`dd|name@corp.com"] = (
        "named user | `x`"
    )
    md = render_markdown(parse_preview(data))
    assert "`corp-sso/o'dd\\|name@corp.com` — named user \\| 'x'" in md


def test_cli_summary(tmp_path: Path) -> None:
    out = tmp_path / "summary.md"
    result = CliRunner().invoke(main, ["summary", str(DATA / "drift.json"), "--drift", "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert "cf-access drift check" in out.read_text()
    result = CliRunner().invoke(main, ["summary", "-"], input="not json")
    assert result.exit_code == 1
    assert "no JSON object found" in result.output


def test_reasons_get_their_mapping_line_back_from_the_mappings() -> None:
    """State names the file only (a line inserted in a mapping changes nothing); the summary
    puts the line back from the project's mappings, through plan.locate_provenance."""
    from components.mappings import load_mappings
    from components.model import RoleType, Scope
    from components.plan import PlanSettings, locate_provenance

    repo = Path(__file__).resolve().parents[2]
    mappings = load_mappings(repo / "mappings", known_sources=["directory"])
    settings = PlanSettings(default_source="directory", source_origins={"directory": "corp-sso"})
    data = copy.deepcopy(fixture("add"))
    text = re.sub(r"\(mappings/payments\.yaml:\d+\)", "(mappings/payments.yaml)", json.dumps(data))

    def locate(provenance: str, org: str, space: str | None, role: str, member: str) -> str:
        return locate_provenance(
            provenance, mappings, Scope(org, space), cast(RoleType, role), member, settings
        )

    added = {(c.space, c.role): c.reason for c in parse_preview(json.loads(text), locate=locate).role_changes}
    line = next(
        n
        for n, row in enumerate((repo / "mappings" / "payments.yaml").read_text().splitlines(), 1)
        if "space_developer: {groups: [payments-dev]}" in row
    )
    assert (
        added[("dev", "space_developer")] == f"group directory:payments-dev (mappings/payments.yaml:{line})"
    )
    unlocated = {(c.space, c.role): c.reason for c in parse_preview(json.loads(text)).role_changes}
    assert unlocated[("dev", "space_developer")] == "group directory:payments-dev (mappings/payments.yaml)"
