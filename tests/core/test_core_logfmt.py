"""core/logfmt.py (escaped key=value log values; every log event of the product goes through it) and
core/redact.py (no server paths in messages)."""

from __future__ import annotations

import ast
import io
import json
import logging
import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from humanseg.core.errors import StorageError
from humanseg.core.logfmt import logkv, quote_value
from humanseg.core.logsetup import FORMAT
from humanseg.core.queue import BrokerError
from humanseg.core.redact import without_paths

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("web", "worker", "core", "ml", "humanseg")  # the packages humanseg.web, ... and humanseg/
LOG_METHODS = {"debug", "info", "warning", "warn", "error", "exception", "critical", "fatal", "log"}
FIELD = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)')


def test_plain_values_stay_bare():
    line = logkv(event="job_done", job_id="3c0ffee", attempt=2, ms=41.5, ok=True, none=None)
    assert line == "event=job_done job_id=3c0ffee attempt=2 ms=41.5 ok=True none=-"
    assert logkv(key="results/abc/mask.png", url="http://minio:9000/b") == \
        "key=results/abc/mask.png url=http://minio:9000/b"


@pytest.mark.parametrize("hostile", [
    "a\nevent=forged", "a\r\nevent=forged", "a\x85event=forged", "a\u2028event=forged",
    "a\u2029event=forged", "a\x0bevent=forged", "a\x0cevent=forged", "a\x1cevent=forged",
    "a\x1b[2Jevent=forged", "a\x00event=forged", 'a" event=forged x="', "a\\\" event=forged",
])
def test_a_value_cannot_start_a_line_or_a_field(hostile):
    line = logkv(event="job_deleted", job_id=hostile, objects=1)
    assert len(line.splitlines()) == 1 and line.isprintable()
    # The value is one quoted token: after it comes the next real field, nothing forged.
    assert line.startswith('event=job_deleted job_id="') and line.endswith('" objects=1')
    inner = line[len('event=job_deleted job_id="'):-len('" objects=1')]
    assert '"' not in inner.replace('\\"', "")


def test_spaces_and_unicode_are_quoted_but_readable():
    assert quote_value("ünï cødé.jpg") == '"ünï cødé.jpg"'
    assert quote_value("") == '""'
    assert quote_value("a=b") == '"a=b"'


@pytest.mark.parametrize("text,expected", [
    ("cannot write results/a/mask.png: [Errno 13] Permission denied: '/srv/my data/results/a/.tmp-x'",
     "cannot write results/a/mask.png: [Errno 13] Permission denied: '.tmp-x'"),
    ("[Errno 21] Is a directory: '/var/lib/humanseg/storage/originals/x.jpg'",
     "[Errno 21] Is a directory: 'x.jpg'"),
    ("load failed at /onnxruntime_src/core/session.cc:123", "load failed at session.cc:123"),
    ("C:\\Users\\me\\x.png failed", "x.png failed"),
    ("../../etc/passwd.jpg: not an image", "../../etc/passwd.jpg: not an image"),
    ("s3 error on originals/a.jpg: ServiceUnavailable", "s3 error on originals/a.jpg: ServiceUnavailable"),
    ("see http://example.org/a/b", "see http://example.org/a/b"),
    ("a / b and x: /", "a / b and x: /"),
])
def test_without_paths(text, expected):
    assert without_paths(text) == expected


def _event_messages_not_through_logkv(path: Path, root: Path = ROOT) -> list[str]:
    """`file:line` of each log call whose message is a literal (printf-style, f-string, % or .format)
    holding `event=`: such a message splices its values in unescaped."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in LOG_METHODS and node.args):
            continue
        message = node.args[1] if node.func.attr == "log" and len(node.args) > 1 else node.args[0]
        if any(isinstance(n, ast.Constant) and isinstance(n.value, str) and "event=" in n.value
               for n in ast.walk(message)):
            found.append(f"{path.relative_to(root)}:{node.lineno}")
    return found


def test_every_event_log_line_goes_through_logkv():
    files = [f for d in PRODUCT for f in sorted((ROOT / d).rglob("*.py"))]
    assert len(files) > 50, files  # the scan looked where the product is
    offenders = [hit for f in files for hit in _event_messages_not_through_logkv(f)]
    assert offenders == [], "log events must be log.x(logkv(event=..., key=value)): " + ", ".join(offenders)
    through_logkv = sum(f.read_text().count("logkv(event=") for f in files)
    assert through_logkv >= 40, through_logkv


def test_the_scan_catches_printf_and_f_string_events(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text('log.warning("event=a key=%s", k)\nlog.info(f"event=b key={k}")\n'
                      'log.info("event=c key=%s" % k)\nlog.log(30, "event=d")\n'
                      'log.info(logkv(event="ok", key=k))\n"""event=in_a_docstring"""\n')
    assert _event_messages_not_through_logkv(sample, tmp_path) == [f"sample.py:{n}" for n in (1, 2, 3, 4)]


def _fields(line: str) -> dict[str, str]:
    """Parse one key=value line back: quoted values are JSON-style strings."""
    return {k: json.loads(v) if v.startswith('"') else v for k, v in FIELD.findall(line)}


@pytest.fixture
def uploads_log():
    """What humanseg.web.uploads logs, formatted as core/logsetup.py formats it."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter(FORMAT))
    logger = logging.getLogger("humanseg.web.uploads")
    logger.addHandler(handler)
    saved = logger.level
    logger.setLevel(logging.INFO)
    yield out
    logger.removeHandler(handler)
    logger.setLevel(saved)


HOSTILE = 'refused\nERROR humanseg event=job_deleted job_id=x say="hi" \\ \u2028end'


def test_an_exception_text_in_a_log_event_stays_one_escaped_field(monkeypatch, uploads_log):
    from humanseg.web import uploads

    def refuse(*_args):
        raise BrokerError(HOSTILE)

    monkeypatch.setattr(uploads, "send_segment", refuse)
    services = SimpleNamespace(celery=None, settings=SimpleNamespace(queue="segment"))
    uploads.enqueue([SimpleNamespace(id="3c0ffee")], services)
    [line] = uploads_log.getvalue().splitlines()
    message = line.split(" humanseg.web.uploads ", 1)[1]
    assert message.startswith("event=enqueue_failed job_id=3c0ffee error=\"") and line.isprintable()
    assert _fields(message) == {"event": "enqueue_failed", "job_id": "3c0ffee", "error": HOSTILE}


def test_a_storage_key_in_a_log_event_stays_one_escaped_field(uploads_log):
    from humanseg.web import uploads

    class Down:
        def delete(self, key):
            raise StorageError("down")

    uploads._discard(["originals/ok.jpg", HOSTILE], SimpleNamespace(storage=Down()))
    lines = uploads_log.getvalue().splitlines()
    assert len(lines) == 2 and all(line.isprintable() for line in lines)
    assert [_fields(line.split(" humanseg.web.uploads ", 1)[1]) for line in lines] == [
        {"event": "orphan_original", "key": "originals/ok.jpg"}, {"event": "orphan_original", "key": HOSTILE}]
