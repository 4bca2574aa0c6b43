"""/metrics of one web process: Prometheus text that prometheus-client's parser reads, by route."""

from factories import make_settings
from prometheus_client.parser import text_string_to_metric_families

from humanseg.web import create_app


def samples(client) -> dict:
    resp = client.get("/metrics", headers={"Host": "10.0.0.9:8000"})  # scrapers use an IP
    assert resp.status_code == 200 and resp.mimetype == "text/plain"
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(resp.get_data(as_text=True))
            for s in family.samples}


def test_requests_are_counted_by_route_pattern_and_status(tmp_path):
    settings = make_settings(tmp_path, broker_url="redis://127.0.0.1:9/0", require_api_keys=True)
    app = create_app(settings)
    try:
        client = app.test_client()
        route = (("method", "GET"), ("route", "/api/v1/jobs/<job_id>"), ("status", "401"))
        before = samples(client).get(("humanseg_http_requests_total", route), 0)
        for _ in range(3):
            assert client.get("/api/v1/jobs/" + "a" * 32).status_code == 401  # no key: still counted
        after = samples(client)
        assert after[("humanseg_http_requests_total", route)] == before + 3
        latency = ("humanseg_http_request_duration_seconds_count",
                   (("method", "GET"), ("route", "/api/v1/jobs/<job_id>")))
        assert after[latency] >= 3
        assert not any("a" * 32 in str(labels) for _, labels in after)  # ids never become labels
    finally:
        app.extensions["humanseg"].engine.dispose()
