"""`monitor serve` in a real browser: headless Chromium from Debian's packages (`.ci/chromium.sh`),
driven by Selenium, against uvicorn on 127.0.0.1.  A screenshot of each page is kept under
test-artifacts/browser/.  Skipped, with the reason, when Chromium or its driver is absent."""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import feedparser
import httpx
import pytest
from portfolio_store import build, now

from monitor.config import load_settings
from monitor.web.app import create_app

from conftest import ROOT, needs_shared
from receivers import free_port

CHROMIUM = os.environ.get("MONITOR_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("MONITOR_CHROMEDRIVER", "/usr/bin/chromedriver")
ARTIFACTS = ROOT / "test-artifacts" / "browser"

pytestmark = [
    needs_shared,
    pytest.mark.skipif(
        not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()),
        reason=f"no Chromium at {CHROMIUM} or no driver at {CHROMEDRIVER} (.ci/chromium.sh installs them)",
    ),
]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    import uvicorn

    folder = tmp_path_factory.mktemp("browser")
    store = build(folder / "monitor.db")
    config = folder / "monitor.yaml"
    config.write_text("watches:\n  - name: opening\n    trials: [NCT06821503, NCT07268053]\n")
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(store, load_settings(str(config)), now), host="127.0.0.1", port=port, log_level="error")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            pytest.fail("uvicorn did not start")
        threading.Event().wait(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)
    store.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1280,900",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()


def navigate(driver, action) -> None:
    """Do what loads a new page, and wait (at most 10 s) until the old one is gone and the new one loaded."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    old = driver.find_element(By.TAG_NAME, "html")
    action()
    wait = WebDriverWait(driver, 10)
    wait.until(expected_conditions.staleness_of(old))
    wait.until(lambda d: d.execute_script("return document.readyState") == "complete")


def shot(driver, name: str) -> None:
    driver.save_screenshot(str(ARTIFACTS / f"{name}.png"))


def test_an_analyst_filters_the_portfolio_opens_a_trial_compares_versions_and_follows_the_feed(served, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    browser.get(f"{served}/?since=2026-02-01")
    assert browser.title == "registry-monitor"
    assert browser.find_element(By.ID, "trial-NCT06821503")
    shot(browser, "1-portfolio")

    Select(browser.find_element(By.ID, "category")).select_by_value("status")
    navigate(browser, browser.find_element(By.ID, "apply").click)
    assert "category=status" in browser.current_url
    categories = {e.text for e in browser.find_elements(By.CSS_SELECTOR, "section.trial .category")}
    assert categories == {"status"}
    shot(browser, "2-portfolio-status")

    navigate(browser, browser.find_element(By.CSS_SELECTOR, "#trial-NCT06821503 h3 a").click)
    assert browser.current_url.endswith("/trials/NCT06821503")
    assert browser.find_element(By.ID, "status").text == "RECRUITING"
    assert browser.find_element(By.ID, "dates-chart").is_displayed()
    shot(browser, "3-trial")

    Select(browser.find_element(By.ID, "from")).select_by_value("1")
    Select(browser.find_element(By.ID, "to")).select_by_value("2")
    navigate(browser, browser.find_element(By.ID, "compare").click)
    shown = browser.find_element(By.ID, "comparison")
    browser.execute_script("arguments[0].scrollIntoView()", shown)
    comparison = shown.text
    assert "Overall status NOT_YET_RECRUITING -> RECRUITING" in comparison
    assert "Start slipped 2 months: 2025-02 -> 2025-04-11 (now ACTUAL, was ESTIMATED)" in comparison
    shot(browser, "4-comparison")

    navigate(browser, browser.back)
    navigate(browser, browser.back)
    atom = browser.find_element(By.ID, "atom").get_attribute("href")
    assert atom.startswith(f"{served}/feeds/changes.atom?") and "category=status" in atom
    browser.get(atom)
    shot(browser, "5-feed")
    feed = feedparser.parse(httpx.get(atom, timeout=10).content)
    assert not feed.bozo and feed.entries
    for entry in feed.entries:
        assert entry.id and entry.updated and entry.title and entry.link.startswith(f"{served}/trials/")
    assert any(e.title.startswith("NCT06821503: now recruiting") for e in feed.entries)


def test_the_readme_screenshot_is_the_portfolio_page(served, browser):
    """Refreshes docs/portfolio.png when MONITOR_REFRESH_SCREENSHOT is set; otherwise checks it is there."""
    if os.environ.get("MONITOR_REFRESH_SCREENSHOT"):
        browser.set_window_size(1100, 760)
        browser.get(f"{served}/?since=2026-03-01&min_severity=major")
        browser.save_screenshot(str(ARTIFACTS / "portfolio.png"))
        shutil.copy(ARTIFACTS / "portfolio.png", ROOT / "docs" / "portfolio.png")
        browser.set_window_size(1280, 900)
    assert (ROOT / "docs" / "portfolio.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
