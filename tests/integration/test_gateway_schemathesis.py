"""Schemathesis against the gateway's own OpenAPI: valid and invalid inputs to every operation, with and without
the admin token, and never a 5xx (bad input gets a 4xx naming the problem)."""

from __future__ import annotations

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable

from tests.integration.test_gateway_process import gateway_process
from tests.integration.test_projector_scenario import TOKEN, did, scenario

pytestmark = pytest.mark.e2e


async def test_no_operation_answers_5xx(bus, namespace, nats_url, database_url, tmp_path) -> None:
    await bus.publish_many(scenario())
    async with gateway_process(nats_url, namespace, database_url, tmp_path / "gateway.log") as base:
        schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
        session = requests.Session()
        seen: dict[str, set[int]] = {}
        failures: list[str] = []
        operations = [r.ok() for r in schema.get_all_operations()]
        assert len(operations) >= 14

        def runner(op: schemathesis.APIOperation, mode: schemathesis.GenerationMode, headers: dict[str, str]):
            @settings(max_examples=6, deadline=None, database=None, derandomize=True,
                      phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
            @given(case=op.as_strategy(generation_mode=mode))
            def run(case: schemathesis.Case) -> None:
                resp = case.call(base_url=base, session=session, headers=headers, timeout=15)
                seen.setdefault(op.label, set()).add(resp.status_code)
                if resp.status_code >= 500:
                    failures.append(f"{op.label} {mode.value}: {resp.status_code} {resp.text[:300]} "
                                    f"({case.as_curl_command(headers=headers)})")

            return run

        for op in operations:
            for mode in schemathesis.GenerationMode:
                for headers in ({"Authorization": f"Bearer {TOKEN}"}, {})[: 2 if mode.value == "positive" else 1]:
                    try:
                        runner(op, mode, headers)()
                    except Unsatisfiable:  # nothing to make invalid (no parameters, no body)
                        assert mode is schemathesis.GenerationMode.NEGATIVE, op.label
        # and the real decisions, for the operations on one
        with_token = {"Authorization": f"Bearer {TOKEN}"}
        for path in (f"/api/decisions/{did(1)}", f"/api/decisions/{did(5)}"):
            assert session.get(base + path, timeout=10).status_code == 200
        for action in ("approve", "reject", "schedule"):
            r = session.post(f"{base}/admin/decisions/{did(5)}/{action}", headers=with_token,
                             json={"scheduled_at": "now"}, timeout=10)
            assert r.status_code == 409, r.text
        assert not failures, "\n".join(failures[:10])
        # the admin endpoints were reached both with and without the token
        assert {401, 202} <= seen["POST /admin/jobs/run"]
        assert 401 in seen["GET /admin/flags"] and 200 in seen["GET /admin/flags"]
        assert 200 in seen["GET /api/decisions"] and 200 in seen["GET /env"]
