"""One contract for every adapter of the LLM and Embedder ports: the synthetic writer and hashing embedder
(shadow mode) and the OpenAI adapters against a local OpenAI-compatible server answering from the request's
JSON schema alone (as a schema-conforming server may, not as our prompt asks).

What every adapter must do: a draft has the number of parts its request asks for (one for a single or a reply,
2..7 for a thread), each part within X's length, topic and angle as asked; usage is reported; embeddings are
float32 unit rows, one per text, of the adapter's dimension, and the same text embeds the same way.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import numpy as np
import pytest
import pytest_asyncio

from shared.gates.text import weighted_length
from shared.llm import HashingEmbedder, SyntheticWriter, openai_adapters
from shared.llm.port import THREAD_MAX_PARTS, THREAD_MIN_PARTS, DraftRequest
from tests.fakes.openai_server import FakeOpenAIServer, start_openai_server

pytestmark = pytest.mark.integration

REQUESTS = [
    DraftRequest(kind="plan", topic="ai_tools", angle="how_to", seed=1),
    DraftRequest(kind="plan", topic="startups", angle="story", decision_type="thread", seed=2),
    DraftRequest(kind="reply", topic="developer_workflow", angle="counterpoint", seed=3,
                 context="Code review slows us down more than it helps."),
]


@pytest.fixture(scope="module")
def server() -> Iterator[FakeOpenAIServer]:
    srv = start_openai_server("schema")
    yield srv
    srv.stop()


@pytest_asyncio.fixture(params=["synthetic", "openai"], scope="module", loop_scope="session")
async def ports(request: pytest.FixtureRequest, server: FakeOpenAIServer) -> AsyncIterator[tuple[Any, Any]]:
    if request.param == "synthetic":
        yield SyntheticWriter(), HashingEmbedder(dim=64)
        return
    llm, emb = openai_adapters("sk-test", base_url=server.base_url, timeout=5.0)
    try:
        yield llm, emb
    finally:
        await llm.client.close()


@pytest.mark.parametrize("req", REQUESTS, ids=["single", "thread", "reply"])
async def test_a_draft_has_the_shape_its_request_asks_for(ports, req: DraftRequest) -> None:
    llm, _ = ports
    for seed in range(4):  # several answers: a conforming server varies them within the schema
        result = await llm.draft(DraftRequest(**{**{f: getattr(req, f) for f in req.__struct_fields__},
                                                 "seed": req.seed + seed * 10}))
        parts = result.draft.parts
        lo, hi = req.parts_range
        assert lo <= len(parts) <= hi and (lo, hi) == ((THREAD_MIN_PARTS, THREAD_MAX_PARTS) if
                                                        req.decision_type == "thread" and req.kind == "plan"
                                                        else (1, 1))
        assert all(p.strip() and weighted_length(p) <= 280 for p in parts)
        assert (result.draft.topic, result.draft.angle) == (req.topic, req.angle)
        assert result.model and result.request_id
        assert result.usage.total_tokens == result.usage.prompt_tokens + result.usage.completion_tokens


async def test_embeddings_are_unit_float32_rows_and_deterministic(ports) -> None:
    _, emb = ports
    texts = ["ship small changes", "review fast", "ship small changes"]
    out = await emb.embed(texts)
    assert out.vectors.dtype == np.float32 and out.vectors.shape == (3, emb.dim) and out.dim == emb.dim
    assert np.allclose(np.linalg.norm(out.vectors, axis=1), 1.0, atol=1e-5)
    assert np.allclose(out.vectors[0], out.vectors[2])
    assert not np.allclose(out.vectors[0], out.vectors[1])
    assert out.model == emb.model
