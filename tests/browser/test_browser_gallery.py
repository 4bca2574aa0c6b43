"""The product in a real browser: upload through the page, watch the batch, open a result,
download the zip; rejected files, hostile filenames, no-JS fallback, no external loads."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
import requests
from support_images import jpeg, text
from support_live import wait_until

# The core's live stack (gunicorn + Celery worker + real broker + tiny model); one kind is
# enough for the browser: SQLite and local storage.
pytestmark = pytest.mark.parametrize("stack", ["sqlite-local"], indirect=True)

HOSTILE = "<img src=x onerror=alert(1)>.jpg"  # a legal Linux file name


def _wait(driver, predicate, timeout=60.0, what="condition"):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.2).until(
        lambda d: predicate(d), message=f"timed out waiting for {what}")


def _files(tmp_path: Path, names_and_bytes) -> list[str]:
    paths = []
    for name, data in names_and_bytes:
        p = tmp_path / "in" / name
        p.parent.mkdir(exist_ok=True)
        p.write_bytes(data)
        paths.append(str(p))
    return paths


def _loaded_thumbs(driver) -> int:
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('#job-grid .tile img'))"
        ".filter(i => i.complete && i.naturalWidth > 0 && i.src.indexOf('/thumb') >= 0).length;")


def _no_alert(driver) -> None:
    from selenium.common.exceptions import NoAlertPresentException

    with pytest.raises(NoAlertPresentException):
        driver.switch_to.alert.text  # noqa: B018 - raises when no alert is open


def _external_loads(driver, base_url: str) -> list[str]:
    urls = driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name);")
    return [u for u in urls if not u.startswith(base_url)]


def test_upload_three_watch_open_and_download(browser, stack, shot, tmp_path):
    from selenium.webdriver.common.by import By

    paths = _files(tmp_path, [("alice.jpg", jpeg((160, 120))), ("bob.jpg", jpeg((120, 160))),
                              (HOSTILE, jpeg((100, 100)))])
    browser.get(stack.url("/"))
    assert browser.title.startswith("Upload")
    shot("01-upload-page")
    browser.find_element(By.ID, "file-input").send_keys("\n".join(paths))

    # All files accepted → the page moves on to the live batch view by itself.
    _wait(browser, lambda d: "/batches/" in d.current_url, 60, "the batch page")
    _wait(browser, lambda d: _loaded_thumbs(d) == 3, 120, "three thumbnails")
    _wait(browser, lambda d: d.find_element(By.ID, "batch").get_attribute("data-done") == "true",
          30, "polling to stop")
    assert browser.find_element(By.ID, "count-succeeded").text == "3"
    assert browser.find_element(By.ID, "batch-progress-fill").get_attribute("style").strip() \
        in ("width: 100%;", "width:100%")
    names = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#job-grid .fname")]
    assert sorted(names) == sorted(["alice.jpg", "bob.jpg", HOSTILE])  # shown as text
    _no_alert(browser)
    assert _external_loads(browser, stack.base_url) == []
    shot("02-batch-done")
    batch_url = browser.current_url
    _no_finished_batch_controls(browser)

    # Download all: the browser saves the zip; it holds three masks.
    browser.find_element(By.ID, "download-all").click()
    # complete: Chromium renames it from .crdownload, a zip's central directory is written last
    zips = _wait(browser, lambda d: [p for p in d.downloads.glob("*.zip")
                                     if not p.name.endswith(".crdownload") and zipfile.is_zipfile(p)],
                 60, "the whole zip")
    with zipfile.ZipFile(zips[0]) as zf:
        masks = [n for n in zf.namelist() if n.startswith("masks/")]
        assert len(masks) == 3, zf.namelist()
        assert sorted(masks) == ["masks/alice.png", "masks/bob.png", "masks/img src_x onerror_alert_1.png"]

    # Open one result: five previews, cut-out on a checkerboard, background replacement.
    browser.find_element(By.CSS_SELECTOR, "#job-grid a.tile").click()
    _wait(browser, lambda d: "/jobs/" in d.current_url, 20, "the job page")
    _wait(browser, lambda d: d.execute_script(
        "return Array.from(document.querySelectorAll('.views img'))"
        ".every(i => i.complete && i.naturalWidth > 0);") and
        len(d.find_elements(By.CSS_SELECTOR, ".views img")) == 5, 30, "five views")
    assert browser.find_element(By.ID, "view-cutout").find_element(By.XPATH, "..") \
        .get_attribute("class") == "frame checker"
    shot("03-job-detail")
    job_url = browser.current_url
    assert _placeholder_fits(browser, "opt-margin")
    field = browser.find_element(By.ID, "bg-text")
    field.clear()
    field.send_keys("#1e40af")
    _wait(browser, lambda d: "bg=%231e40af" in d.find_element(By.ID, "opt-preview").get_attribute("src"),
          10, "the preview to follow the colour")
    _wait(browser, lambda d: d.execute_script(
        "const i=document.getElementById('opt-preview'); return i.complete && i.naturalWidth>0;"),
        10, "the composite")
    href = browser.find_element(By.ID, "opt-download").get_attribute("href")
    resp = requests.get(href, timeout=10)
    assert resp.status_code == 200 and resp.headers["Content-Type"] == "image/png"
    browser.execute_script("document.getElementById('bg-tool') && 0; window.scrollTo(0, 600);")
    shot("04-job-background")

    # The gallery lists the finished results as thumbnails.
    browser.get(stack.url("/gallery"))
    thumbs = browser.find_elements(By.CSS_SELECTOR, "#gallery-grid .tile img")
    assert len(thumbs) >= 3 and all("/thumb" in t.get_attribute("src") for t in thumbs)
    _no_alert(browser)
    shot("05-gallery")

    # Mobile width still reads well (no horizontal scroll).
    browser.set_window_size(390, 844)
    browser.get(batch_url)
    assert browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth + 1;")
    _no_finished_batch_controls(browser)
    shot("06-batch-phone")
    browser.get(job_url)  # on a phone the downloads come before the previews, two previews to a row
    downloads = browser.find_element(By.ID, "downloads")
    figures = browser.find_elements(By.CSS_SELECTOR, ".views figure")
    assert browser.execute_script("return arguments[0].getBoundingClientRect().bottom;", downloads) \
        <= browser.execute_script("return arguments[0].getBoundingClientRect().top;", figures[0])
    assert browser.execute_script("return arguments[0].getBoundingClientRect().top;", figures[1]) \
        == browser.execute_script("return arguments[0].getBoundingClientRect().top;", figures[0])
    assert _placeholder_fits(browser, "opt-margin")
    shot("06b-job-phone")


def _placeholder_fits(driver, field_id: str) -> bool:
    """Whether a text field's placeholder fits inside it (measured in the field's own font)."""
    return driver.execute_script(
        "const i = document.getElementById(arguments[0]); const st = getComputedStyle(i);"
        "const c = document.createElement('canvas').getContext('2d'); c.font = st.font;"
        "const inner = i.clientWidth - parseFloat(st.paddingLeft) - parseFloat(st.paddingRight);"
        "return c.measureText(i.placeholder).width <= inner;", field_id)


def _no_finished_batch_controls(driver) -> None:
    """A finished batch with nothing failed offers neither 'Cancel remaining' nor 'Retry ... (0)'."""
    from selenium.webdriver.common.by import By

    for form in ("batch-cancel-form", "batch-retry-form"):
        assert not driver.find_element(By.ID, form).is_displayed(), form


def test_rejected_file_shows_the_servers_reason(browser, stack, shot, tmp_path):
    from selenium.webdriver.common.by import By

    paths = _files(tmp_path, [("good.jpg", jpeg()), ("x.jpg", text())])
    browser.get(stack.url("/"))
    browser.find_element(By.ID, "file-input").send_keys("\n".join(paths))
    _wait(browser, lambda d: d.find_element(By.ID, "upload-summary").text.startswith("Done"),
          60, "uploads to finish")
    rows = {r.find_element(By.CLASS_NAME, "name").text: r
            for r in browser.find_elements(By.CSS_SELECTOR, "#upload-list li")}
    assert rows["good.jpg"].get_attribute("class") == "done"
    # The page stays (a file was refused): the accepted row follows its job to the end, not "queued" forever.
    _wait(browser, lambda d: rows["good.jpg"].find_element(By.CLASS_NAME, "state").text == "Done · segmented",
          60, "the accepted row to say its job finished")
    bad = rows["x.jpg"]
    assert bad.get_attribute("class") == "rejected"
    reason = bad.find_element(By.CLASS_NAME, "state").text
    # The row shows the name; the reason does not say it again.
    assert reason.startswith("Rejected:") and "x.jpg" not in reason
    assert reason.count("not supported") <= 1  # the reason once, not repeated
    # The server's own words, not a generic message.
    api = requests.post(stack.url("/api/v1/jobs"), files={"images": ("x.jpg", text())}, timeout=10)
    assert api.json()["error"]["message"].removeprefix("x.jpg: ").lower() in reason.lower()
    first = browser.find_element(By.CSS_SELECTOR, "#upload-list li")
    assert first.get_attribute("class") == "rejected"  # the row that needs attention comes first
    assert "/upload" not in browser.current_url  # stayed on the page to show it
    link = browser.find_element(By.ID, "open-batch")
    assert link.is_displayed() and "/batches/" in link.get_attribute("href")
    shot("07-upload-rejected")


def test_a_folder_says_which_files_it_skipped(browser, stack, tmp_path):
    from selenium.webdriver.common.by import By

    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(jpeg())
    (folder / "broken.jpg").write_bytes(text())  # refused by the server: the page stays to show it
    (folder / "notes.txt").write_text("not an image")
    (folder / "plan.pdf").write_bytes(b"%PDF-1.4")
    browser.get(stack.url("/"))
    browser.find_element(By.ID, "folder-input").send_keys(str(folder))
    _wait(browser, lambda d: d.find_element(By.ID, "upload-summary").text.startswith("Done"), 60, "the uploads")
    note = browser.find_element(By.ID, "upload-skipped")
    assert note.is_displayed() and note.text.startswith("2 files were skipped (not JPEG, PNG or WebP)")
    assert "notes.txt" in note.text and "plan.pdf" in note.text


def test_hostile_filename_from_the_api_renders_as_text(browser, stack, shot):
    from selenium.webdriver.common.by import By

    name = "<script>alert(1)</script>.jpg"
    resp = requests.post(stack.url("/api/v1/jobs"), files={"images": (name, jpeg())}, timeout=10)
    assert resp.status_code == 202, resp.text
    body = resp.json()
    browser.get(stack.url(f"/batches/{body['batch_id']}"))
    _wait(browser, lambda d: _loaded_thumbs(d) == 1, 60, "the thumbnail")
    _no_alert(browser)
    assert browser.find_element(By.CSS_SELECTOR, "#job-grid .fname").text == name
    browser.get(stack.url(f"/jobs/{body['jobs'][0]['id']}"))
    assert browser.find_element(By.ID, "job-title").text == name
    _no_alert(browser)
    assert not browser.execute_script("return document.querySelectorAll('main script').length")
    shot("08-xss-filename")


def test_upload_without_javascript(browser_nojs, stack, artifacts_dir, tmp_path):
    from selenium.webdriver.common.by import By

    driver = browser_nojs
    paths = _files(tmp_path, [("plain1.jpg", jpeg()), ("plain2.jpg", jpeg())])
    driver.get(stack.url("/"))
    driver.find_element(By.ID, "file-input").send_keys("\n".join(paths))
    driver.find_element(By.CSS_SELECTOR, "#upload-form button[type=submit]").click()
    _wait(driver, lambda d: "/batches/" in d.current_url, 30, "the batch page")
    assert driver.find_element(By.ID, "count-total").text == "2"
    def both_succeeded() -> bool:
        if driver.find_element(By.ID, "count-succeeded").text == "2":
            return True
        driver.refresh()  # no JavaScript: the page changes only when loaded again
        return False

    wait_until(both_succeeded, 60, "both jobs shown succeeded", interval=1)
    driver.save_screenshot(str(artifacts_dir / "09-nojs-batch.png"))


def test_delete_batch_from_the_page(browser, stack):
    from selenium.webdriver.common.by import By

    resp = requests.post(stack.url("/api/v1/jobs"), files={"images": ("gone.jpg", jpeg())}, timeout=10)
    batch_id = resp.json()["batch_id"]
    stack.wait_job(resp.json()["jobs"][0]["id"])
    browser.get(stack.url(f"/batches/{batch_id}"))
    browser.find_element(By.CSS_SELECTOR, "form[action$='/delete'] button").click()
    browser.switch_to.alert.accept()  # the confirm() dialog
    _wait(browser, lambda d: d.current_url.rstrip("/") == stack.base_url, 20, "redirect home")
    assert "Batch deleted" in browser.page_source
    assert requests.get(stack.url(f"/api/v1/batches/{batch_id}"), timeout=10).status_code == 404


def test_folder_of_30_photos_becomes_30_thumbnails_without_reload(browser, stack, shot, tmp_path):
    from selenium.webdriver.common.by import By

    folder = tmp_path / "holiday"
    (folder / "day2").mkdir(parents=True)
    for i in range(30):  # the "folder of 30 photos"
        sub = "day2/" if i % 3 == 0 else ""
        (folder / f"{sub}p{i:02d}.jpg").write_bytes(jpeg((80 + i * 4, 64)))
    (folder / "notes.txt").write_text("not an image")
    (folder / ".DS_Store").write_bytes(b"\0\0")
    browser.get(stack.url("/"))
    browser.find_element(By.ID, "folder-input").send_keys(str(folder))
    _wait(browser, lambda d: "/batches/" in d.current_url, 60, "the batch page")
    browser.execute_script("window.__sameDocument = true;")  # gone if the page reloads
    _wait(browser, lambda d: _loaded_thumbs(d) == 30, 180, "thirty thumbnails")
    assert browser.execute_script("return window.__sameDocument === true;")
    assert browser.find_element(By.ID, "count-total").text == "30"
    names = sorted(e.text for e in browser.find_elements(By.CSS_SELECTOR, "#job-grid .fname"))
    assert names == [f"p{i:02d}.jpg" for i in range(30)]  # not notes.txt, not .DS_Store
    shot("10-folder-batch")


def test_cancel_and_retry_buttons_then_the_download_keeps_the_upload_name(browser, stack, shot):
    from datetime import datetime, timedelta, timezone

    from factories import insert_job
    from selenium.webdriver.common.by import By

    # A queued job no worker has been told about yet (and the sweeper leaves alone for a minute).
    job_id = insert_job(stack.storage, stack.sessions, jpeg(), name="Holiday pic",
                        created_at=datetime.now(timezone.utc) + timedelta(seconds=60))
    browser.get(stack.url(f"/jobs/{job_id}"))
    browser.find_element(By.ID, "job-cancel").click()
    _wait(browser, lambda d: d.find_elements(By.ID, "job-retry"), 20, "the retry button")
    assert "was cancelled" in browser.find_element(By.ID, "job-cancelled").text
    shot("job-cancelled")
    browser.find_element(By.ID, "job-retry").click()  # queues it and rings the doorbell
    # The job is cancelled, a finished state, until the form's POST lands: wait for the page to say
    # it was queued again, or wait_job would take "cancelled" for the end (and browser.get below
    # would abort the POST still in flight).
    _wait(browser, lambda d: not d.find_elements(By.ID, "job-cancelled")
          and d.find_element(By.ID, "job-status").text != "Cancelled", 20, "the page to show the job queued again")
    assert stack.wait_job(job_id)["status"] == "succeeded"
    browser.get(stack.url(f"/jobs/{job_id}"))
    link = browser.find_element(By.CSS_SELECTOR, f"a[href$='/api/v1/jobs/{job_id}/cutout'][download]")
    link.click()
    target = browser.downloads / "Holiday pic_cutout.png"
    _wait(browser, lambda d: target.is_file(), 20, f"{target.name} in the downloads")
    assert not list(browser.downloads.glob(f"{job_id}*"))  # the id-named file the server used to force
