"""core/logfmt.py (escaped key=value log values) and core/redact.py (no server paths in messages)."""

from __future__ import annotations

import pytest

from humanseg.core.logfmt import logkv, quote_value
from humanseg.core.redact import without_paths


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
