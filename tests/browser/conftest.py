"""Headless Debian Chromium driven by Selenium; nothing is downloaded at test time."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts" / "browser"


@pytest.fixture(scope="session")
def chromium_paths():
    """Skip (with the reason) when Debian's chromium / chromium-driver are not installed."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.path.exists(p)]
    if missing:
        pytest.skip(f"browser tests need {' and '.join(missing)} "
                    "(apt-get install chromium chromium-driver; `make test` installs them)")
    return CHROMIUM, CHROMEDRIVER


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """Where screenshots go (git-ignored)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


def _make_driver(tmp: Path, *, javascript: bool = True):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1280,900",
                f"--user-data-dir={tmp / 'profile'}"):
        opts.add_argument(arg)
    downloads = tmp / "downloads"
    downloads.mkdir(exist_ok=True)
    prefs = {"download.default_directory": str(downloads), "download.prompt_for_download": False,
             "safebrowsing.enabled": False}
    if not javascript:
        prefs["profile.managed_default_content_settings.javascript"] = 2
    opts.add_experimental_option("prefs", prefs)
    service = Service(executable_path=CHROMEDRIVER, log_output=str(tmp / "chromedriver.log"))
    driver = webdriver.Chrome(service=service, options=opts)
    driver.execute_cdp_cmd("Browser.setDownloadBehavior",
                           {"behavior": "allow", "downloadPath": str(downloads)})
    driver.set_page_load_timeout(30)
    driver.downloads = downloads
    return driver


@pytest.fixture
def browser(chromium_paths, tmp_path):
    """A fresh headless Chromium with its own profile and download folder."""
    # Selenium Manager must never try to fetch a driver or browser.
    os.environ.setdefault("SE_OFFLINE", "true")
    driver = _make_driver(tmp_path)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(tmp_path / "profile", ignore_errors=True)


@pytest.fixture
def browser_nojs(chromium_paths, tmp_path):
    """Chromium with JavaScript switched off (the plain-form fallback)."""
    os.environ.setdefault("SE_OFFLINE", "true")
    driver = _make_driver(tmp_path, javascript=False)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def shot(browser, artifacts_dir):
    """shot('name') saves a full-window PNG screenshot into tests/artifacts/browser/."""
    def take(name: str, driver=None) -> Path:
        path = artifacts_dir / f"{name}.png"
        (driver or browser).save_screenshot(str(path))
        return path
    return take
