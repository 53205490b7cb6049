"""bench/peer_tofu.py without the binaries: the Terraform configuration it writes, and that it says
so (and succeeds) when the peer is not built."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import peer_tofu
from bench.scale_data import SIZES


def test_hcl_string_escapes_templates() -> None:
    assert peer_tofu.hcl_str('a"b${x}%{y}') == '"a\\"b$${x}%%{y}"'


def test_config_one_file_per_org_with_guids_as_variables(tmp_path: Path) -> None:
    size = SIZES["S"]
    bindings = {
        ("corp-sso/u000001@corp.com", "organization_user", "org-0000"),
        ("corp-sso/u000001@corp.com", "space_developer", "org-0000/dev1"),
        ("corp-sso/u000002@corp.com", "organization_manager", "org-0001"),
    }
    state = {
        "organizations": [{"guid": "g-o0", "name": "org-0000"}, {"guid": "g-o1", "name": "org-0001"}],
        "spaces": [{"guid": "g-s0", "name": "dev1", "organization_guid": "g-o0"}],
    }
    n = peer_tofu.write_config(tmp_path, size, bindings, state, "http://127.0.0.1:1")
    assert n == 3
    assert sorted(p.name for p in tmp_path.glob("org-*.tf")) == [f"org-{i:04d}.tf" for i in range(10)]
    org0 = (tmp_path / "org-0000.tf").read_text()
    assert '"u000001@corp.com/organization_user" = { username = "u000001@corp.com"' in org0
    assert '"dev1/u000001@corp.com/space_developer" = { space = "org-0000/dev1"' in org0
    assert "depends_on = [cloudfoundry_org_role.org_0000]" in org0
    assert "u000002" not in org0
    tfvars = json.loads((tmp_path / "terraform.tfvars.json").read_text())
    assert tfvars["org_guids"] == {"org-0000": "g-o0", "org-0001": "g-o1"}
    assert tfvars["space_guids"] == {"org-0000/dev1": "g-s0"}
    assert tfvars["origin"] == "corp-sso"


def test_cli_config_uses_dev_overrides(tmp_path: Path) -> None:
    peer = peer_tofu.Peer(tmp_path / "tofu", tmp_path / "p" / "terraform-provider-cloudfoundry", "1", "c")
    cfg = tmp_path / "tofu.tfrc"
    peer_tofu.write_cli_config(cfg, peer)
    text = cfg.read_text()
    assert "dev_overrides" in text and json.dumps(str(tmp_path / "p")) in text


def test_not_built_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert peer_tofu.find_peer() is None
    assert peer_tofu.main(["--size", "S"]) == 0
    assert peer_tofu.NOT_BUILT in capsys.readouterr().out
