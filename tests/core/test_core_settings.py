from pathlib import Path

import pytest
from humanseg.core.errors import ConfigError
from humanseg.core.settings import Settings


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


def test_secret_key_is_kept_per_data_dir(tmp_path):
    s = Settings.from_env({"HUMANSEG_DATA_DIR": str(tmp_path)})
    first = s.resolve_secret_key()
    assert len(first) == 64 and s.resolve_secret_key() == first
    assert Settings.from_env({"HUMANSEG_SECRET_KEY": "x"}).resolve_secret_key() == "x"
