"""Under gevent workers a large render runs in gevent's thread pool: the process keeps serving."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CODE = """
from gevent import monkey
monkey.patch_all()  # as gunicorn's gevent worker does before loading the app
import io, json, time
import gevent
from PIL import Image, ImageDraw
from humanseg.core.variants import parse
from humanseg.web.offload import off_loop
from humanseg.web.variant_cache import Blobs, render_blobs

def encoded(img, fmt):
    buf = io.BytesIO()
    img.save(buf, fmt)
    return buf.getvalue()

size = (2400, 1600)
photo = Image.effect_noise(size, 40).convert("RGB")  # noise: a slow PNG, as real photos are
alpha = Image.new("L", size, 0)
ImageDraw.Draw(alpha).ellipse((600, 200, 1800, 1600), fill=255)
blobs = Blobs(original=encoded(photo, "JPEG"), alpha=encoded(alpha, "PNG"))
opts = parse("cutout", [])  # full-size RGBA PNG: the slowest common variant
ticks = []

def ticker():  # another request's greenlet: it runs only when the loop is free
    while True:
        ticks.append(time.monotonic())
        gevent.sleep(0.005)

real_sleep = monkey.get_original("time", "sleep")  # blocks its own thread, never yields to the loop

# Wait until the other greenlet has ticked `wanted` times (or `patience` seconds have passed), then
# render; the render and the ticks seen while waiting and while rendering. Only a call off the loop
# lets it tick meanwhile, however fast or slow the machine is.
def render_once_others_ran(opts, blobs, wanted, patience):
    start, end = len(ticks), time.monotonic() + patience
    while len(ticks) - start < wanted and time.monotonic() < end:
        real_sleep(0.005)
    waiting = len(ticks) - start
    data = render_blobs(opts, blobs)
    return data, waiting, len(ticks) - start - waiting

gevent.spawn(ticker)
gevent.sleep(0.02)
out = {}
# In the pool the ticker runs while the call waits for it (up to 120 s: a loaded machine is only
# slower); on the loop it cannot, so that wait only ends at its short patience.
for name, call in (("pool", lambda: off_loop(render_once_others_ran, opts, blobs, 3, 120)),
                   ("inline", lambda: render_once_others_ran(opts, blobs, 3, 0.5))):
    data, waiting, rendering = call()
    out[name] = {"ticks_waiting": waiting, "ticks_rendering": rendering, "png": data[:4] == b"\\x89PNG"}
print(json.dumps(out))
"""


def test_rendering_leaves_the_event_loop_free():
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(CODE)], capture_output=True, text=True,
                          cwd=ROOT, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["pool"]["png"] and out["inline"]["png"]
    # on the loop nothing else ran meanwhile, neither while it waited nor while it rendered
    assert out["inline"]["ticks_waiting"] == 0 and out["inline"]["ticks_rendering"] <= 1, out
    # in the pool the other greenlet kept running: while the call waited for it, and during the
    # large render itself (PIL releases the GIL); counts of events, not rates, so no speed involved
    assert out["pool"]["ticks_waiting"] >= 3 and out["pool"]["ticks_rendering"] >= 1, out


ERRORS = """
from gevent import monkey
monkey.patch_all()
from humanseg.core.errors import ImageError
from humanseg.web.offload import off_loop

def refuse(name):
    raise ImageError("corrupt_image", f"{name}: the jpeg file is truncated")

try:
    off_loop(refuse, "a.jpg")
except ImageError as exc:
    print("raised", exc.code)
print("value", off_loop(lambda a, b: a + b, 2, 3))
"""


def test_an_error_in_the_pool_reaches_the_caller_without_a_console_traceback():
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(ERRORS)], capture_output=True, text=True,
                          cwd=ROOT, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["raised", "corrupt_image", "value", "5"]
    assert "Traceback" not in proc.stderr, proc.stderr  # gevent's hub printed one for every rejected upload
