"""Fuzz the HTTP edge from the server's own /openapi.json (schemathesis): no request gets a 5xx.

Why from the served document: the fuzzer then sends what the server says it accepts (positive
mode: every body must be scored, 200 with rows matching the documented row schema, or refused
with a documented 4xx such as a blank text) and what violates it (negative mode: every body
must be refused with a 4xx, never crash a worker). Over 1,000 generated requests in all.
"""

from __future__ import annotations

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from tests.serving_helpers import running_server, safety_export

pytestmark = pytest.mark.slow

EXAMPLES = {GenerationMode.POSITIVE: 550, GenerationMode.NEGATIVE: 500}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz")
    export = safety_export(folder)
    args = ["--max-batch-size", "4", "--batch-timeout", "0.005", "--max-records", "16", "--max-chars", "300"]
    with running_server(export, args, log=folder / "serve.log") as (base, _):
        yield base


@pytest.mark.parametrize("mode", list(EXAMPLES), ids=lambda m: m.value)
def test_no_generated_request_gets_a_server_error(server, mode):
    schema = schemathesis.openapi.from_url(server + "/openapi.json")
    operation = schema["/predict"]["POST"]
    session = requests.Session()
    seen: list[int] = []

    @settings(
        max_examples=EXAMPLES[mode],
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(mode))
    def send(case: schemathesis.Case) -> None:
        response = case.call(base_url=server, session=session, timeout=60)
        seen.append(response.status_code)
        assert response.status_code < 500, (case.body, response.text[:500])
        if mode is GenerationMode.NEGATIVE:
            assert 400 <= response.status_code < 500, (case.body, response.text[:500])
        if response.status_code == 200:
            operation.validate_response(response)  # rows as the document describes them
        else:
            assert response.status_code in (413, 422), response.text[:500]

    send()
    assert len(seen) >= EXAMPLES[mode] * 0.9, len(seen)
    if mode is GenerationMode.POSITIVE:
        assert seen.count(200) > len(seen) / 2  # the fuzzer mostly sent scorable records


def test_every_documented_get_answers_without_a_server_error(server):
    schema = schemathesis.openapi.from_url(server + "/openapi.json")
    paths = [op.path for op in (r.ok() for r in schema.get_all_operations()) if op.method.upper() == "GET"]
    assert {"/health", "/metadata", "/metrics"} <= set(paths)
    for path in paths:
        assert requests.get(server + path, timeout=60).status_code < 500, path
