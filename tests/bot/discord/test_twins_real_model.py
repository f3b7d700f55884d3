"""The Discord twin journey with the real embedded SmolLM2 (slow: real weights on CPU): /twin create,
/twin import of a posts-only archive, /twin build max_steps:2 → the DM with the gate's report."""
from __future__ import annotations

import pytest

from tests.bot.discord.test_twins import content_of, done, import_archive

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]


async def test_twin_build_in_discord_with_smollm2(harness, real_models_dir, tmp_path):
    h = harness
    h.settings.core.models_dir_override = real_models_dir
    h.settings.core.local_device = "cpu"
    dm = h.fake.add_dm(h.alice)
    await done(await h.fake.slash(dm, h.alice, "twin", "create", name="sam", owner_name="Sam"))
    assert h.bot.personas["sam"].model.model == "smollm2-135m-instruct"
    record = await import_archive(h, dm, tmp_path)
    attest = await h.fake.click(record, h.alice, "twin:attest")
    await content_of(h, attest, "Which of these is you?")
    await content_of(h, await h.fake.click(attest, h.alice, "twin:identity:0"), "Imported into")
    await done(await h.fake.slash(dm, h.alice, "twin", "build", twin="sam", max_steps=2))
    await h.fake.wait_for(lambda: any(m["content"].startswith("Dataset v1") for m in h.fake.bot_messages(dm)), 1500, "the result")
    final = "\n".join(m["content"] for m in h.fake.bot_messages(dm))
    assert "sam-v1: gate" in final and "held-out loss: candidate" in final and "lets-a-sign-off-pass" in final
