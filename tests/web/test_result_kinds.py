"""Every kind in core.results.RESULTS reaches the API answer, its download, the pages and the zip."""

from __future__ import annotations

import io
import zipfile

from gallery_support import add_batch

from humanseg.core.models import JobStatus
from humanseg.core.results import RESULTS

FULL_SIZE = [kind for kind in RESULTS if kind.full_size]


def test_every_kind_is_in_the_job_answer_and_served_with_its_type(client, app):
    _, (job_id,) = add_batch(app, ["a.jpg"])
    urls = client.get(f"/api/v1/jobs/{job_id}").json["urls"]
    assert set(urls) == {"self", "original", *(kind.name for kind in RESULTS)}
    for kind in RESULTS:
        assert urls[kind.name] == f"/api/v1/jobs/{job_id}/{kind.name}"
        with client.get(urls[kind.name]) as resp:
            assert resp.status_code == 200 and resp.mimetype == kind.content_type, kind.name
            name = f"a_{kind.name}{kind.suffix}"  # after the upload's name, as the job page saves it
            assert f'filename={name}' in resp.headers["Content-Disposition"], kind.name


def test_download_names_follow_the_upload_safely_encoded(client, app):
    _, (job_id,) = add_batch(app, ['Zoë "best" shot.jpg'])
    with client.get(f"/api/v1/jobs/{job_id}/cutout") as resp:
        disposition = resp.headers["Content-Disposition"]
    # An ASCII fallback and the exact UTF-8 name; the client's quotes never reach the header.
    assert disposition == ("inline; filename=\"Zoe _best_ shot_cutout.png\"; "
                           "filename*=UTF-8''Zo%C3%AB%20_best_%20shot_cutout.png"), disposition
    with client.get(f"/api/v1/jobs/{job_id}/original") as resp:
        assert resp.headers["Content-Disposition"].endswith("UTF-8''Zo%C3%AB%20_best_%20shot.jpg")


def test_result_urls_keep_the_prefix_the_app_is_mounted_under(client, app):
    _, (job_id,) = add_batch(app, ["a.jpg"])
    urls = client.get(f"/api/v1/jobs/{job_id}", base_url="http://localhost/seg/").json["urls"]
    assert urls["self"] == f"/seg/api/v1/jobs/{job_id}"
    for kind in (*(kind.name for kind in RESULTS), "original"):
        assert urls[kind] == f"/seg/api/v1/jobs/{job_id}/{kind}"


def test_result_urls_are_null_until_the_job_succeeded(client, app):
    _, (job_id,) = add_batch(app, ["q.jpg"], status=JobStatus.running)
    urls = client.get(f"/api/v1/jobs/{job_id}").json["urls"]
    assert all(urls[kind.name] is None for kind in RESULTS) and urls["original"]
    for kind in RESULTS:
        resp = client.get(f"/api/v1/jobs/{job_id}/{kind.name}")
        assert resp.status_code == 409 and resp.json["error"]["code"] == "not_ready"


def test_job_page_shows_and_offers_every_full_size_kind(client, app):
    _, (job_id,) = add_batch(app, ["person.jpg"])
    html = client.get(f"/jobs/{job_id}").get_data(as_text=True)
    for kind in FULL_SIZE:
        frame = "frame checker" if kind.has_alpha else "frame"
        assert f'<div class="{frame}"><img id="view-{kind.name}"' in html, kind.name
        assert f"<figcaption>{kind.label}</figcaption>" in html, kind.name
        assert f'download="person_{kind.name}{kind.suffix}"' in html, kind.name
        assert f"{kind.label} ({kind.format_label})" in html, kind.name


def test_archive_holds_every_archived_kind(client, app):
    batch_id, _ = add_batch(app, ["a.jpg", "b.jpg"])
    archived = [kind for kind in RESULTS if kind.archive_folder]
    assert archived  # the zip must hold something
    zf = zipfile.ZipFile(io.BytesIO(client.get(f"/api/v1/batches/{batch_id}/archive").data))
    expected = {f"{kind.archive_folder}/{stem}{kind.suffix}" for kind in archived
                for stem in ("a", "b")}
    assert set(zf.namelist()) == expected


def test_segment_offers_the_full_size_kinds(client):
    resp = client.post("/api/v1/segment", data={"output": "thumb"},
                       content_type="multipart/form-data")
    assert resp.status_code == 400
    names = ", ".join(kind.name for kind in FULL_SIZE)
    assert resp.json["error"]["message"] == f"output must be one of {names}"
