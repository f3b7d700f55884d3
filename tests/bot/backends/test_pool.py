"""BackendPool: one backend per endpoint, overrides for promotion, clear key errors."""
import pytest

from bot.backends.base import BackendAuthError
from bot.backends.pool import BackendPool
from bot.persona import load_persona
from bot.persona.spec import ModelSpec


@pytest.fixture
def tim(settings):
    spec = load_persona(settings.core.resolved_personas_dir() / "tim")
    return spec.model_copy(update={"model": ModelSpec(backend="vllm", model="base-model", base_url="http://127.0.0.1:9/v1")})


async def test_shared_per_endpoint_and_override(settings, tim):
    pool = BackendPool(settings)
    eve = tim.model_copy(update={"name": "eve"})
    a, b = pool.for_persona(tim), pool.for_persona(eve)
    assert a is b and a.model_name == "base-model"
    pool.set_model_override("tim", tim.model.model_copy(update={"adapter": "tim-v2"}))
    assert pool.for_persona(tim).model_name == "tim-v2"
    assert pool.for_persona(eve).model_name == "base-model"
    pool.set_model_override("tim", None)
    assert pool.for_persona(tim) is a
    await pool.aclose()


def test_openai_without_key_is_a_clear_error(settings, tim, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    spec = tim.model_copy(update={"model": ModelSpec(backend="openai", model="gpt-4o-mini")})
    with pytest.raises(BackendAuthError, match="OPENAI_API_KEY"):
        BackendPool(settings).for_persona(spec)
