"""Property-based: schemathesis makes requests from /openapi.json; the app's answers must match it."""

import pytest
from gallery_support import make_app

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402 - installed with schemathesis
from schemathesis import checks  # noqa: E402

# What the document promises about answers. Not positive_data_acceptance: any bytes are a
# schema-valid "binary" image part, and the API rightly refuses the ones that are not images.
CHECKS = [checks.not_a_server_error, checks.status_code_conformance,
          checks.content_type_conformance, checks.response_headers_conformance,
          checks.response_schema_conformance]


def _property(operation, wanted):
    """A Hypothesis test of one operation: generated requests, answers checked."""

    # derandomize: the same examples every run, so a failure is never a fluke of the seed.
    @given(case=operation.as_strategy())
    @settings(max_examples=40, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    def check(case):
        case.call_and_validate(checks=wanted)

    return check


def test_generated_requests_get_answers_the_document_allows(tmp_path, monkeypatch):
    app = make_app(tmp_path, monkeypatch, segment_wait_seconds=0)
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    failures = []
    for found in schema.get_all_operations():
        operation = found.ok()
        # /readyz documents its 503 (no broker here): a server error only elsewhere.
        wanted = CHECKS[1:] if operation.path == "/readyz" else CHECKS
        try:
            _property(operation, wanted)()
        except Exception as exc:  # noqa: BLE001 - collected, so one report names every operation
            failures.append(f"{operation.label}: {exc}")
    assert not failures, "\n\n".join(failures)
