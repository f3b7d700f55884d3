"""OpenAICompatBackend against a real loopback server: wire format, retries, timeouts, errors."""
from __future__ import annotations

import socket
import time

import pytest

from bot.backends.base import (
    BackendAuthError,
    BackendError,
    BackendNotFoundError,
    BackendTimeoutError,
    GenerationParams,
)
from bot.backends.openai_compat import OPENAI_MAX_STOP, OpenAICompatBackend, openai_compat_from_settings
from bot.settings import VLLMSettings
from tests.support.openai_server import BASE_MODEL, TEST_API_KEY, FakeOpenAIServer

MESSAGES = [
    {"role": "system", "content": "You are TIM, a patient tutor."},
    {"role": "user", "content": "my secret homework answer is 42"},
]
SECRET = "secret homework"


@pytest.fixture
async def make_backend(openai_server):
    """Backends against the fixture server, with small timeouts; all closed after the test."""
    made: list[OpenAICompatBackend] = []

    def make(model: str = BASE_MODEL, *, kind: str = "vllm", api_key: str | None = TEST_API_KEY, **kwargs) -> OpenAICompatBackend:
        kwargs.setdefault("timeout_s", 5.0)
        kwargs.setdefault("max_retries", 2)
        backend = OpenAICompatBackend(openai_server.base_url, api_key, model, kind=kind, **kwargs)
        made.append(backend)
        return backend

    yield make
    for backend in made:
        await backend.aclose()


async def collect(backend: OpenAICompatBackend, params: GenerationParams | None = None, deltas: list[str] | None = None) -> list[str]:
    """All deltas of one reply; `deltas` receives them as they come, so a failing stream keeps them."""
    deltas = [] if deltas is None else deltas
    async for delta in backend.stream(MESSAGES, params or GenerationParams()):
        deltas.append(delta)
    return deltas


# -- the happy path and what goes over the wire ---------------------------------------------------


async def test_stream_yields_each_delta_and_sends_model_params_and_key(openai_server, make_backend):
    openai_server.enqueue_reply(chunks=["Hel", "lo, ", "world", "!"])
    backend = make_backend()
    params = GenerationParams(temperature=0.3, top_p=0.8, max_tokens=42, stop=("User:", "\nTIM:"), seed=7)

    assert await collect(backend, params) == ["Hel", "lo, ", "world", "!"]

    (request,) = openai_server.chat_requests
    assert request.headers["Authorization"] == f"Bearer {TEST_API_KEY}"
    body = request.json
    assert body["model"] == BASE_MODEL
    assert body["messages"] == MESSAGES
    assert body["stream"] is True
    assert (body["temperature"], body["top_p"], body["max_tokens"], body["seed"]) == (0.3, 0.8, 42, 7)
    assert body["stop"] == ["User:", "\nTIM:"]


async def test_openai_kind_sends_at_most_four_stops_and_max_completion_tokens(openai_server, make_backend):
    openai_server.enqueue_reply("fine")
    backend = make_backend(kind="openai")
    stops = ("User:", "A:", "B:", "C:", "D:", "E:")

    await collect(backend, GenerationParams(max_tokens=99, stop=stops, repetition_penalty=1.2))

    body = openai_server.chat_requests[0].json
    assert body["stop"] == list(stops[:OPENAI_MAX_STOP])
    assert body["max_completion_tokens"] == 99
    assert "max_tokens" not in body
    assert "repetition_penalty" not in body  # OpenAI has no such parameter


async def test_vllm_kind_sends_every_stop_and_repetition_penalty(openai_server, make_backend):
    openai_server.enqueue_reply("fine")
    openai_server.enqueue_reply("again")
    backend = make_backend(kind="vllm")
    stops = ("User:", "A:", "B:", "C:", "D:", "E:")

    await collect(backend, GenerationParams(stop=stops, repetition_penalty=1.2))
    await collect(backend, GenerationParams())

    first, second = (r.json for r in openai_server.chat_requests)
    assert first["stop"] == list(stops)
    assert first["repetition_penalty"] == 1.2
    assert "stop" not in second and "seed" not in second and "repetition_penalty" not in second


async def test_server_side_stop_ends_the_reply(openai_server, make_backend):
    openai_server.enqueue_reply("Sure thing.\nUser: and then")
    text = "".join(await collect(make_backend(), GenerationParams(stop=("\nUser:",))))
    assert text == "Sure thing."


async def test_vllm_without_key_never_sends_the_openai_key(openai_server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-must-not-leak")
    async with FakeOpenAIServer() as server:  # no --api-key
        backend = OpenAICompatBackend(server.base_url, None, BASE_MODEL, kind="vllm", max_retries=0)
        try:
            await collect(backend)
        finally:
            await backend.aclose()
        assert "sk-must-not-leak" not in server.chat_requests[0].headers["Authorization"]


def test_openai_without_key_fails_fast_naming_the_setting():
    with pytest.raises(BackendAuthError, match="MY_KEY_ENV"):
        OpenAICompatBackend("http://127.0.0.1:9/v1", None, "gpt-4o-mini", kind="openai", key_setting="MY_KEY_ENV")


# -- retries (the SDK's) ----------------------------------------------------------------------------


async def test_500_is_retried_and_then_succeeds(openai_server, make_backend):
    openai_server.fail(500)
    openai_server.enqueue_reply("recovered")
    assert "".join(await collect(make_backend())) == "recovered"
    assert len(openai_server.chat_requests) == 2


async def test_429_waits_for_retry_after_before_retrying(openai_server, make_backend):
    openai_server.fail(429, retry_after=1)
    openai_server.enqueue_reply("after the wait")
    assert "".join(await collect(make_backend())) == "after the wait"
    first, second = openai_server.chat_requests
    assert second.received_at - first.received_at >= 0.95


async def test_429_that_persists_becomes_a_retryable_backend_error(openai_server, make_backend):
    openai_server.fail(429, headers={"retry-after-ms": "10"}, times=3)
    with pytest.raises(BackendError, match="HTTP 429") as info:
        await collect(make_backend(max_retries=2))
    assert info.value.retryable
    assert len(openai_server.chat_requests) == 3


async def test_hang_times_out_in_bounded_time_after_retries(openai_server, make_backend):
    openai_server.hang(10, times=2)
    backend = make_backend(timeout_s=0.3, max_retries=1)
    started = time.monotonic()
    with pytest.raises(BackendTimeoutError):
        await collect(backend)
    # Two 0.3 s attempts and one backoff of at most 0.5 s.
    assert time.monotonic() - started < 3.0
    assert len(openai_server.chat_requests) == 2


async def test_stall_mid_stream_is_a_timeout_and_not_retried(openai_server, make_backend):
    openai_server.enqueue_reply(chunks=["one", " two"], delay_s=10)
    with pytest.raises(BackendTimeoutError):
        await collect(make_backend(timeout_s=0.3, max_retries=2))
    assert len(openai_server.chat_requests) == 1


# -- failures mid-stream --------------------------------------------------------------------------


async def test_malformed_chunk_raises_backend_error_after_the_good_text(openai_server, make_backend):
    openai_server.enqueue_reply(chunks=["Good ", "start ", "then"])
    openai_server.malformed_chunk(after=2)
    deltas: list[str] = []
    with pytest.raises(BackendError, match="malformed") as info:
        await collect(make_backend(), deltas=deltas)
    assert type(info.value) is BackendError
    assert deltas == ["Good ", "start "]
    assert len(openai_server.chat_requests) == 1  # text was already shown: never retried


async def test_dropped_connection_mid_stream_raises_backend_error(openai_server, make_backend):
    openai_server.enqueue_reply(chunks=["a", "b", "c"])
    openai_server.drop_connection(after=1)
    deltas: list[str] = []
    with pytest.raises(BackendError) as info:
        await collect(make_backend(), deltas=deltas)
    assert not isinstance(info.value, BackendTimeoutError)
    assert deltas == ["a"]
    assert len(openai_server.chat_requests) == 1


async def test_error_event_mid_stream_never_repeats_the_servers_text(openai_server, make_backend):
    openai_server.enqueue_reply(chunks=["x", "y"])
    openai_server.stream_error(after=1, message=f"failed on prompt: {MESSAGES[1]['content']}", code="engine_crash")
    with pytest.raises(BackendError, match="mid-stream") as info:
        await collect(make_backend())
    assert "engine_crash" in str(info.value)
    assert SECRET not in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__


async def test_bad_request_keeps_only_the_error_code_and_is_not_retryable(openai_server, make_backend):
    echoing = {"message": f"too long: {MESSAGES[1]['content']}", "type": "invalid_request_error", "code": "context_length_exceeded"}
    openai_server.fail(400, body={"error": echoing})
    with pytest.raises(BackendError) as info:
        await collect(make_backend())
    message = str(info.value)
    assert "context_length_exceeded" in message and "HTTP 400" in message
    assert SECRET not in message
    assert info.value.retryable is False
    assert len(openai_server.chat_requests) == 1


# -- auth, unknown models, unreachable servers ----------------------------------------------------


async def test_wrong_key_is_auth_error_naming_url_and_setting_without_retry(openai_server, make_backend):
    backend = make_backend(api_key="sk-wrong", key_setting="TIM_VLLM_KEY", max_retries=3)
    with pytest.raises(BackendAuthError) as info:
        await collect(backend)
    assert openai_server.base_url in str(info.value)
    assert "TIM_VLLM_KEY" in str(info.value)
    assert info.value.retryable is False
    assert len(openai_server.chat_requests) == 1


async def test_403_is_an_auth_error(openai_server, make_backend):
    openai_server.fail(403)
    with pytest.raises(BackendAuthError, match="OPENAI_API_KEY"):
        await collect(make_backend(kind="openai"))


async def test_unknown_model_is_not_found_naming_it(openai_server, make_backend):
    with pytest.raises(BackendNotFoundError, match="'no-such-adapter'"):
        await collect(make_backend("no-such-adapter", max_retries=3))
    assert len(openai_server.chat_requests) == 1


async def test_injected_404_is_not_found(openai_server, make_backend):
    openai_server.fail(404)
    with pytest.raises(BackendNotFoundError):
        await collect(make_backend())


async def test_unreachable_server_is_backend_error():
    with socket.socket() as sock:  # a port that nothing listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    backend = OpenAICompatBackend(f"http://127.0.0.1:{port}/v1", "k", "m", kind="vllm", max_retries=0, timeout_s=2)
    try:
        with pytest.raises(BackendError, match="cannot reach"):
            await collect(backend)
    finally:
        await backend.aclose()


# -- adapters, switching models, sharing the client -----------------------------------------------


async def test_vllm_adapter_is_selected_by_model_name(openai_server, make_backend):
    backend = make_backend("tim-v3")
    with pytest.raises(BackendNotFoundError):
        await collect(backend)
    openai_server.adapters["tim-v3"] = "/adapters/tim-v3"
    openai_server.enqueue_reply("adapter speaking")
    assert "".join(await collect(backend)) == "adapter speaking"
    assert openai_server.chat_requests[-1].json["model"] == "tim-v3"


async def test_with_model_shares_the_client_and_outlives_its_parent(openai_server, make_backend):
    openai_server.adapters["tim-v4"] = "/adapters/tim-v4"
    base = make_backend()
    swapped = base.with_model("tim-v4")
    try:
        assert swapped.client is base.client
        assert (base.model_name, swapped.model_name) == (BASE_MODEL, "tim-v4")
        await base.aclose()  # the old version retires; the new one keeps the pool
        assert not swapped.client.is_closed()
        await collect(swapped)
        assert openai_server.chat_requests[-1].json["model"] == "tim-v4"
    finally:
        await swapped.aclose()
    assert swapped.client.is_closed()


async def test_model_can_be_switched_in_place(openai_server, make_backend):
    openai_server.adapters["tim-v5"] = "/adapters/tim-v5"
    backend = make_backend()
    backend.model = "tim-v5"
    await collect(backend)
    assert backend.model_name == "tim-v5"
    assert openai_server.chat_requests[-1].json["model"] == "tim-v5"


async def test_caller_owned_http_client_is_left_open(openai_server):
    import httpx2

    async with httpx2.AsyncClient() as http:
        backend = OpenAICompatBackend(openai_server.base_url, TEST_API_KEY, BASE_MODEL, kind="vllm", http_client=http)
        await collect(backend)
        await backend.aclose()
        assert not http.is_closed


# -- health and settings --------------------------------------------------------------------------


async def test_health_lists_models(openai_server, make_backend):
    assert "ok" in await make_backend().health()
    assert openai_server.requests[-1].method == "GET"
    assert openai_server.requests[-1].path == "/v1/models"
    with pytest.raises(BackendNotFoundError, match="tim-v9"):
        await make_backend("tim-v9").health()


async def test_from_settings_reads_the_persona_key_variable(openai_server):
    section = VLLMSettings(base_url=openai_server.base_url, api_key="unused", timeout_s=3, max_retries=1)
    backend = openai_compat_from_settings(
        section, kind="vllm", model=BASE_MODEL, api_key_env="TIM_KEY", environ={"TIM_KEY": TEST_API_KEY}
    )
    try:
        await collect(backend)
    finally:
        await backend.aclose()
    assert openai_server.chat_requests[0].headers["Authorization"] == f"Bearer {TEST_API_KEY}"


async def test_abandoning_a_stream_releases_it_for_the_next_reply(openai_server, make_backend):
    openai_server.enqueue_reply(chunks=["first", " second", " third"])
    openai_server.enqueue_reply("next reply")
    backend = make_backend()
    stream = backend.stream(MESSAGES, GenerationParams())
    assert await anext(stream) == "first"
    await stream.aclose()  # the engine stops early, e.g. on a stop sequence it found itself
    assert "".join(await collect(backend)) == "next reply"
