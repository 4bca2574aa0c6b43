"""Issue 11 in a real browser: the job page's light previews and cut-out options, background
upload, rejected files kept for the batch page, batch names and outputs, phone-width pages."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
import requests
from PIL import Image
from support_images import encode, jpeg, solid, text

from humanseg.core.results import result_key

pytestmark = pytest.mark.parametrize("stack", ["sqlite-local"], indirect=True)
PHONE = (390, 844)


def _wait(driver, predicate, timeout=30.0, what="condition"):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.2).until(
        lambda d: predicate(d), message=f"timed out waiting for {what}")


def _finished_job(stack, size=(320, 240)) -> str:
    resp = requests.post(stack.url("/api/v1/jobs"), files=[("images", ("person.jpg", jpeg(size)))],
                         timeout=60)
    assert resp.status_code == 202, resp.text
    job_id = resp.json()["jobs"][0]["id"]
    assert stack.wait_job(job_id)["status"] == "succeeded"
    return job_id


def _preview_loaded(driver) -> bool:
    return driver.execute_script(
        "const i=document.getElementById('opt-preview'); return !!i && i.complete && i.naturalWidth>0;")


def _preview_src(driver) -> str:
    return driver.execute_script("const i=document.getElementById('opt-preview'); return i ? i.src : '';")


def _fits(driver) -> bool:
    return driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth + 1;")


def test_job_page_options(browser, stack, shot, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    job_id = _finished_job(stack, size=(900, 600))
    browser.get(stack.url(f"/jobs/{job_id}"))
    _wait(browser, lambda d: d.execute_script(
        "const v=Array.from(document.querySelectorAll('.views img'));"
        "return v.length===5 && v.every(i => i.complete && i.naturalWidth > 0);"), 30, "the previews")
    # Display-size previews only: every result the page fetched carried a size.
    fetched = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
        ".filter(n => n.indexOf('/api/v1/jobs/') >= 0);")
    assert fetched and all("size=720" in u for u in fetched), fetched
    widths = browser.execute_script(
        "return Array.from(document.querySelectorAll('.views img')).map(i => i.naturalWidth);")
    assert max(widths) == 720
    assert browser.find_element(By.ID, "view-cutout").find_element(By.XPATH, "..") \
        .get_attribute("class") == "frame checker"

    # JPEG with a transparent background is refused, and the page says why (the API's words).
    Select(browser.find_element(By.ID, "opt-format")).select_by_value("jpeg")
    error = browser.find_element(By.ID, "opt-error")
    _wait(browser, lambda d: error.is_displayed() and "no transparency" in error.text, 15, "the error")

    # A colour swatch: the preview follows, the error goes.
    browser.find_element(By.CSS_SELECTOR, "button.swatch[value='#000000']").click()
    _wait(browser, lambda d: "bg=%23000000" in _preview_src(d) and _preview_loaded(d), 15, "black preview")
    _wait(browser, lambda d: not error.is_displayed(), 10, "the error to clear")
    assert "format=jpeg" in _preview_src(browser)
    assert browser.find_element(By.ID, "opt-frame").get_attribute("class") == "frame"  # no checkerboard

    # Size and crop with a margin.
    size = browser.find_element(By.ID, "opt-size")
    size.send_keys("200")
    browser.find_element(By.ID, "opt-crop").click()
    browser.find_element(By.ID, "opt-margin").send_keys("10%")
    _wait(browser, lambda d: "margin=10%25" in _preview_src(d) and _preview_loaded(d), 15, "cropped preview")
    href = browser.find_element(By.ID, "opt-download").get_attribute("href")
    assert "size=200" in href and "crop=true" in href
    got = requests.get(href, timeout=30)
    assert got.status_code == 200 and got.headers["Content-Type"] == "image/jpeg"
    assert max(Image.open(io.BytesIO(got.content)).size) <= 200
    shot("11-job-options")

    # A background image, uploaded in place through the API.
    backdrop = tmp_path / "beach.png"
    backdrop.write_bytes(encode(solid((400, 300), (250, 200, 0)), "PNG"))
    browser.find_element(By.ID, "bg-file").send_keys(str(backdrop))
    _wait(browser, lambda d: "bg=image%3A" in _preview_src(d) and _preview_loaded(d), 20, "backdrop preview")
    assert browser.find_element(By.ID, "bg-mode-image").is_selected()
    href = browser.find_element(By.ID, "opt-download").get_attribute("href")
    on_black = re.sub(r"bg=image%3A[0-9a-f]{32}", "bg=%23000000", href)
    assert on_black != href
    over, black = (np.asarray(Image.open(io.BytesIO(requests.get(u, timeout=30).content)).convert("RGB"),
                              np.float32) for u in (href, on_black))
    # What the backdrop adds where the person is not: yellow (250, 200, 0) through 1 - alpha.
    added = (over - black).reshape(-1, 3).mean(axis=0)
    assert added[0] > 5 and added[0] > added[1] > added[2] and abs(added[2]) < 3, added
    shot("12-job-background-image")

    # The options survive a reload (they are in the page's URL) and the page fits a phone.
    browser.set_window_size(*PHONE)
    browser.refresh()
    _wait(browser, _preview_loaded, 20, "the preview after reload")
    assert "bg=image%3A" in _preview_src(browser) or "bg=image:" in _preview_src(browser)
    assert _fits(browser)
    shot("13-job-phone")
    browser.execute_script("document.getElementById('options').scrollIntoView();")
    shot("14-job-options-phone")


def test_rejected_files_stay_on_the_batch_page_with_its_name_and_outputs(browser, stack, tmp_path):
    from selenium.webdriver.common.by import By

    paths = []
    for name, data in (("keep.jpg", jpeg()), ("notes.jpg", text())):
        p = tmp_path / name
        p.write_bytes(data)
        paths.append(str(p))
    browser.get(stack.url("/"))
    browser.find_element(By.ID, "batch-name").send_keys("Picnic")
    browser.find_element(By.CSS_SELECTOR, "input[name=outputs][value=cutout]").click()
    browser.find_element(By.ID, "file-input").send_keys("\n".join(paths))
    _wait(browser, lambda d: d.find_element(By.ID, "upload-summary").text.startswith("Done"), 60, "uploads")
    browser.find_element(By.ID, "open-batch").click()
    _wait(browser, lambda d: "/batches/" in d.current_url, 20, "the batch page")
    assert browser.find_element(By.CSS_SELECTOR, "#batch h1").text == "Picnic"
    box = browser.find_element(By.ID, "rejected")
    _wait(browser, lambda d: box.is_displayed(), 10, "the rejected list")
    row = browser.find_element(By.CSS_SELECTOR, "#rejected-list li")
    assert "notes.jpg" in row.text and "not supported" in row.text
    browser.refresh()  # still there after leaving and coming back
    assert browser.find_element(By.ID, "rejected").is_displayed()
    # the worker made the cut-out the upload asked for
    batch_id = browser.current_url.rstrip("/").rsplit("/", 1)[1]
    jobs = requests.get(stack.url(f"/api/v1/batches/{batch_id}"), timeout=10).json()["jobs"]
    job = stack.wait_job(jobs[0]["id"])
    assert job["model"] == "fast"  # the upload page's default choice
    assert stack.storage.exists(result_key(job["id"], "cutout", job["model"]))
    browser.find_element(By.ID, "rejected-dismiss").click()
    browser.refresh()
    assert not browser.find_element(By.ID, "rejected").is_displayed()


def test_batches_list_and_error_pages_at_phone_width(browser, stack, shot):
    from selenium.webdriver.common.by import By

    made = requests.post(stack.url("/api/v1/jobs"), files=[("images", ("x.jpg", jpeg()))],
                         data={"batch_name": "A batch with a rather long name that must wrap on a phone"},
                         timeout=30)
    assert made.status_code == 202, made.text  # the batch the list is to show first
    browser.set_window_size(*PHONE)
    browser.get(stack.url("/batches"))
    first = browser.find_element(By.CSS_SELECTOR, "#batch-list li .bname")
    assert first.text.startswith("A batch with a rather long name")  # newest first
    assert _fits(browser)
    shot("15-batches-phone")
    browser.get(stack.url("/no/such/page"))
    assert browser.find_element(By.CSS_SELECTOR, "#error-page h2").text == "Page not found"
    assert _fits(browser)
    shot("16-404-phone")


def test_one_photo_goes_straight_to_its_page_with_the_cutout_first_and_impossible_options_refused(
        browser, stack, shot, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    photo = tmp_path / "alice.jpg"
    photo.write_bytes(jpeg((320, 240)))
    browser.set_window_size(*PHONE)
    browser.get(stack.url("/"))
    browser.find_element(By.ID, "file-input").send_keys(str(photo))
    _wait(browser, lambda d: "/jobs/" in d.current_url, 60, "the photo's own page (no batch page between)")
    job_id = browser.current_url.split("/jobs/", 1)[1].split("?")[0].split("#")[0]
    stack.wait_job(job_id)
    browser.refresh()
    _wait(browser, lambda d: d.find_elements(By.ID, "download-cutout"), 30, "the finished page")
    # The first button on a phone is the cut-out's download, not Delete; the first panel is the cut-out.
    buttons = [b.text for b in browser.find_elements(By.CSS_SELECTOR, ".row.spread .btn")]
    assert buttons[0] == "Download cut-out", buttons
    first = browser.find_elements(By.CSS_SELECTOR, ".views img")[0]
    assert first.get_attribute("id") == "view-cutout"
    checker = browser.execute_script(
        "return getComputedStyle(document.getElementById('view-cutout').parentNode).backgroundImage;")
    assert "linear-gradient" in checker  # the checkerboard shows (a grey rule used to cancel it)
    # JPEG with a transparent background cannot be: the form says so in words and asks for no preview.
    Select(browser.find_element(By.ID, "opt-format")).select_by_value("jpeg")
    error = browser.find_element(By.ID, "opt-error")
    _wait(browser, lambda d: error.is_displayed() and "JPEG has no transparency" in error.text, 10, "the refusal")
    assert not browser.find_elements(By.ID, "opt-preview")
    assert _fits(browser)
    shot("phone-job-jpeg-refused")
    browser.find_element(By.ID, "opt-margin").send_keys("lots")
    Select(browser.find_element(By.ID, "opt-format")).select_by_value("png")
    _wait(browser, lambda d: "Margin must be a number" in error.text, 10, "the margin refusal")
