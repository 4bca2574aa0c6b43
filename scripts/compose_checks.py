"""What scripts/compose_test.py asks of the running stack, as a client on 127.0.0.1 would.

Uploads go through the published web port; results are fetched the way a
client gets them: the API's own bytes, or the presigned S3 URL it redirects
to (the S3 server is on the stack's network, so those are fetched from inside
the web container). Masks are compared with the photos' ground truth when the
photos come from the shared human-segmentation set.
"""

from __future__ import annotations

import html.parser
import io
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import requests
from PIL import Image, ImageDraw


@dataclass
class Photo:
    """One upload: its bytes, and the person mask it should yield when known."""

    name: str
    data: bytes
    size: tuple[int, int]
    truth: np.ndarray | None = None


def photos(dataset: Path | None, count: int, offset: int = 0) -> list[Photo]:
    """`count` photos of people: from the shared human-segmentation set, else drawn ones."""
    images = sorted((dataset / "Training_Images").glob("*.jpg"),
                    key=lambda p: int(p.stem) if p.stem.isdigit() else 0) if dataset else []
    if len(images) >= offset + count:
        out = []
        for path in images[offset:offset + count]:
            data = path.read_bytes()
            img = Image.open(io.BytesIO(data))
            truth_path = dataset / "Ground_Truth" / f"{path.stem}.png"
            truth = None
            if truth_path.exists():
                truth = np.asarray(Image.open(truth_path).convert("L")) > 127
            out.append(Photo(f"person-{path.stem}.jpg", data, img.size, truth))
        return out
    return [_drawn(offset + i) for i in range(count)]


def _drawn(i: int) -> Photo:
    size = (320 + 16 * i, 240)
    img = Image.new("RGB", size, (220, 230, 240))
    d = ImageDraw.Draw(img)
    w, h = size
    d.ellipse([w * 0.42, h * 0.08, w * 0.58, h * 0.32], fill=(90, 60, 40))
    d.rectangle([w * 0.35, h * 0.32, w * 0.65, h * 0.98], fill=(30, 60, 150))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    return Photo(f"drawn-{i}.jpg", buf.getvalue(), size)


class Client:
    """The stack's API on 127.0.0.1:port with an API key; `inside(url)` fetches from the stack's network."""

    def __init__(self, port: int, api_key: str, inside: Callable[[str], bytes]) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.api_key = api_key
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {api_key}"
        self.inside = inside

    def browser(self) -> requests.Session:
        """A session signed in through the /signin form, as a person does: a cookie, no header."""
        web = requests.Session()
        form = web.get(self.base + "/signin", timeout=30)
        assert form.status_code == 200, f"/signin answered {form.status_code}"
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert token, "no CSRF token on the sign-in form"
        resp = web.post(self.base + "/signin", data={"csrf_token": token.group(1),
                                                     "api_key": self.api_key, "next": "/"},
                        timeout=30, allow_redirects=False)
        assert resp.status_code == 303, f"sign-in answered {resp.status_code}: {resp.text[:300]}"
        return web

    def get(self, path: str, **kw) -> requests.Response:
        """GET, waiting out a 429 as its Retry-After says (as our own client does), a few times."""
        for _ in range(5):
            resp = self.http.get(self.base + path, timeout=30, **kw)
            if resp.status_code != 429:
                return resp
            time.sleep(float(resp.headers.get("Retry-After", "1")))
        return resp

    def upload(self, items: list[Photo], batch_name: str, model: str | None = None) -> dict:
        files = [("images", (p.name, p.data, "image/jpeg")) for p in items]
        data = {"batch_name": batch_name, **({"model": model} if model else {})}
        resp = self.http.post(self.base + "/api/v1/jobs", files=files, data=data, timeout=120)
        assert resp.status_code == 202, f"upload answered {resp.status_code}: {resp.text[:500]}"
        body = resp.json()
        assert len(body["jobs"]) == len(items), body
        return body

    def batch(self, batch_id: str) -> dict:
        resp = self.get(f"/api/v1/batches/{batch_id}?limit=500")
        assert resp.status_code == 200, resp.text[:500]
        return resp.json()

    def wait_batch(self, batch_id: str, timeout: float,
                   on_progress: Callable[[dict], None] | None = None) -> dict:
        """Poll the batch until every job is terminal (or raise after `timeout` seconds)."""
        deadline = time.monotonic() + timeout
        while True:
            body = self.batch(batch_id)
            if on_progress:
                on_progress(body)
            statuses = [j["status"] for j in body["jobs"]]
            if statuses and body["done"]:
                return body
            if time.monotonic() > deadline:
                raise AssertionError(f"batch {batch_id} not finished after {timeout:.0f}s: "
                                     f"{_count(statuses)}")
            time.sleep(0.5)  # 120 polls a minute: well inside the API key's rate limit (300)

    def result(self, job_id: str, kind: str) -> tuple[bytes, str]:
        """A result's bytes and where they came from ('api' or the presigned host)."""
        resp = self.get(f"/api/v1/jobs/{job_id}/{kind}", allow_redirects=False)
        if resp.status_code == 200:
            return resp.content, "api"
        assert resp.status_code in (302, 303, 307), f"{kind} of {job_id}: {resp.status_code}"
        url = resp.headers["Location"]
        return self.inside(url), re.sub(r"^https?://([^/]+)/.*$", r"\1", url)


def check_models(client: Client, photo: Photo) -> dict:
    """One job per registered model on the same photo: each succeeds, says its model, has its own mask."""
    listed = client.get("/api/v1/models")
    assert listed.status_code == 200, listed.text[:500]
    names = [m["name"] for m in listed.json()["models"]]
    masks, out = {}, {}
    for name in names:
        body = client.upload([photo], f"compose-test model {name}", model=name)
        final = client.wait_batch(body["batch_id"], timeout=300)
        (job,) = final["jobs"]
        assert job["model"] == name, f"asked for {name}, the job says {job['model']}"
        out[name] = check_results(client, final, [photo])
        masks[name] = client.result(job["id"], "mask")[0]
    assert len(set(masks.values())) == len(masks), "two models made the same mask"
    return out


def _count(statuses: list[str]) -> dict[str, int]:
    return {s: statuses.count(s) for s in sorted(set(statuses))}


def check_results(client: Client, body: dict, items: list[Photo]) -> dict:
    """Every job succeeded; masks and cut-outs are the photo's size and agree; IoU vs truth."""
    by_name = {p.name: p for p in items}
    ious, sources = [], set()
    for job in body["jobs"]:
        assert job["status"] == "succeeded", f"{job['filename']}: {job['status']} {job.get('error')}"
        photo = by_name[job["filename"]]
        mask_bytes, src = client.result(job["id"], "mask")
        sources.add(src)
        mask = Image.open(io.BytesIO(mask_bytes))
        assert mask.format == "PNG" and mask.mode == "L", (mask.format, mask.mode)
        assert mask.size == photo.size, f"mask {mask.size} != photo {photo.size}"
        cut = Image.open(io.BytesIO(client.result(job["id"], "cutout")[0]))
        assert cut.format == "PNG" and cut.mode == "RGBA" and cut.size == photo.size
        m = np.asarray(mask) > 127
        alpha = np.asarray(cut)[..., 3] > 127
        agree = (m == alpha).mean()
        assert agree > 0.98, f"{job['filename']}: cut-out alpha agrees with mask on {agree:.3f}"
        if photo.truth is not None and photo.truth.shape == m.shape:
            # A real photo of a person: an empty or full mask is a broken model or pipeline. (Drawn
            # stand-ins, used without the dataset, are not people; an empty mask is a fair answer.)
            assert 0.01 < m.mean() < 0.99, f"{job['filename']}: mask is all one value ({m.mean():.3f})"
            inter = np.logical_and(m, photo.truth).sum()
            union = np.logical_or(m, photo.truth).sum()
            ious.append(inter / union if union else 1.0)
    out = {"jobs": len(body["jobs"]), "served_from": sorted(sources)}
    if ious:
        out["mean_iou"] = round(float(np.mean(ious)), 3)
        out["min_iou"] = round(float(np.min(ious)), 3)
        assert out["mean_iou"] > 0.5, f"masks far from the ground truth: {out}"
    return out


class _Images(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.srcs: list[str] = []

    def handle_starttag(self, tag, attrs) -> None:
        if tag == "img":
            self.srcs += [v for k, v in attrs if k == "src" and v]


def check_gallery(client: Client, body: dict) -> dict:
    """Signed in with the key: the batch page and the gallery list every job; do their images load?"""
    browser = client.browser()
    ids = [j["id"] for j in body["jobs"]]
    page = browser.get(f"{client.base}/batches/{body['id']}", timeout=30)
    assert page.status_code == 200 and "text/html" in page.headers["Content-Type"], page.status_code
    missing = [i for i in ids if f"job-{i}" not in page.text]
    assert not missing, f"batch page lacks jobs {missing}"
    gallery = browser.get(f"{client.base}/gallery", timeout=30)
    assert gallery.status_code == 200, gallery.status_code
    shown = [i for i in ids if i in gallery.text]
    parser = _Images()
    parser.feed(page.text)
    thumbs = [s for s in parser.srcs if not s.startswith("data:")]
    assert len(thumbs) >= len(ids), f"{len(thumbs)} images on the batch page for {len(ids)} jobs"
    browser_ok, browser_fail = 0, []
    for src in thumbs:
        url = src if src.startswith("http") else client.base + src
        try:
            resp = browser.get(url, timeout=10)
            ok = resp.status_code == 200 and resp.headers.get("Content-Type", "").startswith("image/")
        except requests.RequestException as exc:
            ok, resp = False, exc
        if ok:
            browser_ok += 1
        else:
            browser_fail.append(re.sub(r"\?.*$", "?...", url))
    return {"batch_page_jobs": len(ids), "gallery_jobs": len(shown),
            "thumbs_loaded_from_host": browser_ok, "thumbs_failed_from_host": browser_fail[:3],
            "thumbs_failed_count": len(browser_fail)}
