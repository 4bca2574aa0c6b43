"""Results made on request render in the web image: Pillow, no numpy, no torch, no worker code."""

from __future__ import annotations

from ops.isolation import run_isolated


def test_variants_render_with_only_the_web_extras(tmp_path):
    code = """
        import io
        from PIL import Image, ImageDraw
        from humanseg.cli import main
        assert main(["db", "upgrade"]) == 0
        from humanseg.core.db import session_scope
        from humanseg.core.models import Batch, Job, JobStatus, new_id
        from humanseg.web import create_app
        app = create_app()
        svc = app.extensions["humanseg"]
        job_id, batch_id = new_id(), new_id()
        photo, alpha = Image.new("RGB", (80, 60), (200, 120, 90)), Image.new("L", (80, 60), 0)
        ImageDraw.Draw(alpha).rectangle((20, 10, 50, 55), fill=255)
        for key, img, fmt in ((f"originals/{job_id}.jpg", photo, "JPEG"),
                              (f"results/{job_id}/alpha.png", alpha, "PNG"),
                              (f"results/{job_id}/mask.png", alpha, "PNG")):
            buf = io.BytesIO()
            img.save(buf, fmt)
            svc.storage.put(key, buf.getvalue(), "image/" + fmt.lower())
        with session_scope(svc.sessions) as s:
            s.add(Batch(id=batch_id, job_count=1))
            s.flush()
            s.add(Job(id=job_id, batch_id=batch_id, seq=0, filename="a.jpg", content_type="image/jpeg",
                      width=80, height=60, bytes=1, original_key=f"originals/{job_id}.jpg",
                      status=JobStatus.succeeded))
        client = app.test_client()
        for query in ("", "?bg=%23ffffff&format=jpeg&size=40&crop=1&margin=10%25", "?format=webp&quality=70",
                      "?size=32"):
            for kind in ("cutout", "overlay", "mask") if query == "?size=32" else ("cutout",):
                r = client.get(f"/api/v1/jobs/{job_id}/{kind}{query}")
                assert r.status_code == 200, (kind, query, r.status_code, r.data[:300])
                r.close()
        assert client.get(f"/jobs/{job_id}").status_code == 200
        heavy = sorted(m for m in ("torch", "onnxruntime", "numpy", "humanseg.ml", "humanseg.worker")
                       if m in sys.modules)
        assert not heavy, heavy
        print("OK")
    """
    env = {"HUMANSEG_DATA_DIR": str(tmp_path), "HUMANSEG_DATABASE_URL": f"sqlite:///{tmp_path / 'web.db'}",
           "HUMANSEG_BROKER_URL": "redis://127.0.0.1:9/0", "HUMANSEG_SECRET_KEY": "test"}
    proc = run_isolated({"web"}, {"core", "web", "migrations"}, code, env,
                        must_block=("torch", "onnxruntime", "humanseg.ml", "humanseg.worker", "numpy"))
    assert proc.returncode == 0 and "OK" in proc.stdout, proc.stdout + proc.stderr
