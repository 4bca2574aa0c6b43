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


# ---- a live stack for the browser (same recipe as tests/conftest.py `stack`) -------------
# Kept here so that a slow gunicorn boot (ReadTimeout while workers import the app) does
# not error the browser suite; see docs/REQUESTS-gallery.md item 8.

def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_up(url: str, proc, timeout: float) -> None:
    import time

    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"web server exited with {proc.returncode}")
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"{url} did not answer in {timeout}s")


class Live:
    """Base URL plus helpers, like the core Stack."""

    def __init__(self, base_url: str, settings, storage):
        self.base_url, self.settings, self.storage = base_url, settings, storage

    def url(self, path: str) -> str:
        return self.base_url + path

    def wait_job(self, job_id: str, timeout: float = 60.0) -> dict:
        import time

        import requests

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            body = requests.get(self.url(f"/api/v1/jobs/{job_id}"), timeout=10).json()
            if body["status"] in ("succeeded", "failed"):
                return body
            time.sleep(0.2)
        raise TimeoutError(f"job {job_id} not finished: {body}")


@pytest.fixture(scope="session")
def live(chromium_paths, tmp_path_factory, redis_url, queue_name, tiny_model_dir):
    """gunicorn web + Celery worker subprocesses on SQLite, local storage, real broker."""
    import subprocess
    import sys

    from core import migrate
    from core.settings import Settings
    from core.storage import make_storage

    root = Path(__file__).resolve().parent.parent.parent
    tmp = tmp_path_factory.mktemp("browser-stack")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUMANSEG_")}
    values = {"data_dir": tmp, "database_url": f"sqlite:///{tmp / 'humanseg.db'}",
              "broker_url": redis_url, "queue": queue_name, "storage": "local",
              "model_path": tiny_model_dir, "model_backend": "onnx", "threads": 1,
              "host": "127.0.0.1", "port": port, "lease_seconds": 30,
              "stale_queued_seconds": 5, "secret_key": "browser-test"}
    env.update({f"HUMANSEG_{k.upper()}": str(v) for k, v in values.items()})
    settings = Settings.from_env(env)
    migrate.upgrade(settings.database_url)
    procs = []
    for name, argv in (("worker", ["worker", "--pool=prefork"]), ("web", ["web"])):
        log = open(tmp / f"{name}.log", "wb")  # noqa: SIM115 - closed in the finally below
        proc = subprocess.Popen([sys.executable, "-m", "core.cli", *argv], env=env, cwd=root,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        procs.append((name, proc, log))
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_up(base + "/healthz", procs[1][1], 90)
        yield Live(base, settings, make_storage(settings))
    finally:
        for name, proc, log in reversed(procs):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            log.close()
            text = (tmp / f"{name}.log").read_text(errors="replace")
            if "Traceback" in text:
                print(f"--- browser stack {name}.log ---\n{text[-4000:]}")
