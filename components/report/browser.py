"""Open a report in Debian's headless Chromium through Selenium (tests, benchmark, screenshot).

Development tooling only: Selenium is in requirements-dev.txt, and the program never
imports this module. The browser and the driver are the system's (``make setup``
installs ``chromium`` and ``chromium-driver``); both paths are given to Selenium and
``SE_OFFLINE`` is set, so Selenium Manager never downloads a browser or a driver.
The flags keep Chromium off the network (no component updates, sync or background
requests): the report must render with nothing but the file.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1000",
)


class BrowserMissing(RuntimeError):
    """Chromium or its driver is not installed."""


@contextmanager
def headless_chromium() -> Iterator[Any]:
    """A Selenium Chrome driver on the system Chromium, with a fresh profile folder."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    for path in (CHROMIUM, CHROMEDRIVER):
        if not path.exists():
            raise BrowserMissing(
                f"{path} is missing: run make setup (apt-get install chromium chromium-driver)"
            )
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager, should it ever run, must not download
    with tempfile.TemporaryDirectory(prefix="cf-access-chromium-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = str(CHROMIUM)
        for flag in (*FLAGS, f"--user-data-dir={profile}"):
            options.add_argument(flag)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
        try:
            yield driver
        finally:
            driver.quit()


def open_report(driver: Any, path: Path, timeout: float = 60.0) -> float:
    """Load ``path`` and wait until its script has drawn the tables; milliseconds it took."""
    start = time.perf_counter()
    driver.get(path.resolve().as_uri())
    while driver.execute_script("return document.body && document.body.dataset.ready") != "true":
        if time.perf_counter() - start > timeout:
            raise TimeoutError(f"{path} did not render within {timeout:.0f} s")
        time.sleep(0.01)
    return (time.perf_counter() - start) * 1000


def console_errors(driver: Any) -> list[str]:
    """Messages the page logged at SEVERE level (script errors, blocked loads)."""
    return [str(e.get("message")) for e in driver.get_log("browser") if e.get("level") == "SEVERE"]


def rendered_ms(driver: Any) -> int:
    """The page's own count: milliseconds from navigation start until its tables were drawn."""
    return int(driver.execute_script("return document.body.dataset.renderedMs"))
