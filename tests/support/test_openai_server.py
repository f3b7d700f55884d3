"""The loopback OpenAI/vLLM server itself: the parts the backend tests do not already cover."""
from __future__ import annotations

import openai
import pytest
from aiohttp import web

from tests.support.openai_server import BASE_MODEL, TEST_API_KEY, FakeOpenAIServer, Reply, openai_error

HI = [{"role": "user", "content": "hi"}]


@pytest.fixture
async def server():
    async with FakeOpenAIServer(api_key=TEST_API_KEY) as running:
        yield running


@pytest.fixture
async def client(server):
    async with openai.AsyncOpenAI(api_key=TEST_API_KEY, base_url=server.base_url, max_retries=0) as sdk:
        yield sdk


async def test_non_streaming_reply_is_a_chat_completion(server, client):
    server.enqueue_reply("plain JSON")
    completion = await client.chat.completions.create(model=BASE_MODEL, messages=HI)
    assert completion.choices[0].message.content == "plain JSON"
    assert completion.model == BASE_MODEL


async def test_responder_sees_the_request_and_may_be_async(server, client):
    async def responder(request):
        return Reply([request.json["messages"][-1]["content"].upper()], finish_reason="length")

    server.responder = responder
    completion = await client.chat.completions.create(model=BASE_MODEL, messages=HI)
    assert completion.choices[0].message.content == "HI"
    assert completion.choices[0].finish_reason == "length"


async def test_stream_ends_with_usage_when_asked(server, client):
    server.enqueue_reply(chunks=["a", "b"])
    stream = await client.chat.completions.create(
        model=BASE_MODEL, messages=HI, stream=True, stream_options={"include_usage": True}
    )
    chunks = [chunk async for chunk in stream]
    assert [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content] == ["a", "b"]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 2


def test_chunks_must_match_text():
    with pytest.raises(ValueError):
        FakeOpenAIServer().enqueue_reply("abc", chunks=["a", "b"])


async def test_extra_routes_get_recording_faults_and_auth():
    fake = FakeOpenAIServer(api_key=TEST_API_KEY)

    async def create_job(request: web.Request) -> web.Response:
        body = FakeOpenAIServer.recorded(request).json
        if "training_file" not in body:
            return openai_error(400, "training_file is required")
        return web.json_response({"id": "ftjob-1", "object": "fine_tuning.job", "status": "queued"})

    fake.add_route("POST", "/v1/fine_tuning/jobs", create_job)
    async with fake:
        with pytest.raises(RuntimeError):
            fake.add_route("GET", "/late", create_job)
        fake.fail(503, path="/v1/fine_tuning/jobs")
        async with openai.AsyncOpenAI(api_key=TEST_API_KEY, base_url=fake.base_url, max_retries=1) as sdk:
            job = await sdk.post("/fine_tuning/jobs", body={"training_file": "file-1"}, cast_to=dict)
        async with openai.AsyncOpenAI(api_key="wrong", base_url=fake.base_url, max_retries=0) as sdk:
            with pytest.raises(openai.AuthenticationError):
                await sdk.post("/fine_tuning/jobs", body={"training_file": "file-1"}, cast_to=dict)
    assert job["id"] == "ftjob-1"
    assert [r.json for r in fake.requests_to("/v1/fine_tuning/jobs")][:2] == [{"training_file": "file-1"}] * 2
