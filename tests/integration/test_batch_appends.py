"""Concurrent appends to one batch through the live web tier: every job lands, counts add up."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
import support_images as si
from sqlalchemy import select
from support_live import wait_until

from humanseg.core.db import session_scope
from humanseg.core.models import Batch, Job

CLIENTS = 8
PER_POST = 2


@pytest.mark.parametrize("stack", ["sqlite-local", "postgresql-local"], indirect=True)
def test_concurrent_appends_to_one_batch_all_land_with_distinct_seqs(stack):
    first = requests.post(stack.url("/api/v1/jobs"), files=[("images", ("seed.jpg", si.jpeg()))],
                          data={"batch_name": "appends"}, timeout=60)
    assert first.status_code == 202, first.text
    batch_id = first.json()["batch_id"]
    start = threading.Barrier(CLIENTS)

    def append(client: int) -> requests.Response:
        files = [("images", (f"c{client}-{i}.jpg", si.jpeg())) for i in range(PER_POST)]
        start.wait(30)  # all POSTs leave together
        return requests.post(stack.url("/api/v1/jobs"), files=files, data={"batch_id": batch_id},
                             timeout=120)

    with ThreadPoolExecutor(CLIENTS) as pool:
        responses = list(pool.map(append, range(CLIENTS)))
    assert [r.status_code for r in responses] == [202] * CLIENTS, [r.text for r in responses]
    assert {r.json()["batch_id"] for r in responses} == {batch_id}
    sent = {first.json()["jobs"][0]["id"]} | {j["id"] for r in responses for j in r.json()["jobs"]}
    total = 1 + CLIENTS * PER_POST
    assert len(sent) == total

    batch = requests.get(stack.url(f"/api/v1/batches/{batch_id}?limit=500"), timeout=10).json()
    assert batch["job_count"] == total and {j["id"] for j in batch["jobs"]} == sent
    with session_scope(stack.sessions) as s:
        reserved = s.scalar(select(Batch.job_count).where(Batch.id == batch_id))
        seqs = sorted(s.scalars(select(Job.seq).where(Job.batch_id == batch_id)))
    # Each POST reserved its own range: the counter matches and the seqs are 0..total-1, none shared.
    assert reserved == total and seqs == list(range(total))
    done = wait_until(lambda: (b := requests.get(stack.url(f"/api/v1/batches/{batch_id}?limit=1"),
                                                 timeout=10).json())["done"] and b, 90, "batch done")
    assert done["counts"]["succeeded"] == total
