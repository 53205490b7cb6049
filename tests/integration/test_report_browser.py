"""The access report's HTML in a real headless Chromium: search, filters, paging, no console errors.

The rows are the unit tests' scenario (tests/unit/test_report.py): every number asserted here
is known. Chromium and chromedriver are Debian's (``make setup`` installs them).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from components.report.browser import console_errors, headless_chromium, open_report
from components.report.model import AccessReport, Row
from components.report.render import write_report
from tests.unit.test_report import build, key

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def driver() -> Iterator[Any]:
    with headless_chromium() as d:
        yield d


@pytest.fixture
def page(driver: Any, tmp_path: Path) -> Any:
    html = write_report(build(), tmp_path)[0]
    open_report(driver, html)
    return driver


def cells(driver: Any, table: str, column: str) -> list[str]:
    heads = [th.text for th in driver.find_elements(By.CSS_SELECTOR, f"#t-{table} thead th")]
    i = heads.index(column)
    return [
        tr.find_elements(By.TAG_NAME, "td")[i].text
        for tr in driver.find_elements(By.CSS_SELECTOR, f"#t-{table} tbody tr")
    ]


def count(driver: Any, table: str) -> str:
    return str(driver.find_element(By.ID, f"n-{table}").text)


def type_into(driver: Any, element_id: str, text: str) -> None:
    box = driver.find_element(By.ID, element_id)
    box.clear()
    box.send_keys(text)
    driver.execute_script("return new Promise(r => setTimeout(r, 300))")  # past the input debounce


def test_page_draws_every_section_without_console_errors(page: Any) -> None:
    assert console_errors(page) == []
    report = build()
    for section, table in (("access", "access"), ("not granted", "not-granted"), ("changes", "changes")):
        n = len(report.section(section))
        assert count(page, table) == f"rows 1–{n} of {n}"
    assert cells(page, "leavers", "person") == [key("carol")]
    assert page.find_element(By.ID, "c-not-granted").text == "6"
    rects = page.find_elements(By.CSS_SELECTOR, "#heatmap rect")
    assert len(rects) == 2 * 8  # two orgs x eight role types
    assert page.find_element(By.ID, "next-up").text == report.next_up


def test_search_finds_one_person_in_every_table(page: Any) -> None:
    type_into(page, "q", "mallory")
    assert cells(page, "access", "person") == [key("mallory")]
    assert cells(page, "not-granted", "next up") == ["removed"]
    assert count(page, "changes") == "no rows (filtered from 4)"


def test_person_filter_shows_the_leaver_and_their_changes(page: Any) -> None:
    type_into(page, "f-person", "carol")
    assert cells(page, "leavers", "person") == [key("carol")]
    assert cells(page, "changes", "change") == ["leaver"]
    assert cells(page, "access", "next up") == ["removed"]


def test_org_and_role_filters(page: Any) -> None:
    Select(page.find_element(By.ID, "f-org")).select_by_visible_text("platform")
    orgs = cells(page, "access", "org")
    assert orgs and set(orgs) == {"platform"}
    Select(page.find_element(By.ID, "f-role")).select_by_visible_text("organization_user")
    assert sorted(cells(page, "access", "person")) == [key("dave"), key("gina")]
    page.find_element(By.ID, "clear").click()
    assert count(page, "access").startswith("rows 1–") and "filtered" not in count(page, "access")


def test_group_filter_matches_how_a_role_is_granted(page: Any) -> None:
    type_into(page, "f-group", "directory:leads")
    assert sorted(cells(page, "access", "person")) == [key("alice"), key("bob"), key("frank")]
    assert set(cells(page, "access", "mapping")) == {"mappings/payments.yaml:5"}


def test_protected_holder_is_marked(page: Any) -> None:
    type_into(page, "q", "admin@")
    row = page.find_element(By.CSS_SELECTOR, "#t-access tbody tr")
    assert row.get_attribute("class") == "protected"


def test_large_tables_page(driver: Any, tmp_path: Path) -> None:
    report = build()
    many = tuple(Row("access", "bulk", "", "space_developer", f"uaa/p{i:04d}") for i in range(120))
    big: AccessReport = dataclasses.replace(report, rows=(*report.rows, *many))
    open_report(driver, write_report(big, tmp_path)[0])
    total = len(big.section("access"))
    assert count(driver, "access") == f"rows 1–50 of {total}"
    assert len(driver.find_elements(By.CSS_SELECTOR, "#t-access tbody tr")) == 50
    driver.find_element(By.CSS_SELECTOR, "button.next[data-section='access']").click()
    assert count(driver, "access") == f"rows 51–100 of {total}"
    type_into(driver, "f-person", "uaa/p011")
    assert cells(driver, "access", "person") == [f"uaa/p011{i}" for i in range(10)]
    assert console_errors(driver) == []
