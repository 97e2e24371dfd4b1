"""A local OpenAI-compatible server for tests: ``POST /v1/chat/completions`` and ``POST /v1/embeddings``.

Chat answers are JSON drafts honouring the request (``response_format`` json_schema / json_object, the
topic, angle and shape the prompt asks for, a reply for a reply), different for every request, with a
realistic ``usage`` and the dated model name OpenAI answers with (``gpt-4o-mini-2024-07-18``). Embeddings are
deterministic (hashing), honour ``dimensions`` and ``encoding_format`` (float or base64).

Modes (``handle.set_mode``), for both endpoints:

* ``ok``              -- a normal answer
* ``rate_limit``      -- 429 ``rate_limit_exceeded``
* ``quota``           -- 429 ``insufficient_quota``
* ``server_error``    -- 500 ``server_error``
* ``slow``            -- answers after ``slow_seconds`` (longer than the client's timeout in tests)
* ``invalid_json``    -- 200 whose content is prose, not JSON (embeddings: a vector of the wrong size)
* ``schema``          -- answers as a schema-conforming server would, NOT as our prompt asks: the JSON is
  generated from the request's ``response_format`` json_schema alone (`SchemaAnswerer`): an array has any
  length its ``minItems``..``maxItems`` allow (``maxItems`` absent: up to ``minItems + 4``), a string any
  length up to its ``maxLength`` (absent: a random length of ``FREE_LENGTH`` characters, shorter or longer
  than a post), a ``["string", "null"]`` is sometimes null. The text is on the prompt's topic (sentences of
  the synthetic writer), so the gates judge it as they would a model's. Like OpenAI, a strict schema with a
  keyword strict mode does not accept (``minLength``/``maxLength``) is a 400; a ``json_object`` request
  gets the shape ``{"parts": [...], "hook": ...}`` with no bounds.
* ``short_parts``     -- every draft in 3 short parts (40-80 characters), whatever was asked: a server that
  ignores the count

``handle.queue_modes("invalid_json", ...)`` answers the next chat requests in those modes, one request each,
before the standing mode applies again (one bad answer in the middle of a batch).

Use in tests::

    srv = start_openai_server()
    try: ... AsyncOpenAI(base_url=srv.base_url, api_key="test") ...
    finally: srv.stop()

or alone: ``python -m tests.fakes.openai_server --port 8089 [--mode ok]``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import itertools
import json
import random
import re
import socket
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from shared.llm.port import DraftRequest
from shared.llm.synthetic import HashingEmbedder, SyntheticWriter

MODES = ("ok", "rate_limit", "quota", "server_error", "slow", "invalid_json", "schema", "short_parts")
#: the characters of a string whose schema gives no maxLength (a post's limit is 280: some are longer)
FREE_LENGTH = (20, 480)
#: the keywords OpenAI's strict structured outputs refuse
STRICT_REFUSED = ("minLength", "maxLength")
MODEL_SNAPSHOTS = {
    "gpt-4o-mini": "gpt-4o-mini-2024-07-18",
    "gpt-4o": "gpt-4o-2024-08-06",
}
#: what a json_object request (no schema) gets in schema mode: the draft's keys, no bounds
UNBOUNDED_DRAFT: dict[str, Any] = {
    "type": "object",
    "properties": {"parts": {"type": "array", "items": {"type": "string"}}, "hook": {"type": ["string", "null"]}},
    "required": ["parts", "hook"],
}
EMBED_DIMS = {"text-embedding-3-small": 1536, "text-embedding-3-large": 3072, "text-embedding-ada-002": 1536}


@dataclass
class FakeState:
    mode: str = "ok"
    slow_seconds: float = 5.0
    seed: int = 0
    #: modes for the next chat requests, one each, before ``mode`` applies again
    queued_modes: deque[str] = field(default_factory=deque)
    requests: list[dict[str, Any]] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)
    counter: itertools.count = field(default_factory=lambda: itertools.count(1))


def _tokens(text: str) -> int:
    """Roughly what tiktoken says for English: one token per ~4 characters."""
    return max(1, round(len(text) / 4))


def _error(status: int, message: str, type_: str, code: str | None) -> JSONResponse:
    headers = {"x-request-id": f"req_{uuid.uuid4().hex[:24]}"}
    if status == 429:
        headers["retry-after"] = "1"
    return JSONResponse(
        {"error": {"message": message, "type": type_, "param": None, "code": code}}, status_code=status, headers=headers
    )


_TOPIC_RE = re.compile(r"topic '([^']*)'")
_ANGLE_RE = re.compile(r"(?:angle|style) '([^']*)'")
_TWEET_RE = re.compile(r"<<<\n(.*?)\n>>>", re.DOTALL)


def _draft_request(messages: list[dict[str, Any]], seed: int) -> DraftRequest:
    """What the prompt asks for (our own prompt wording; anything else gets a generic single post)."""
    user = " ".join(str(m.get("content") or "") for m in messages if m.get("role") == "user")
    topic = (m.group(1) if (m := _TOPIC_RE.search(user)) else "tech trends").replace(" ", "_")
    angle = (m.group(1) if (m := _ANGLE_RE.search(user)) else "how to").replace(" ", "_")
    if "reply" in user.lower() and (m := _TWEET_RE.search(user)):
        return DraftRequest(kind="reply", topic=topic, angle=angle, context=m.group(1), seed=seed)
    thread = "thread of" in user
    return DraftRequest(kind="plan", topic=topic, angle=angle, decision_type="thread" if thread else "single", seed=seed)


_NUMBERING_RE = re.compile(r"^\d{1,2}(?:/\d{1,2}|[/.)])\s+")
_LENGTH_PATTERN_RE = re.compile(r"^\^(?:\.|\[\\s\\S\]|\[\^\\n\])\{(\d+),(\d+)\}\$$")


class SchemaError(ValueError):
    """A schema the imitation refuses, as OpenAI would (400), or cannot generate for."""


class SchemaAnswerer:
    """Generates a JSON value from a JSON schema, as a server doing constrained decoding would: every bound the
    schema states is honoured, everything it leaves open is chosen at random. Strings are sentences on
    ``topic``/``angle`` (and the tweet replied to, if any) from the synthetic writer."""

    def __init__(self, writer: SyntheticWriter, rng: random.Random, hint: DraftRequest):
        self.rng = rng
        self.writer = writer
        self.hint = hint
        self.pool: list[str] = []
        self.refills = 0

    def _sentences(self) -> list[str]:
        if not self.pool:
            self.refills += 1
            h = self.hint
            seed = self.rng.randrange(2**31)
            texts = self.writer.write(DraftRequest(kind="plan", topic=h.topic, angle=h.angle, decision_type="thread",
                                                   seed=seed)).parts
            if h.kind == "reply":
                texts = self.writer.write(msgspec_replace(h, seed=seed)).parts + texts
            for t in texts:
                self.pool += [x for x in re.split(r"(?<=[.!?])\s+", _NUMBERING_RE.sub("", t.strip())) if x]
        return self.pool

    def text(self, lo: int, hi: int | None) -> str:
        target = self.rng.randint(max(lo, 1, (hi or 0) * 2 // 5), hi) if hi else self.rng.randint(*FREE_LENGTH)
        target = max(target, lo)
        out = ""
        while True:
            pool = self._sentences()
            nxt = pool[0]
            candidate = f"{out} {nxt}" if out else nxt
            if len(candidate) > target:
                break
            out = candidate
            pool.pop(0)
        if not out:  # the next sentence alone is longer than the target: cut it at a word and close it
            words = self._sentences().pop(0).split()
            while words and len(" ".join(words)) + 1 > target:
                words.pop()
            out = (" ".join(words).rstrip(".,;:!?-") + ".") if words else "Yes."[: max(1, target)]
        if hi is not None:
            out = out[:hi]
        return out

    def value(self, schema: dict[str, Any], strict: bool, where: str = "") -> Any:
        if strict:
            refused = [k for k in STRICT_REFUSED if k in schema]
            if refused:
                raise SchemaError(f"Invalid schema for response_format 'draft': In context=({where or 'root'}), "
                                  f"'{refused[0]}' is not permitted.")
        if "enum" in schema:
            return self.rng.choice(list(schema["enum"]))
        if "const" in schema:
            return schema["const"]
        if "anyOf" in schema:
            return self.value(self.rng.choice(list(schema["anyOf"])), strict, where)
        types = schema.get("type", "string")
        if isinstance(types, list):
            types = "null" if "null" in types and self.rng.random() < 0.25 else next(t for t in types if t != "null")
        if types == "null":
            return None
        if types == "object":
            props = schema.get("properties") or {}
            required = set(schema.get("required") or props)
            return {k: self.value(v, strict, f"{where}.{k}" if where else k) for k, v in props.items()
                    if k in required or self.rng.random() < 0.5}
        if types == "array":
            lo = int(schema.get("minItems", 0))
            hi = int(schema.get("maxItems", lo + 4))
            item = schema.get("items") or {"type": "string"}
            return [self.value(item, strict, f"{where}[]") for _ in range(self.rng.randint(lo, hi))]
        if types == "boolean":
            return self.rng.random() < 0.5
        if types in ("integer", "number"):
            lo_n = schema.get("minimum", 0)
            hi_n = schema.get("maximum", lo_n + 100)
            return self.rng.randint(int(lo_n), int(hi_n)) if types == "integer" else self.rng.uniform(lo_n, hi_n)
        if types == "string":
            min_len = int(schema.get("minLength", 0))
            max_len: int | None = int(schema["maxLength"]) if "maxLength" in schema else None
            pattern = schema.get("pattern")
            if pattern is not None:  # only a length pattern (^.{m,n}$), which strict mode accepts
                m = _LENGTH_PATTERN_RE.match(pattern)
                if m is None:
                    raise SchemaError(f"the imitation generates no strings for the pattern {pattern!r}")
                min_len, max_len = max(min_len, int(m.group(1))), min(max_len or int(m.group(2)), int(m.group(2)))
            return self.text(min_len, max_len)
        raise SchemaError(f"type {types!r} at {where or 'root'}")


def _answer_rng(state: FakeState, body: dict[str, Any]) -> random.Random:
    """The same request (messages and seed) gets the same answer, whatever came before it."""
    key = json.dumps([state.seed, body.get("seed"), body.get("messages")], sort_keys=True, default=str)
    return random.Random(hashlib.sha256(key.encode()).hexdigest())


def msgspec_replace(request: DraftRequest, **changes: Any) -> DraftRequest:
    import msgspec

    return msgspec.structs.replace(request, **changes)


async def _json_body(request: Request) -> dict[str, Any] | None:
    try:
        body = await request.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def create_app(state: FakeState) -> FastAPI:
    app = FastAPI(title="fake-openai")
    writer = SyntheticWriter()

    async def failure_or_wait(mode: str | None = None) -> JSONResponse | None:
        mode = mode or state.mode
        if mode == "rate_limit":
            return _error(429, "Rate limit reached for requests. Please try again in 1s.", "requests",
                          "rate_limit_exceeded")
        if mode == "quota":
            return _error(429, "You exceeded your current quota, please check your plan and billing details.",
                          "insufficient_quota", "insufficient_quota")
        if mode == "server_error":
            return _error(500, "The server had an error while processing your request. Sorry about that!",
                          "server_error", None)
        if mode == "slow":
            deadline = time.monotonic() + state.slow_seconds
            while time.monotonic() < deadline and not state.stopping.is_set():
                await asyncio.sleep(0.05)
        return None

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> JSONResponse:
        body = await _json_body(request)
        if body is None:
            return _error(400, "We could not parse the JSON body of your request.", "invalid_request_error", None)
        n = next(state.counter)
        state.requests.append({"path": "/v1/chat/completions", "body": body, "headers": dict(request.headers)})
        mode = state.queued_modes.popleft() if state.queued_modes else state.mode
        failed = await failure_or_wait(mode)
        if failed is not None:
            return failed
        messages = body.get("messages") or []
        if not isinstance(messages, list) or not messages:
            return _error(400, "'messages' is a required property", "invalid_request_error", None)
        model = str(body.get("model") or "gpt-4o-mini")
        seed = int(body.get("seed") or 0) * 1_000_003 + n
        hint = _draft_request(messages, seed)
        draft = writer.write(hint)
        response_format = body.get("response_format") or {}
        fmt = response_format.get("type")
        if mode == "invalid_json":
            content = "Sure! Here is a great post for you: " + draft.parts[0]
        elif mode == "schema" and fmt in ("json_schema", "json_object"):
            spec = response_format.get("json_schema") or {}
            schema = spec.get("schema") if fmt == "json_schema" else None
            answerer = SchemaAnswerer(writer, _answer_rng(state, body), hint)
            try:
                value = answerer.value(schema or UNBOUNDED_DRAFT, bool(spec.get("strict")))
            except SchemaError as exc:
                return _error(400, str(exc), "invalid_request_error", None)
            content = json.dumps(value)
        elif mode == "short_parts" and fmt in ("json_schema", "json_object"):
            answerer = SchemaAnswerer(writer, _answer_rng(state, body), hint)
            content = json.dumps({"parts": [answerer.text(40, 80) for _ in range(3)], "hook": None})
        elif fmt in ("json_schema", "json_object"):
            content = json.dumps({"parts": draft.parts, "hook": draft.hook})
        else:
            content = "\n\n".join(draft.parts)
        prompt_tokens = sum(_tokens(str(m.get("content") or "")) + 4 for m in messages) + 3
        completion_tokens = _tokens(content)
        finish = "stop"
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        if limit and completion_tokens > int(limit):
            content, completion_tokens, finish = content[: int(limit) * 4], int(limit), "length"
        return JSONResponse({
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": MODEL_SNAPSHOTS.get(model, model),
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": None, "annotations": []},
                "logprobs": None,
                "finish_reason": finish,
            }],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
                "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
            },
            "service_tier": "default",
            "system_fingerprint": "fp_fake0001",
        })

    @app.post("/v1/embeddings")
    async def embeddings(request: Request) -> JSONResponse:
        body = await _json_body(request)
        if body is None:
            return _error(400, "We could not parse the JSON body of your request.", "invalid_request_error", None)
        state.requests.append({"path": "/v1/embeddings", "body": body, "headers": dict(request.headers)})
        failed = await failure_or_wait()
        if failed is not None:
            return failed
        raw = body.get("input")
        texts = [raw] if isinstance(raw, str) else raw
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
            return _error(400, "'input' must be a string or a list of strings", "invalid_request_error", None)
        model = str(body.get("model") or "text-embedding-3-small")
        dim = int(body.get("dimensions") or EMBED_DIMS.get(model, 1536))
        if not 1 <= dim <= EMBED_DIMS.get(model, 3072):
            return _error(400, f"dimensions must be between 1 and the model's size, not {dim}", "invalid_request_error",
                          None)
        vectors = HashingEmbedder(dim).embed_texts(texts)
        if state.mode == "invalid_json":
            vectors = vectors[:, : max(1, dim // 2)]
        b64 = body.get("encoding_format") == "base64"
        data = [
            {"object": "embedding", "index": i,
             "embedding": base64.b64encode(v.astype("<f4").tobytes()).decode() if b64 else [float(x) for x in v]}
            for i, v in enumerate(np.asarray(vectors))
        ]
        tokens = sum(_tokens(t) for t in texts)
        return JSONResponse({"object": "list", "data": data, "model": model,
                             "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})

    return app


class FakeOpenAIServer:
    """A running fake: ``base_url`` (ends in ``/v1``), ``requests`` (what it received), ``set_mode``, ``stop``."""

    def __init__(self, state: FakeState, server: Any, thread: threading.Thread, port: int):
        self.state = state
        self._server = server
        self._thread = thread
        self.port = port

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def requests(self) -> list[dict[str, Any]]:
        return self.state.requests

    @property
    def mode(self) -> str:
        return self.state.mode

    def set_mode(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        self.state.mode = mode

    def queue_modes(self, *modes: str) -> None:
        """Answer the next chat requests in ``modes``, one each, then in the standing mode again."""
        for mode in modes:
            if mode not in MODES:
                raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        self.state.queued_modes.extend(modes)

    def stop(self, timeout: float = 10.0) -> None:
        self.state.stopping.set()
        self._server.should_exit = True
        self._thread.join(timeout)
        if self._thread.is_alive():  # pragma: no cover - only if uvicorn hangs
            self._server.force_exit = True
            self._thread.join(timeout)

    def __enter__(self) -> FakeOpenAIServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_openai_server(mode: str = "ok", *, slow_seconds: float = 5.0, port: int = 0,
                        timeout: float = 10.0, seed: int = 0) -> FakeOpenAIServer:
    """Serve the fake on 127.0.0.1 (a free port unless ``port``) in a background thread."""
    import uvicorn

    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    state = FakeState(mode=mode, slow_seconds=slow_seconds, seed=seed)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    bound = int(sock.getsockname()[1])
    config = uvicorn.Config(create_app(state), log_level="warning", access_log=False, lifespan="off",
                            timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=f"fake-openai-{bound}", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            raise RuntimeError("the fake OpenAI server did not start")
        time.sleep(0.02)
    return FakeOpenAIServer(state, server, thread, bound)


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description="A local OpenAI-compatible server (chat completions, embeddings).")
    parser.add_argument("--port", type=int, default=8089)
    parser.add_argument("--mode", choices=MODES, default="ok")
    parser.add_argument("--slow-seconds", type=float, default=30.0)
    args = parser.parse_args(argv)
    state = FakeState(mode=args.mode, slow_seconds=args.slow_seconds)
    print(f"fake OpenAI on http://127.0.0.1:{args.port}/v1 (mode={args.mode})", flush=True)
    uvicorn.run(create_app(state), host="127.0.0.1", port=args.port, log_level="info")


if __name__ == "__main__":
    main()
