"""A real OpenAI/vLLM-compatible HTTP server on loopback, for tests.

We fake the wire, not the library: the code under test uses the real `openai` SDK (or any HTTP
client) against `server.base_url`, so retries, timeouts, SSE parsing and auth headers are exercised
for real. The server is aiohttp bound to 127.0.0.1 on a free port.

What it speaks:

- `POST /v1/chat/completions`: JSON, or SSE when `"stream": true` (`data: {chunk}` events with
  `choices[0].delta.content`, a final chunk with `finish_reason`, a usage chunk when
  `stream_options.include_usage`, then `data: [DONE]`). Stop sequences in the request cut the reply
  like a real engine. A model that is neither a base model nor a loaded adapter gets a 404, as
  vLLM answers.
- `GET /v1/models` (and `/v1/models/{id}`): base models, and loaded adapters with `parent` and
  `root` as vLLM lists them.
- vLLM's runtime LoRA endpoints: `POST /v1/load_lora_adapter` (`lora_name`, `lora_path`) and
  `POST /v1/unload_lora_adapter` (`lora_name`), with vLLM's errors: 400 for missing fields, an
  adapter already loaded, or a rank above `max_lora_rank` (read from `adapter_config.json` when
  `lora_path` is a real folder); 404 for unloading an unknown adapter. With `runtime_lora=False` the
  routes answer 404 `{"detail": "Not Found"}`, as vLLM does without
  `VLLM_ALLOW_RUNTIME_LORA_UPDATING=True`.
- `GET /health` (vLLM's liveness probe).
- Auth: with `api_key=...`, every `/v1/` request needs `Authorization: Bearer <key>`, else 401.

Scripting replies (chat completions take the first that applies):

    server.enqueue_reply("Hello there!")                    # chunked word by word
    server.enqueue_reply(chunks=["Hel", "lo", "!"], delay_s=0.01)
    server.responder = lambda req: f"echo {req.json['model']}"   # may be async; str, list or Reply
    # otherwise: server.default_reply

Fault injection: a FIFO queue; each request takes the first queued fault whose `path` matches
(None matches every path; mid-stream faults default to the chat path):

    server.fail(500)                            # then the next request succeeds
    server.fail(429, retry_after=1)             # with a Retry-After header
    server.fail(401); server.fail(404)
    server.hang(5)                              # sleep before answering (past the client timeout)
    server.malformed_chunk(after=2)             # two good chunks, then a broken `data:` line
    server.drop_connection(after=1)             # one chunk, then the TCP connection is cut
    server.stream_error(after=1)                # vLLM-style `data: {"error": ...}` mid-stream

`fail` and `hang` take `times=n` for a fault that persists across the client's retries.

Every request is recorded before faults and auth apply: `server.requests` is a list of
`RecordedRequest` (`method`, `path`, `query`, `headers`, `json`, `received_at`); see also
`server.requests_to(path)` and `server.chat_requests`. State is plain attributes a test may set:
`server.adapters` (name → path), `server.base_models`, `server.accept_any_model`.

Extending (fine-tuning jobs, files, ...): add routes before `start()`, with
`server.add_route("POST", "/v1/fine_tuning/jobs", handler)` or `server.app.router` directly.
The middleware records, injects faults and checks auth for those routes too; inside a handler,
`FakeOpenAIServer.recorded(request)` is the parsed request and `openai_error(...)` builds an
error response.

Fixture: `openai_server` (started, `api_key=TEST_API_KEY`, base model `BASE_MODEL`). Make it
available in a test folder with `from tests.support.openai_server import openai_server  # noqa: F401`
in that folder's `conftest.py`; build other configurations with `async with FakeOpenAIServer(...)`.
"""
from __future__ import annotations

import asyncio
import inspect
import itertools
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable, Literal, Mapping

import pytest
from aiohttp import web
from multidict import CIMultiDict

TEST_API_KEY = "sk-test-fake-key"
BASE_MODEL = "base-model"
CHAT_PATH = "/v1/chat/completions"

_RECORD_KEY = web.RequestKey("recorded", object)
_FAULT_KEY = web.RequestKey("fault", object)


@dataclass
class RecordedRequest:
    """One request as the server received it."""

    method: str
    path: str
    query: dict[str, str]
    headers: CIMultiDict[str]
    json: Any  # the parsed JSON body, or None
    raw: bytes = b""
    received_at: float = field(default_factory=time.monotonic)  # to assert retry delays


@dataclass
class Reply:
    """A scripted chat-completion reply, streamed as these chunks."""

    chunks: list[str]
    finish_reason: str = "stop"
    delay_s: float = 0.0  # pause before each chunk, to simulate a slow model

    @property
    def text(self) -> str:
        return "".join(self.chunks)


@dataclass
class Fault:
    """One injected failure, consumed by the first request whose path matches."""

    kind: Literal["status", "hang", "malformed", "drop", "stream_error"]
    status: int = 500
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    after: int = 1  # good chunks sent before a mid-stream fault
    path: str | None = None


Responder = Callable[[RecordedRequest], "str | list[str] | Reply | Awaitable[str | list[str] | Reply]"]


def openai_error(
    status: int, message: str, *, type: str | None = None, code: Any = None, headers: Mapping[str, str] | None = None
) -> web.Response:
    """An error response in the shape OpenAI and recent vLLM use: `{"error": {...}}`."""
    payload = {"error": {"message": message, "type": type or _DEFAULT_TYPES.get(status, "api_error"), "param": None, "code": code}}
    return web.json_response(payload, status=status, headers=headers)


_DEFAULT_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "permission_error",
    404: "NotFoundError",
    429: "rate_limit_error",
}
_DEFAULT_MESSAGES = {
    401: ("Incorrect API key provided.", "invalid_api_key"),
    403: ("You are not allowed to use this model.", "permission_denied"),
    404: ("The model does not exist.", "model_not_found"),
    429: ("Rate limit reached.", "rate_limit_exceeded"),
    500: ("The server had an error while processing your request.", "server_error"),
    503: ("The engine is overloaded.", "overloaded"),
}


def split_words(text: str) -> list[str]:
    """Chunks like a tokenizer's: each word with the whitespace before it."""
    return re.findall(r"\s*\S+|\s+$", text) or ([text] if text else [])


class FakeOpenAIServer:
    """OpenAI chat completions + vLLM LoRA admin on loopback. See the module docstring."""

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_models: tuple[str, ...] | list[str] = (BASE_MODEL,),
        accept_any_model: bool = False,
        runtime_lora: bool = True,
        max_lora_rank: int = 16,
        default_reply: str = "Hello from the fake server.",
    ) -> None:
        self.api_key = api_key
        self.base_models = list(base_models)
        self.accept_any_model = accept_any_model
        self.runtime_lora = runtime_lora
        self.max_lora_rank = max_lora_rank
        self.default_reply = default_reply
        self.adapters: dict[str, str] = {}  # loaded adapter name -> lora_path
        self.requests: list[RecordedRequest] = []
        self.responder: Responder | None = None
        self._replies: list[Reply] = []
        self._faults: list[Fault] = []
        self._ids = itertools.count(1)
        self._closing = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.port: int | None = None
        self.app = web.Application(middlewares=[self._middleware()])
        self._add_builtin_routes()

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> FakeOpenAIServer:
        # A short shutdown grace: hanging handlers are woken by `_closing` anyway.
        self._runner = web.AppRunner(self.app, shutdown_timeout=0.5, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def close(self) -> None:
        self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeOpenAIServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def url(self) -> str:
        """`http://127.0.0.1:<port>` (no path)."""
        if self.port is None:
            raise RuntimeError("the server is not started")
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """The OpenAI-style base URL, ending in `/v1`."""
        return f"{self.url}/v1"

    def add_route(self, method: str, path: str, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> None:
        """Add an extra route (before `start()`); recording, faults and auth apply to it."""
        if self._runner is not None:
            raise RuntimeError("add routes before start(): aiohttp freezes the router once running")
        self.app.router.add_route(method, path, handler)

    # -- scripting ------------------------------------------------------------------------------

    def enqueue_reply(
        self, text: str | None = None, *, chunks: list[str] | None = None, finish_reason: str = "stop", delay_s: float = 0.0
    ) -> Reply:
        """Queue the next chat-completion reply: `text` split into words, or exactly `chunks`."""
        if chunks is None:
            if text is None:
                raise ValueError("give text or chunks")
            chunks = split_words(text)
        elif text is not None and "".join(chunks) != text:
            raise ValueError("chunks must join to text")
        reply = Reply(list(chunks), finish_reason=finish_reason, delay_s=delay_s)
        self._replies.append(reply)
        return reply

    def enqueue_fault(self, fault: Fault, times: int = 1) -> None:
        self._faults.extend(Fault(**vars(fault)) for _ in range(times))

    def fail(
        self,
        status: int,
        *,
        retry_after: float | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        path: str | None = None,
        times: int = 1,
    ) -> None:
        """The next matching request(s) get this HTTP error."""
        all_headers = dict(headers or {})
        if retry_after is not None:
            all_headers["Retry-After"] = f"{retry_after:g}"
        self.enqueue_fault(Fault("status", status=status, body=body, headers=all_headers, path=path), times)

    def hang(self, seconds: float, *, path: str | None = None, times: int = 1) -> None:
        """The next matching request(s) sleep `seconds` before being answered normally."""
        self.enqueue_fault(Fault("hang", seconds=seconds, path=path), times)

    def malformed_chunk(self, after: int = 1, *, path: str = CHAT_PATH) -> None:
        """The next stream sends `after` good chunks, then a `data:` line that is not JSON."""
        self.enqueue_fault(Fault("malformed", after=after, path=path))

    def drop_connection(self, after: int = 1, *, path: str = CHAT_PATH) -> None:
        """The next stream sends `after` good chunks, then the connection is cut."""
        self.enqueue_fault(Fault("drop", after=after, path=path))

    def stream_error(self, after: int = 1, *, path: str = CHAT_PATH, message: str = "engine error", code: Any = 500) -> None:
        """The next stream sends `after` good chunks, then a `data: {"error": ...}` event."""
        error = {"message": message, "type": "InternalServerError", "code": code}
        self.enqueue_fault(Fault("stream_error", after=after, path=path, body=error))

    def requests_to(self, path: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == path]

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        return self.requests_to(CHAT_PATH)

    @staticmethod
    def recorded(request: web.Request) -> RecordedRequest:
        """The parsed, recorded form of `request` (for handlers of extra routes)."""
        return request[_RECORD_KEY]  # type: ignore[return-value]

    # -- middleware: record, inject faults, check auth ------------------------------------------

    def _middleware(self):
        @web.middleware
        async def middleware(request: web.Request, handler):
            record = await self._record(request)
            request[_RECORD_KEY] = record
            fault = self._take_fault(request.path)
            if fault is not None:
                if fault.kind == "status":
                    return self._fault_response(fault)
                if fault.kind == "hang":
                    if await self._sleep(fault.seconds):
                        return openai_error(503, "server shutting down")
                else:
                    request[_FAULT_KEY] = fault
            if self.api_key is not None and request.path.startswith("/v1/"):
                if request.headers.get("Authorization") != f"Bearer {self.api_key}":
                    message, code = _DEFAULT_MESSAGES[401]
                    return openai_error(401, message, code=code)
            return await handler(request)

        return middleware

    async def _record(self, request: web.Request) -> RecordedRequest:
        raw = await request.read()
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        record = RecordedRequest(request.method, request.path, dict(request.query), CIMultiDict(request.headers), parsed, raw)
        self.requests.append(record)
        return record

    def _take_fault(self, path: str) -> Fault | None:
        for i, fault in enumerate(self._faults):
            if fault.path is None or fault.path == path:
                return self._faults.pop(i)
        return None

    @staticmethod
    def _fault_response(fault: Fault) -> web.Response:
        if fault.body is not None:
            return web.json_response(fault.body, status=fault.status, headers=fault.headers)
        message, code = _DEFAULT_MESSAGES.get(fault.status, ("Injected failure.", None))
        return openai_error(fault.status, message, code=code, headers=fault.headers)

    async def _sleep(self, seconds: float) -> bool:
        """Sleep, waking early when the server closes (then True), so teardown never waits."""
        try:
            await asyncio.wait_for(self._closing.wait(), seconds)
        except asyncio.TimeoutError:
            return False
        return True

    # -- OpenAI routes --------------------------------------------------------------------------

    def _add_builtin_routes(self) -> None:
        router = self.app.router
        router.add_post(CHAT_PATH, self._chat_completions)
        router.add_get("/v1/models", self._list_models)
        router.add_get("/v1/models/{model:.+}", self._get_model)
        router.add_post("/v1/load_lora_adapter", self._load_lora_adapter)
        router.add_post("/v1/unload_lora_adapter", self._unload_lora_adapter)
        router.add_get("/health", self._health)

    def _serves(self, model: str) -> bool:
        return self.accept_any_model or model in self.base_models or model in self.adapters

    def _model_card(self, model: str) -> dict[str, Any]:
        adapter_path = self.adapters.get(model)
        return {
            "id": model,
            "object": "model",
            "created": 0,
            "owned_by": "vllm",
            "root": adapter_path if adapter_path is not None else model,
            "parent": self.base_models[0] if adapter_path is not None and self.base_models else None,
        }

    async def _list_models(self, request: web.Request) -> web.Response:
        names = [*self.base_models, *self.adapters]
        return web.json_response({"object": "list", "data": [self._model_card(n) for n in names]})

    async def _get_model(self, request: web.Request) -> web.Response:
        model = request.match_info["model"]
        if not self._serves(model):
            return openai_error(404, f"The model `{model}` does not exist.", code=404)
        return web.json_response(self._model_card(model))

    async def _health(self, request: web.Request) -> web.Response:
        return web.Response(status=200)

    async def _chat_completions(self, request: web.Request) -> web.StreamResponse:
        record = self.recorded(request)
        body = record.json
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list) or not body.get("model"):
            return openai_error(400, "'model' and a list of 'messages' are required", code=400)
        model = body["model"]
        if not self._serves(model):
            # vLLM's wording and status for an unknown model or adapter name.
            return openai_error(404, f"The model `{model}` does not exist.", type="NotFoundError", code=404)
        reply = _apply_stop(await self._next_reply(record), body.get("stop"))
        fault = request.get(_FAULT_KEY)
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            return await self._stream(request, reply, model, fault, include_usage=include_usage)
        if fault is not None:
            return web.Response(text='{"id": "broken', content_type="application/json")
        return web.json_response(self._completion(reply, model))

    async def _next_reply(self, record: RecordedRequest) -> Reply:
        if self._replies:
            return self._replies.pop(0)
        if self.responder is not None:
            result = self.responder(record)
            if inspect.isawaitable(result):
                result = await result
            if isinstance(result, Reply):
                return result
            if isinstance(result, str):
                return Reply(split_words(result))
            return Reply(list(result))
        return Reply(split_words(self.default_reply))

    def _completion(self, reply: Reply, model: str) -> dict[str, Any]:
        return {
            "id": f"chatcmpl-fake-{next(self._ids)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": reply.text}, "finish_reason": reply.finish_reason}],
            "usage": _usage(reply),
        }

    async def _stream(
        self, request: web.Request, reply: Reply, model: str, fault: Fault | None, *, include_usage: bool
    ) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await response.prepare(request)
        ident, created = f"chatcmpl-fake-{next(self._ids)}", int(time.time())

        def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
            return {"id": ident, "object": "chat.completion.chunk", "created": created, "model": model,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]}

        await _send(response, chunk({"role": "assistant", "content": ""}))
        for sent, text in enumerate(reply.chunks):
            if fault is not None and sent == fault.after:
                return await self._stream_fault(request, response, fault)
            if reply.delay_s and await self._sleep(reply.delay_s):
                break
            await _send(response, chunk({"content": text}))
        if fault is not None:  # the reply was shorter than `after`: fail at its end
            return await self._stream_fault(request, response, fault)
        await _send(response, chunk({}, reply.finish_reason))
        if include_usage:
            usage_chunk = {"id": ident, "object": "chat.completion.chunk", "created": created, "model": model}
            await _send(response, {**usage_chunk, "choices": [], "usage": _usage(reply)})
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    @staticmethod
    async def _stream_fault(request: web.Request, response: web.StreamResponse, fault: Fault) -> web.StreamResponse:
        if fault.kind == "malformed":
            await response.write(b'data: {"id": "chatcmpl-broken", "choices": [{"delta": {"content": \n\n')
            await response.write(b"data: [DONE]\n\n")
            await response.write_eof()
        elif fault.kind == "stream_error":
            await _send(response, {"error": fault.body})
            await response.write_eof()
        else:  # drop: cut the TCP connection without finishing the chunked body
            if request.transport is not None:
                request.transport.abort()
        return response

    # -- vLLM runtime LoRA routes ---------------------------------------------------------------

    async def _load_lora_adapter(self, request: web.Request) -> web.StreamResponse:
        if not self.runtime_lora:
            return _route_missing()
        body = self.recorded(request).json or {}
        name, path = body.get("lora_name"), body.get("lora_path")
        if not name or not path:
            return openai_error(400, "Both 'lora_name' and 'lora_path' must be provided.", type="InvalidUserInput", code=400)
        if name in self.adapters:
            return openai_error(400, f"The lora adapter '{name}' has already been loaded.", type="InvalidUserInput", code=400)
        rank = _adapter_rank(path)
        if rank is not None and rank > self.max_lora_rank:
            message = f"LoRA rank {rank} is greater than max_lora_rank {self.max_lora_rank}."
            return openai_error(400, message, type="BadRequestError", code=400)
        self.adapters[name] = path
        return web.Response(text=f"Success: LoRA adapter '{name}' added successfully.")

    async def _unload_lora_adapter(self, request: web.Request) -> web.StreamResponse:
        if not self.runtime_lora:
            return _route_missing()
        body = self.recorded(request).json or {}
        name = body.get("lora_name")
        if not name:
            return openai_error(400, "'lora_name' needs to be provided to unload a LoRA adapter.", type="InvalidUserInput", code=400)
        if name not in self.adapters:
            return openai_error(404, f"The lora adapter '{name}' cannot be found.", type="NotFoundError", code=404)
        del self.adapters[name]
        return web.Response(text=f"Success: LoRA adapter '{name}' removed successfully.")


def _route_missing() -> web.Response:
    # FastAPI's answer for a route that does not exist.
    return web.json_response({"detail": "Not Found"}, status=404)


def _adapter_rank(lora_path: str) -> int | None:
    """The rank in `<lora_path>/adapter_config.json`, or None when there is no such file."""
    config = Path(lora_path) / "adapter_config.json"
    try:
        return int(json.loads(config.read_text())["r"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _apply_stop(reply: Reply, stop: str | list[str] | None) -> Reply:
    """Cut the reply before the first stop sequence, keeping the scripted chunk boundaries."""
    stops = [stop] if isinstance(stop, str) else list(stop or [])
    text = reply.text
    cuts = [text.find(s) for s in stops if s and s in text]
    if not cuts:
        return reply
    cut, chunks, used = min(cuts), [], 0
    for piece in reply.chunks:
        if used >= cut:
            break
        chunks.append(piece[: cut - used])
        used += len(piece)
    return Reply([c for c in chunks if c], finish_reason="stop", delay_s=reply.delay_s)


def _usage(reply: Reply) -> dict[str, int]:
    completion = len(reply.chunks)
    return {"prompt_tokens": 0, "completion_tokens": completion, "total_tokens": completion}


async def _send(response: web.StreamResponse, payload: dict[str, Any]) -> None:
    await response.write(f"data: {json.dumps(payload)}\n\n".encode())


@pytest.fixture
async def openai_server():
    """A started `FakeOpenAIServer` requiring `TEST_API_KEY` and serving `BASE_MODEL`."""
    async with FakeOpenAIServer(api_key=TEST_API_KEY) as server:
        yield server
