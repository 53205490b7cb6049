"""The report on disk: one self-contained HTML file, a CSV and a JSON file with the same rows.

The HTML carries its rows as JSON inside the page and draws a page of each table at a
time in plain inline JavaScript (52,400 roles at the L size: a table of every row would
freeze the browser). Jinja2 renders it with autoescape on; ``tojson`` makes the embedded
data safe inside ``<script>``. A Content-Security-Policy with ``default-src 'none'``
makes "no network when opened" a property of the file, not a promise.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import jinja2

from components.report.model import COLUMNS, SECTIONS, AccessReport, Row

_TEMPLATES = Path(__file__).parent / "templates"

# The columns each table shows, in order (the CSV and JSON carry all of them).
TABLES: dict[str, tuple[str, ...]] = {
    "access": (
        "org", "space", "role", "person", "granted_by", "mapping", "commit", "author", "committed",
        "until", "protected", "next_up",
    ),
    "not granted": ("org", "space", "role", "person", "ownership", "next_up", "reason"),
    "changes": ("time", "update", "action", "change", "person", "org", "space", "role", "reason"),
    "leavers": ("person", "reason", "time", "next_up", "protected"),
}  # fmt: skip
HEADINGS = {
    "granted_by": "granted by",
    "next_up": "next up",
    "committed": "date",
    "time": "time (UTC)",
    "update": "run",
}


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(_TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _table_data(report: AccessReport) -> dict[str, Any]:
    """{section: {"columns": [...], "rows": [[...], ...]}}: values only, columns named once."""
    out: dict[str, Any] = {}
    for section in SECTIONS:
        cols = TABLES[section]
        rows = [[_cell(getattr(r, c)) for c in cols] for r in report.rows if r.section == section]
        out[section] = {"columns": list(cols), "rows": rows}
    return out


def _cell(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else ""
    return str(value)


def render_html(report: AccessReport) -> str:
    template = _environment().get_template("report.html.j2")
    data = _table_data(report)
    return template.render(
        report=report,
        data=data,
        sections=SECTIONS,
        headings=HEADINGS,
        orgs=sorted({r.org for r in report.rows if r.org}),
        roles=sorted({r.role for r in report.rows if r.role}),
    )


def write_csv(report: AccessReport, path: Path) -> None:
    """The rows, every column; a cell a spreadsheet would run as a formula gets a leading ``'``."""
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(COLUMNS)
        writer.writerows(_csv_row(r) for r in report.rows)


# A spreadsheet runs a cell starting with one of these as a formula; IdP group names and reasons
# are not ours to trust, and auditors open the CSV in one (OWASP "CSV injection").
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _csv_row(row: Row) -> list[str]:
    return [_inert(_cell(getattr(row, c))) for c in COLUMNS]


def _inert(text: str) -> str:
    return f"'{text}" if text.startswith(_FORMULA_START) else text


def write_json(report: AccessReport, path: Path) -> None:
    doc = {
        "stack": report.stack,
        "generated": report.generated,
        "since": report.since,
        "until": report.until,
        "next_up": report.next_up,
        "counts": dict(report.counts),
        "rows": [{c: getattr(r, c) for c in COLUMNS} for r in report.rows],
    }
    path.write_text(json.dumps(doc, ensure_ascii=False, indent=1), encoding="utf-8")


def write_report(report: AccessReport, out_dir: Path) -> list[Path]:
    """Write ``access-review-<stack>-<date>.{html,csv,json}`` into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"access-review-{report.stack}-{report.generated[:10]}"
    html, table, doc = (out_dir / f"{stem}.{ext}" for ext in ("html", "csv", "json"))
    html.write_text(render_html(report), encoding="utf-8")
    write_csv(report, table)
    write_json(report, doc)
    return [html, table, doc]
