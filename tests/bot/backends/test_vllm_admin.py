"""VLLMAdmin against the loopback server: load/unload/list, vLLM's errors, and a hot swap."""
from __future__ import annotations

import json

import httpx2
import pytest

from bot.backends.base import BackendAuthError, BackendNotFoundError, BackendTimeoutError, GenerationParams
from bot.backends.openai_compat import OpenAICompatBackend
from bot.backends.vllm_admin import (
    AdapterAlreadyLoadedError,
    AdapterNotFoundError,
    AdapterRankError,
    ModelCard,
    RuntimeLoRADisabledError,
    VLLMAdmin,
)
from tests.support.openai_server import BASE_MODEL, TEST_API_KEY, FakeOpenAIServer


@pytest.fixture
async def admin(openai_server):
    async with VLLMAdmin(openai_server.base_url, TEST_API_KEY, timeout_s=5) as client:
        yield client


async def test_load_sends_vllms_payload_and_the_adapter_is_listed(openai_server, admin):
    await admin.load_adapter("tim-v3", "/srv/adapters/tim-v3")

    (request,) = openai_server.requests_to("/v1/load_lora_adapter")
    assert request.json == {"lora_name": "tim-v3", "lora_path": "/srv/adapters/tim-v3"}
    assert request.headers["Authorization"] == f"Bearer {TEST_API_KEY}"
    assert await admin.list_adapters() == {"tim-v3": "/srv/adapters/tim-v3"}
    models = await admin.list_models()
    assert ModelCard(BASE_MODEL, BASE_MODEL, None) in models
    assert [m.id for m in models if m.is_adapter] == ["tim-v3"]


async def test_unload_removes_the_adapter(openai_server, admin):
    await admin.load_adapter("tim-v3", "/a")
    await admin.unload_adapter("tim-v3")
    assert openai_server.requests_to("/v1/unload_lora_adapter")[0].json == {"lora_name": "tim-v3"}
    assert await admin.list_adapters() == {}


async def test_unloading_an_unknown_adapter_is_not_found_unless_missing_ok(admin):
    with pytest.raises(AdapterNotFoundError, match="'tim-v1'") as info:
        await admin.unload_adapter("tim-v1")
    assert isinstance(info.value, BackendNotFoundError)
    assert info.value.status == 404
    await admin.unload_adapter("tim-v1", missing_ok=True)


async def test_loading_a_name_twice_says_to_use_a_new_name_unless_exist_ok(openai_server, admin):
    await admin.load_adapter("tim-v3", "/a")
    with pytest.raises(AdapterAlreadyLoadedError, match="new name"):
        await admin.load_adapter("tim-v3", "/b")
    await admin.load_adapter("tim-v3", "/a", exist_ok=True)  # start-up re-registration
    assert openai_server.adapters == {"tim-v3": "/a"}


async def test_missing_endpoint_means_runtime_lora_updating_is_off():
    async with FakeOpenAIServer(runtime_lora=False) as server, VLLMAdmin(server.base_url) as admin:
        with pytest.raises(RuntimeLoRADisabledError, match="VLLM_ALLOW_RUNTIME_LORA_UPDATING=True") as info:
            await admin.load_adapter("tim-v3", "/a")
        assert info.value.retryable is False
        assert server.adapters == {}


async def test_missing_adapter_files_are_not_mistaken_for_a_missing_endpoint(openai_server, admin):
    # vLLM answers a lora_path it cannot find with its own 404 error object.
    openai_server.fail(
        404,
        body={"error": {"message": "No adapter found for /nope", "type": "NotFoundError", "code": 404}},
        path="/v1/load_lora_adapter",
    )
    with pytest.raises(AdapterNotFoundError, match="vLLM server's own filesystem"):
        await admin.load_adapter("tim-v3", "/nope")


async def test_rank_above_the_servers_cap_names_max_lora_rank(openai_server, admin, tmp_path):
    (tmp_path / "adapter_config.json").write_text(json.dumps({"r": 32, "lora_alpha": 64}))
    with pytest.raises(AdapterRankError, match="--max-lora-rank 32 or more"):
        await admin.load_adapter("tim-v3", tmp_path)
    assert openai_server.adapters == {}


async def test_wrong_key_is_an_auth_error(openai_server):
    async with VLLMAdmin(openai_server.base_url, "sk-wrong") as admin:
        with pytest.raises(BackendAuthError, match="VLLM_API_KEY"):
            await admin.load_adapter("tim-v3", "/a")


async def test_base_url_without_v1_reaches_the_same_routes(openai_server):
    async with VLLMAdmin(openai_server.url + "/", TEST_API_KEY) as admin:
        await admin.load_adapter("tim-v3", "/a")
    assert openai_server.requests_to("/v1/load_lora_adapter")


async def test_a_hanging_server_times_out(openai_server):
    openai_server.hang(10)
    async with VLLMAdmin(openai_server.base_url, TEST_API_KEY, timeout_s=0.2) as admin:
        with pytest.raises(BackendTimeoutError):
            await admin.list_models()


async def test_a_shared_http_client_stays_open(openai_server):
    async with httpx2.AsyncClient() as http:
        admin = VLLMAdmin(openai_server.base_url, TEST_API_KEY, http_client=http)
        await admin.list_models()
        await admin.aclose()
        assert not http.is_closed


async def test_hot_swap_loads_new_name_switches_traffic_then_unloads_old(openai_server, admin):
    await admin.load_adapter("tim-v3", "/a/tim-v3")
    current = OpenAICompatBackend(openai_server.base_url, TEST_API_KEY, "tim-v3", kind="vllm", max_retries=0)
    await admin.load_adapter("tim-v4", "/a/tim-v4")
    swapped = current.with_model("tim-v4")
    await current.aclose()
    await admin.unload_adapter("tim-v3")
    try:
        openai_server.enqueue_reply("new weights")
        assert [d async for d in swapped.stream([{"role": "user", "content": "hi"}], GenerationParams())] == ["new", " weights"]
        retired = swapped.with_model("tim-v3")
        with pytest.raises(BackendNotFoundError):  # the retired name is gone from the server
            await retired.health()
        await retired.aclose()
    finally:
        await swapped.aclose()
    assert swapped.client.is_closed()
