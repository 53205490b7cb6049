"""``cf-access doctor`` on LDAP sources (real slapd): the connection and bind are checked once per
source, and every mapped group is checked, a missing one reported at the mapping line using it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from components.cli.doctor import gather_snapshot
from components.identity.config import parse_identity_sources
from components.mappings import load_mappings
from sandbox.slapd import data as D
from sandbox.slapd.server import SlapdServer, free_port

PASSWORD = "doctor-bind-Secret-1188"
MAPPING = """\
org: payments
spaces:
  dev:
    space_developer: {groups: [devs, ghosts]}
"""


@pytest.fixture(scope="module")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlapdServer]:
    with SlapdServer.start(tmp_path_factory.mktemp("slapd")) as server:
        conn = server.admin()
        D.load(conn, D.Data([D.User("alice", "alice@corp.com")], [D.Group("devs", ("alice",))]), PASSWORD)
        conn.unbind_s()
        yield server


def run_doctor(slapd: SlapdServer, tmp_path: Path, **overrides: Any) -> list[tuple[str, str, str, str]]:
    (tmp_path / "mappings").mkdir(exist_ok=True)
    (tmp_path / "mappings" / "payments.yaml").write_text(MAPPING, encoding="utf-8")
    cfg = {
        "type": "ldap",
        "urls": [slapd.url],
        "caBundle": str(slapd.tls.ca_file),
        "bindDn": D.BIND_DN,
        "bindPassword": PASSWORD,
        "userBase": D.PEOPLE,
        "groupBase": D.GROUPS,
        **overrides,
    }
    sources = parse_identity_sources({"ldap": cfg}, tmp_path)
    mappings = load_mappings(tmp_path / "mappings", known_sources=sources.keys())
    _, findings = gather_snapshot(mappings, sources, "ldap", dt.date.today())
    assert PASSWORD not in str(findings)
    return [(f.where, f.level, f.code, f.message) for f in findings]


def test_doctor_checks_each_mapped_group(slapd: SlapdServer, tmp_path: Path) -> None:
    findings = run_doctor(slapd, tmp_path)
    assert len(findings) == 1
    where, level, code, message = findings[0]
    assert where.endswith("payments.yaml:4") and (level, code) == ("error", "missing-group")
    assert "ldap:ghosts" in message


def test_doctor_reports_a_refused_bind_once(slapd: SlapdServer, tmp_path: Path) -> None:
    findings = run_doctor(slapd, tmp_path, bindPassword="wrong-one-9")
    assert [(w, lv, c) for w, lv, c, _ in findings] == [("identity source ldap", "error", "ldap-bind")]
    assert "refused" in findings[0][3] and slapd.url in findings[0][3]


def test_doctor_reports_an_unreachable_server(slapd: SlapdServer, tmp_path: Path) -> None:
    dead = f"ldap://127.0.0.1:{free_port()}"
    findings = run_doctor(slapd, tmp_path, urls=[dead], connectTimeoutSeconds=2)
    assert [c for _, _, c, _ in findings] == ["ldap-bind"] and dead in findings[0][3]
