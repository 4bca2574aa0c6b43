"""The batches list in a real browser, on a desktop and a phone: each batch shows its first
thumbnails, its counts, its first file names and its age, and nothing runs off the screen."""

from __future__ import annotations

import pytest
import requests
from support_images import jpeg

pytestmark = pytest.mark.parametrize("stack", ["sqlite-local"], indirect=True)

SIZES = [(1280, 900), (390, 844)]


def _upload(stack, names: list[str], batch_name: str) -> str:
    files = [("images", (name, jpeg((96 + i, 64)))) for i, name in enumerate(names)]
    body = requests.post(stack.url("/api/v1/jobs"), files=files, data={"batch_name": batch_name},
                         timeout=30).json()
    for job in body["jobs"]:
        stack.wait_job(job["id"])
    return body["batch_id"]


def _item(driver, batch_id: str) -> dict:
    """What one batch's list item shows, read in the page."""
    return driver.execute_script("""
        const li = document.getElementById('batch-' + arguments[0]).closest('li');
        const box = li.getBoundingClientRect();
        const inside = Array.from(li.querySelectorAll('*')).every(e => {
          const r = e.getBoundingClientRect();
          return r.width === 0 || (r.left >= box.left - 1 && r.right <= box.right + 1);
        });
        return {
          thumbs: Array.from(li.querySelectorAll('.batch-thumbs img'))
            .filter(i => i.complete && i.naturalWidth > 0 && i.src.indexOf('/thumb') >= 0).length,
          pills: Array.from(li.querySelectorAll('.counts .pill')).map(p => p.textContent.trim()),
          files: (li.querySelector('.bfiles') || {}).textContent || '',
          age: li.querySelector('time').textContent,
          inside: inside,
          bar: !!li.querySelector('.progress'),
        };""", batch_id)


def test_batches_list_tells_batches_apart_on_desktop_and_phone(browser, stack, shot):
    from selenium.webdriver.support.ui import WebDriverWait

    holiday = _upload(stack, [f"beach-{i}.jpg" for i in range(5)], "Holiday")
    portraits = _upload(stack, ["anna.jpg", "ben.jpg"], "Portraits")
    for width, height in SIZES:
        # the viewport itself at this size (a window size would include the browser's own frame)
        browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600})
        browser.get(stack.url("/batches"))
        assert browser.execute_script("return [window.innerWidth, window.innerHeight];") == [width, height]
        # lazy images load once laid out in view; every item of ours is near the top
        WebDriverWait(browser, 20, poll_frequency=0.2).until(
            lambda d: _item(d, holiday)["thumbs"] == 4 and _item(d, portraits)["thumbs"] == 2,
            message=f"thumbnails loaded at {width}x{height}")
        seen = _item(browser, holiday)
        assert seen["pills"][:2] == ["5 images", "5 done"], seen
        assert "beach-0.jpg, beach-1.jpg, beach-2.jpg and 2 more" in seen["files"]
        assert seen["age"] == "just now" and seen["inside"], seen
        seen = _item(browser, portraits)
        assert seen["pills"][:2] == ["2 images", "2 done"] and seen["files"] == "anna.jpg, ben.jpg"
        assert seen["inside"] and not seen["bar"], seen  # finished: no bar, one like every other
        assert browser.execute_script(
            "return document.documentElement.scrollWidth <= window.innerWidth + 1;"), \
            f"the batches list scrolls sideways at {width}x{height}"
        shot(f"batches-{width}x{height}")
