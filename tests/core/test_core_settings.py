import re
import stat
from dataclasses import fields
from pathlib import Path

import pytest

from humanseg.core.errors import ConfigError
from humanseg.core.secret_key import ensure_secret_key
from humanseg.core.settings import AUTO_CONCURRENCY_MAX, Settings, env_name


def test_defaults_need_nothing_installed():
    s = Settings.from_env({})
    assert s.data_dir == Path("var")
    assert s.database_url == "sqlite:///var/humanseg.db"
    assert s.broker_url == ""
    assert s.storage == "local" and s.storage_dir == Path("var/storage")
    assert s.max_files == 500 and s.max_file_bytes == 25 * 1024 * 1024
    assert s.max_pixels == 40_000_000 and s.port == 8000 and s.queue == "humanseg"


def test_env_overrides_and_frozen():
    s = Settings.from_env({"HUMANSEG_DATA_DIR": "/d", "HUMANSEG_STORAGE": "S3",
                           "HUMANSEG_MAX_FILES": "7", "HUMANSEG_SEGMENT_WAIT_SECONDS": "1.5"})
    assert s.database_url == "sqlite:////d/humanseg.db"
    assert s.storage == "s3" and s.max_files == 7 and s.segment_wait_seconds == 1.5
    with pytest.raises(AttributeError):
        s.port = 1  # type: ignore[misc]


@pytest.mark.parametrize("env", [{"HUMANSEG_PORT": "eighty"}, {"HUMANSEG_STORAGE": "ftp"}])
def test_bad_values_raise(env):
    with pytest.raises(ConfigError):
        Settings.from_env(env)


def test_threads_split_cores_between_processes():
    s = Settings.from_env({"HUMANSEG_WORKER_CONCURRENCY": "2"})
    assert s.effective_threads(cores=8) == 4
    assert s.effective_threads(cores=1) == 1
    assert s.with_(threads=3).effective_threads(cores=8) == 3


def test_defaults_are_declared_once():
    # from_env with nothing set is exactly the dataclass's defaults (no second table of defaults).
    assert Settings.from_env({}) == Settings()
    assert Settings(data_dir=Path("/d")).storage_dir == Path("/d/storage")


def test_every_field_has_its_env_var():
    seen = []

    class Recording(dict):
        def get(self, key, default=None):
            seen.append(key)
            return default

    Settings.from_env(Recording())
    assert seen == [env_name(f.name) for f in fields(Settings)]
    assert "HUMANSEG_SWEEPER" in seen and all(n.startswith("HUMANSEG_") for n in seen)


def test_empty_value_means_default():
    assert Settings.from_env({"HUMANSEG_S3_REGION": " ", "HUMANSEG_PORT": ""}) == Settings()


def test_clamps_and_case():
    s = Settings.from_env({"HUMANSEG_WORKER_CONCURRENCY": "-3", "HUMANSEG_MAX_ATTEMPTS": "-2",
                           "HUMANSEG_LOG_LEVEL": "debug"})
    assert (s.worker_concurrency, s.max_attempts, s.log_level) == (0, 1, "DEBUG")


def test_worker_processes_default_to_one_per_core_with_one_model_thread_each():
    auto = Settings.from_env({})
    assert auto.worker_concurrency == 0
    assert (auto.effective_concurrency(cores=2), auto.effective_threads(cores=2)) == (2, 1)
    assert (auto.effective_concurrency(cores=1), auto.effective_threads(cores=1)) == (1, 1)
    # many cores: processes stop at AUTO_CONCURRENCY_MAX (memory), threads take the rest
    many = (auto.effective_concurrency(cores=16), auto.effective_threads(cores=16))
    assert many == (AUTO_CONCURRENCY_MAX, 16 // AUTO_CONCURRENCY_MAX)
    assert 1 <= auto.effective_concurrency() <= AUTO_CONCURRENCY_MAX
    assert Settings.from_env({"HUMANSEG_WORKER_CONCURRENCY": "6"}).effective_concurrency(cores=2) == 6


@pytest.mark.parametrize("raw,expected", [("1", True), ("on", True), ("Yes", True), ("true", True),
                                          ("0", False), ("off", False), ("no", False), ("FALSE", False)])
def test_sweeper_switch(raw, expected):
    assert Settings().sweeper is True
    assert Settings.from_env({"HUMANSEG_SWEEPER": raw}).sweeper is expected


@pytest.mark.parametrize("env,message", [
    ({"HUMANSEG_PORT": "eighty"}, "HUMANSEG_PORT must be an integer, got 'eighty'"),
    ({"HUMANSEG_SWEEPER": "maybe"}, "HUMANSEG_SWEEPER must be one of 1/0"),
    ({"HUMANSEG_MAX_ATTEMPTS": "x"}, "HUMANSEG_MAX_ATTEMPTS must be an integer"),
    ({"HUMANSEG_STORAGE": "ftp"}, "HUMANSEG_STORAGE must be 'local' or 's3', got 'ftp'"),
])
def test_errors_name_the_variable(env, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        Settings.from_env(env)


def test_building_settings_touches_no_files(tmp_path):
    data_dir = tmp_path / "data"
    s = Settings.from_env({"HUMANSEG_DATA_DIR": str(data_dir)})
    assert s.secret_key == "" and "secret_key" not in repr(s)
    assert not data_dir.exists()


def test_secret_key_is_kept_per_data_dir(tmp_path):
    s = Settings.from_env({"HUMANSEG_DATA_DIR": str(tmp_path / "data")})
    first = ensure_secret_key(s)
    path = tmp_path / "data" / "secret_key"
    assert len(first) == 64 and path.read_text() == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert ensure_secret_key(s) == first
    assert ensure_secret_key(Settings.from_env({"HUMANSEG_DATA_DIR": str(tmp_path / "data")})) == first


def test_configured_secret_key_wins_and_writes_nothing(tmp_path):
    s = Settings.from_env({"HUMANSEG_DATA_DIR": str(tmp_path / "data"), "HUMANSEG_SECRET_KEY": "x"})
    assert ensure_secret_key(s) == "x"
    assert not (tmp_path / "data").exists()


def _settings_table_script():
    """scripts/settings_table.py, loaded as a module (scripts/ is not a package)."""
    import importlib.util

    path = Path(__file__).resolve().parents[2] / "scripts" / "settings_table.py"
    spec = importlib.util.spec_from_file_location("settings_table", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_setting_is_described_where_it_is_declared():
    assert all(f.metadata["doc"].strip() for f in fields(Settings)), "give the field a doc= text"


def test_the_table_has_one_row_per_setting_with_its_env_var_and_doc():
    script = _settings_table_script()
    rows = script.table().splitlines()[2:]
    assert len(rows) == len(fields(Settings))
    for row, f in zip(rows, fields(Settings), strict=True):
        assert row.startswith(f"| `{env_name(f.name)}` |") and f.metadata["doc"].replace("|", "\\|") in row


def test_the_table_shows_the_declared_defaults():
    script = _settings_table_script()
    shown = {f.name: script.shown_default(f) for f in fields(Settings)}
    assert shown["max_file_bytes"] == f"{Settings().max_file_bytes // (1024 * 1024)} MiB"
    assert shown["max_pixels"] == f"{Settings().max_pixels:,}"
    assert shown["storage"] == f"`{Settings().storage}`" and shown["broker_url"] == "empty"
    assert shown["sweeper"] == ("`1` (on)" if Settings().sweeper else "`0` (off)")
    assert shown["allowed_hosts"] == "`" + ",".join(Settings().allowed_hosts) + "`"


def test_readme_settings_table_is_the_one_made_from_settings():
    # Stale? Run: python scripts/settings_table.py --write
    script = _settings_table_script()
    readme = script.README.read_text()
    assert script.readme_table(readme) == script.table()
    assert script.with_table(readme) == readme
