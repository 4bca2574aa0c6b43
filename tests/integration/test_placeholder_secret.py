""".env.example's placeholder secret: refused where strangers could reach the server, a loud
warning on loopback (issue 10, finding 12)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from factories import make_settings, settings_env
from support_live import free_port, stop_process, wait_until

from humanseg.core import migrate
from humanseg.web.exposure import ExposedSecret, check_secret, is_loopback

ROOT = Path(__file__).resolve().parents[2]


PLACEHOLDER = "change-me-to-a-long-random-string"  # what .env.example shipped until issue 10


def test_env_example_as_shipped_passes_the_check():
    line = next(x for x in (ROOT / ".env.example").read_text().splitlines()
                if x.startswith("HUMANSEG_SECRET_KEY="))
    secret = line.partition("=")[2]
    assert check_secret(make_settings(secret_key=secret), ["0.0.0.0"]) is None


@pytest.mark.parametrize("host,loopback", [
    ("127.0.0.1", True), ("127.8.9.1", True), ("::1", True), ("[::1]", True), ("localhost", True),
    ("0.0.0.0", False), ("::", False), ("10.1.2.3", False), ("example.com", False)])
def test_loopback(host, loopback):
    assert is_loopback(host) is loopback


def test_the_placeholder_is_refused_beyond_loopback_and_tolerated_on_it():
    settings = make_settings(secret_key=PLACEHOLDER)
    with pytest.raises(ExposedSecret, match=r"0\.0\.0\.0"):
        check_secret(settings, ["127.0.0.1", "0.0.0.0"])
    assert "WARNING" in check_secret(settings, ["127.0.0.1"])
    assert check_secret(make_settings(secret_key="Change_Me"), ["127.0.0.1"])  # look-alikes too
    assert check_secret(make_settings(secret_key="9f" * 32), ["0.0.0.0"]) is None
    assert check_secret(make_settings(), ["0.0.0.0"]) is None  # empty: a random one is made and kept


def _env(tmp_path, **values) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUMANSEG_")}
    env.update(settings_env(**values))
    return env


def test_up_refuses_the_placeholder_on_all_interfaces_before_starting_anything(tmp_path):
    env = _env(tmp_path, data_dir=tmp_path / "var", host="0.0.0.0", port=free_port(),
               secret_key=PLACEHOLDER)
    proc = subprocess.run([sys.executable, "-m", "humanseg.cli", "up"], check=False, env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "placeholder" in proc.stderr and "refusing" in proc.stderr
    assert not (tmp_path / "var").exists()  # no broker, database or child was started


def test_web_on_loopback_serves_and_warns(tmp_path, redis_url, private_queue):
    db_url = f"sqlite:///{tmp_path / 'web.db'}"
    migrate.upgrade(db_url)
    port = free_port()
    env = _env(tmp_path, data_dir=tmp_path, database_url=db_url, broker_url=redis_url,
               queue=private_queue, port=port, secret_key=PLACEHOLDER)
    log_path = tmp_path / "web.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "humanseg.cli", "web", "--workers", "1"],
                                env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        def up() -> bool:
            try:
                return requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).ok
            except requests.RequestException:
                return proc.poll() is not None
        wait_until(up, 120, "web answers")
        assert proc.poll() is None, log_path.read_text()
        assert "WARNING: HUMANSEG_SECRET_KEY is the placeholder" in log_path.read_text()
    finally:
        stop_process(proc)
