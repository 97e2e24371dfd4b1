"""The live adapters: OpenAI chat (drafts as structured JSON) and OpenAI embeddings, via ``openai.AsyncOpenAI``.

The client is built with ``max_retries=0``: a 429 or a 500 surfaces at once as an `LLMFailure`, and the caller
(the job, under the budget) decides whether to try again. Errors map to exactly one reason:

* 429 with ``insufficient_quota`` -> ``quota`` (billing; retrying will not help), any other 429 -> ``rate_limited``
* the client's timeout -> ``timeout``
* content that is not the JSON draft we asked for, even after the free repairs (or a truncated or refused
  answer) -> ``invalid_response``, with a ``wasted_reason`` naming why (the answer was billed)
* everything else (5xx, 4xx, connection refused) -> ``api_error``

Build the adapters in ``bootstrap.py`` (`openai_adapters`); nothing here reads settings or opens a connection at
import time.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import numpy as np

from .port import DraftRequest, EmbeddingResult, LLMFailure, LLMResult, Usage, normalize_rows
from .prompts import build_messages
from .shape import DraftParseError, parse_draft_repaired, response_format

DEFAULT_MODEL = "gpt-4o-mini"
DEFAULT_EMBED_MODEL = "text-embedding-3-small"
DEFAULT_MAX_OUTPUT_TOKENS = 700
DEFAULT_TIMEOUT_S = 30.0


def make_client(api_key: str, *, base_url: str | None = None, timeout: float = DEFAULT_TIMEOUT_S) -> Any:
    """An ``AsyncOpenAI`` client that never retries on its own."""
    from openai import AsyncOpenAI

    return AsyncOpenAI(api_key=api_key, base_url=base_url, timeout=timeout, max_retries=0)


def _usage(raw: Any) -> Usage:
    if raw is None:
        return Usage()
    prompt = int(getattr(raw, "prompt_tokens", 0) or 0)
    completion = int(getattr(raw, "completion_tokens", 0) or 0)
    total = int(getattr(raw, "total_tokens", 0) or 0) or prompt + completion
    return Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=total)


def _is_insufficient_quota(exc: Any) -> bool:
    """A 429 that means the account is out of credit (OpenAI's ``insufficient_quota``), not a rate limit."""
    if "insufficient_quota" in (getattr(exc, "code", None), getattr(exc, "type", None)):
        return True
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and "insufficient_quota" in (err.get("code"), err.get("type")):
            return True
    return "insufficient_quota" in str(exc)


def map_error(exc: BaseException) -> LLMFailure:
    """An exception from the openai client as an `LLMFailure` with one of the reasons above."""
    import openai

    if isinstance(exc, LLMFailure):
        return exc
    if isinstance(exc, openai.APITimeoutError | TimeoutError):
        return LLMFailure("timeout", str(exc) or "request timed out")
    if isinstance(exc, openai.RateLimitError):
        if _is_insufficient_quota(exc):
            return LLMFailure("quota", "insufficient_quota: " + _short(exc), status=429)
        return LLMFailure("rate_limited", _short(exc), status=429)
    if isinstance(exc, openai.APIStatusError):
        return LLMFailure("api_error", f"HTTP {exc.status_code}: {_short(exc)}", status=exc.status_code)
    if isinstance(exc, openai.APIResponseValidationError):
        return LLMFailure("invalid_response", _short(exc))
    if isinstance(exc, openai.APIConnectionError):
        return LLMFailure("api_error", "connection: " + _short(exc))
    return LLMFailure("api_error", f"{type(exc).__name__}: {_short(exc)}")


def _short(exc: BaseException, limit: int = 300) -> str:
    text = str(exc)
    return text if len(text) <= limit else text[: limit - 1] + "…"


class OpenAILLM:
    """`LLM` over OpenAI chat completions with structured JSON output."""

    def __init__(
        self,
        client: Any,
        *,
        model: str = DEFAULT_MODEL,
        max_output_tokens: int = DEFAULT_MAX_OUTPUT_TOKENS,
        temperature: float = 0.9,
        json_mode: str = "json_schema",
        per_request_schema: bool = True,
        repair: bool = True,
    ):
        """``per_request_schema=False`` sends the schema with no part count (``UNCONSTRAINED_DRAFT_SCHEMA``) and
        ``repair=False`` rejects every answer not exactly of the shape asked for: what the adapter did before
        either existed (for comparisons, such as the benchmark's baseline)."""
        self.client = client
        self._model = model
        self._max_output_tokens = max_output_tokens
        self.temperature = temperature
        response_format(json_mode)  # an unknown mode fails here, at construction
        self.json_mode = json_mode
        self.per_request_schema = per_request_schema
        self.repair = repair

    @property
    def model(self) -> str:
        return self._model

    @property
    def max_output_tokens(self) -> int:
        return self._max_output_tokens

    async def draft(self, request: DraftRequest, *, request_id: str | None = None) -> LLMResult:
        request_id = request_id or uuid.uuid4().hex
        try:
            resp = await self.client.chat.completions.create(
                model=self._model,
                messages=build_messages(request),
                response_format=response_format(self.json_mode, request if self.per_request_schema else None),
                max_completion_tokens=self._max_output_tokens,
                temperature=self.temperature,
                seed=request.seed,
                extra_headers={"X-Client-Request-Id": request_id},
            )
        except Exception as exc:
            raise map_error(exc) from exc
        usage = _usage(getattr(resp, "usage", None))
        choices = getattr(resp, "choices", None) or []
        if not choices:
            raise LLMFailure("invalid_response", "no choices", usage=usage, wasted_reason="no_choices")
        choice = choices[0]
        message = choice.message
        if getattr(message, "refusal", None):
            raise LLMFailure("invalid_response", f"refused: {_short(Exception(message.refusal))}", usage=usage,
                             wasted_reason="refused")
        if choice.finish_reason == "length":
            raise LLMFailure("invalid_response", "truncated at max_output_tokens", usage=usage,
                             wasted_reason="truncated")
        try:
            draft, repairs = parse_draft_repaired(message.content, request, repair=self.repair)
        except DraftParseError as exc:
            raise LLMFailure("invalid_response", str(exc), usage=usage, wasted_reason=exc.reason) from None
        return LLMResult(draft=draft, usage=usage, model=str(resp.model or self._model), request_id=request_id,
                         repairs=tuple(repairs))


class OpenAIEmbedder:
    """`Embedder` over OpenAI embeddings; rows are returned as float32 unit vectors.

    ``dim`` asks text-embedding-3 models for shortened vectors (the ``dimensions`` parameter); by default the
    model's own size (1536 for text-embedding-3-small, learned from the first answer)."""

    def __init__(self, client: Any, *, model: str = DEFAULT_EMBED_MODEL, dim: int | None = None):
        self.client = client
        self._model = model
        self._dim = dim
        self._known_dim = dim or (1536 if model == DEFAULT_EMBED_MODEL else 3072 if model.endswith("large") else 0)

    @property
    def model(self) -> str:
        return self._model

    @property
    def dim(self) -> int:
        return self._known_dim

    async def embed(self, texts: Sequence[str], *, request_id: str | None = None) -> EmbeddingResult:
        request_id = request_id or uuid.uuid4().hex
        texts = list(texts)
        if not texts:
            return EmbeddingResult(
                vectors=np.zeros((0, self.dim), dtype=np.float32), usage=Usage(), model=self._model, request_id=request_id
            )
        kwargs: dict[str, Any] = {"model": self._model, "input": texts, "encoding_format": "float"}
        if self._dim:
            kwargs["dimensions"] = self._dim
        try:
            resp = await self.client.embeddings.create(**kwargs, extra_headers={"X-Client-Request-Id": request_id})
        except Exception as exc:
            raise map_error(exc) from exc
        usage = _usage(getattr(resp, "usage", None))
        try:
            rows = sorted(resp.data, key=lambda d: d.index)
            matrix = np.asarray([r.embedding for r in rows], dtype=np.float32)
        except (TypeError, ValueError, AttributeError) as exc:
            raise LLMFailure("invalid_response", f"embeddings: {exc}", usage=usage) from None
        expected = self._dim or self._known_dim
        if matrix.ndim != 2 or matrix.shape[0] != len(texts) or (expected and matrix.shape[1] != expected):
            raise LLMFailure("invalid_response", f"embeddings of shape {matrix.shape} for {len(texts)} texts", usage=usage)
        if not np.all(np.isfinite(matrix)):
            raise LLMFailure("invalid_response", "embeddings with non-finite values", usage=usage)
        self._known_dim = int(matrix.shape[1])
        return EmbeddingResult(
            vectors=normalize_rows(matrix), usage=usage, model=str(resp.model or self._model), request_id=request_id
        )


def openai_adapters(
    api_key: str,
    *,
    base_url: str | None = None,
    model: str = DEFAULT_MODEL,
    embed_model: str = DEFAULT_EMBED_MODEL,
    timeout: float = DEFAULT_TIMEOUT_S,
    embed_dim: int | None = None,
    max_output_tokens: int = DEFAULT_MAX_OUTPUT_TOKENS,
    json_mode: str = "json_schema",
) -> tuple[OpenAILLM, OpenAIEmbedder]:
    """The chat and embedding adapters over one client (call ``await llm.client.close()`` at shutdown)."""
    client = make_client(api_key, base_url=base_url, timeout=timeout)
    return (
        OpenAILLM(client, model=model, max_output_tokens=max_output_tokens, json_mode=json_mode),
        OpenAIEmbedder(client, model=embed_model, dim=embed_dim),
    )
