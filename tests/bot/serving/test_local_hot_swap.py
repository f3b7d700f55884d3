"""The real local backend (transformers + peft on a tiny random Llama) hot-swaps LoRA adapters
mid-conversation: the reply in progress finishes on the old adapter, the next comes from the new,
and the model is loaded once."""
import asyncio
import json

import pytest

from bot.backends import local  # noqa: E402
from bot.backends.pool import BackendPool  # noqa: E402
from bot.engine import ChatEngine, Turn  # noqa: E402
from bot.persona import load_personas  # noqa: E402
from bot.serving import ModelSync  # noqa: E402
from bot.store import registry  # noqa: E402
from tests.support import tiny_llama as tiny  # noqa: E402


def random_adapter(base_dir, out, seed: int):
    """A LoRA adapter with random (not zero) weights, so it visibly changes what the model says."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base_dir)
    config = LoraConfig(r=4, lora_alpha=64, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    get_peft_model(model, config).save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    root = tmp_path_factory.mktemp("hot-swap")
    base = tiny.build_tiny_llama(root / "base")
    return base, random_adapter(base, root / "a1", 1), random_adapter(base, root / "a2", 2)


async def test_real_local_backend_swaps_mid_conversation(db, settings, tiny_models):
    base, a1, a2 = tiny_models
    personas = load_personas(settings.core.resolved_personas_dir())
    tim = personas["tim"]
    tim = tim.model_copy(update={
        "model": tim.model.model_copy(update={"model": str(base)}),
        "sampling": tim.sampling.model_copy(update={"temperature": 0.0, "max_tokens": 12}),
    })
    settings.core.local_device = "cpu"
    pool = BackendPool(settings)
    sync = ModelSync(db, pool, {"tim": tim})
    engine = ChatEngine(pool.for_persona)
    built = []
    real_factory = pool.factories["local"]
    pool.factories["local"] = lambda spec, s: built.append(spec) or real_factory(spec, s)
    names = []
    for path in (a1, a2):
        v = await registry.create_version(db, persona="tim", backend="local", base_model=str(base), dataset_version="d")
        await registry.update_version(db, v.name, status="candidate", adapter_path=str(path))
        names.append(v.name)
    history = [Turn("u1", "Ana", "Hello, what is a fraction?")]

    async def reply():
        stream = engine.respond(tim, history)
        return await stream.text(), stream.reply.model

    try:
        await registry.set_active(db, names[0])
        await sync.start()
        first, model = await reply()
        assert model.endswith("+tim-v1")

        # tim-v2 is promoted while a reply streams from tim-v1.
        await registry.set_active(db, names[1])
        stream = engine.respond(tim, history)
        chunks = stream.__aiter__()
        got = [await chunks.__anext__()]            # the generation is under way on tim-v1
        swapping = asyncio.create_task(sync.sync())
        got += [c async for c in chunks]
        await swapping
        assert "".join(got) == stream.reply.text == first and stream.reply.model.endswith("+tim-v1")
        after, model = await reply()
        assert model.endswith("+tim-v2")
        assert after != first                      # a different adapter answers now
        backend = pool.for_persona(tim)
        assert backend.adapters == ["tim-v2"] and len(built) == 1   # loaded beside, old one unloaded, one model
        # Going back reproduces the first answer exactly (greedy), so no state leaked between adapters.
        await registry.set_active(db, names[0], event="rolled_back")
        await sync.sync()
        assert await reply() == (first, backend.model_name)
    finally:
        await pool.aclose()
