"""GET /api/v1/batches and GET /api/v1/jobs: newest first, paged, with counts and a status filter."""

from __future__ import annotations

from gallery_support import add_batch

from humanseg.core.models import JobStatus


def test_batches_list_newest_first_with_counts_and_pages(client, app):
    made = [add_batch(app, [f"{n}-{i}.jpg" for i in range(n)], name=f"b{n}")[0] for n in (1, 2, 3)]
    first = client.get("/api/v1/batches?limit=2").json
    assert [b["id"] for b in first["batches"]] == made[::-1][:2]
    assert first["batches"][0]["counts"]["succeeded"] == 3 and first["batches"][0]["job_count"] == 3
    second = client.get(f"/api/v1/batches?limit=2&cursor={first['next_cursor']}").json
    assert [b["id"] for b in second["batches"]] == [made[0]] and second["next_cursor"] is None
    assert client.get("/api/v1/batches?cursor=nonsense").json["error"]["code"] == "bad_parameter"


def test_jobs_list_filters_by_status_and_batch(client, app):
    ok_batch, ok_ids = add_batch(app, ["a.jpg", "b.jpg"])
    _, failed_ids = add_batch(app, ["c.jpg"], status=JobStatus.failed, error="bad image")
    every = client.get("/api/v1/jobs").json["jobs"]
    assert [j["id"] for j in every] == [*failed_ids, *ok_ids[::-1]]
    failed = client.get("/api/v1/jobs?status=failed").json["jobs"]
    assert [j["id"] for j in failed] == failed_ids and failed[0]["error"] == "bad image"
    assert {j["id"] for j in client.get(f"/api/v1/jobs?batch_id={ok_batch}").json["jobs"]} == set(ok_ids)
    page = client.get("/api/v1/jobs?limit=1").json
    rest = client.get(f"/api/v1/jobs?limit=5&cursor={page['next_cursor']}").json
    assert [j["id"] for j in page["jobs"] + rest["jobs"]] == [j["id"] for j in every]
    bad = client.get("/api/v1/jobs?status=done")
    assert bad.status_code == 400 and "queued" in bad.json["error"]["message"]
    assert client.get("/api/v1/jobs?batch_id=" + "0" * 32).status_code == 404


def test_an_empty_batch_id_is_refused_not_a_new_batch(client, app):
    import io

    from support_images import jpeg

    answer = client.post("/api/v1/jobs", data={"batch_id": "", "images": (io.BytesIO(jpeg()), "a.jpg")},
                         content_type="multipart/form-data")
    assert answer.status_code == 400 and "batch_id is empty" in answer.json["error"]["message"]
    assert client.get("/api/v1/batches").json["batches"] == []


def test_docs_page_has_examples_response_schemas_and_a_way_back(client):
    page = client.get("/docs").get_data(as_text=True)
    assert 'id="quickstart"' in page and "curl -F images=@alice.jpg" in page
    assert 'href="/">← Back to humanseg' in page
    assert 'id="schema-JobList"' in page and 'href="#schema-BatchList"' in page  # answers link their schemas
    assert page.count('<div class="scroll"><table>') >= 3  # tables scroll inside their card on a phone
