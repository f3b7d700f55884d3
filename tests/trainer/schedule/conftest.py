"""Scheduler test helpers: members' approved exchanges, stand-in training, and the bot's serving side.

Training itself is a stand-in (`FakeTrainer`: writes an adapter folder and a registry candidate);
everything else is real: the dataset builder, the gate (with scripted probe replies and a loss
table), promotion, model sync and the engine.
"""
from __future__ import annotations

import shutil

import pytest

from bot.backends.pool import BackendPool
from bot.engine import ChatEngine, Turn
from bot.persona import load_personas
from bot.serving import ModelSync
from bot.store import registry
from bot.store.consent import set_consent
from bot.store.curation import curate
from bot.store.exchanges import log_exchange
from tests.bot.serving.fakes import ScriptedFactory, make_adapter
from tests.trainer.evaluate.stand_ins import Backends, good_tim
from trainer.schedule import Steps, default_steps
from trainer.schedule.pipeline import _evaluate as _real_evaluate  # noqa: F401  (documented: replaced below)


@pytest.fixture
def personas(settings):
    found = load_personas(settings.core.resolved_personas_dir())
    tim = found["tim"]
    found["tim"] = tim.model_copy(update={"schedule": tim.schedule.model_copy(update={
        "enabled": True, "min_new_examples": 4, "cron": "0 4 * * 1", "misfire_grace_s": 3600})})
    return found


async def approved_exchanges(db, user_id: str, name: str, texts: list[tuple[str, str]], persona="tim"):
    """Log exchanges of an opted-in member, each in its own conversation, and approve the replies."""
    await set_consent(db, user_id, True, "1", display_name=name)
    for i, (question, answer) in enumerate(texts):
        logged = await log_exchange(db, persona=persona, conversation_key=f"discord:{user_id}-{i}-{question[:8]}",
                                    user_id=user_id, user_content=question, reply_content=answer, model="base")
        assert await curate(db, logged.reply_message_id, status="approved", curator="admin")


class FakeTrainer:
    """`Steps.train` stand-in: a registry candidate with an adapter folder; keeps what it trained on."""

    def __init__(self, settings):
        self.settings = settings
        self.trained_on: dict[str, str] = {}

    async def __call__(self, ctx, persona, dataset):
        v = await registry.create_version(ctx.db, persona=persona.name, backend="local", base_model=persona.model.model,
                                          dataset_version=dataset.version)
        adapter = make_adapter(self.settings.core.data_dir / "adapters" / persona.name / v.name)
        shutil.copy(dataset.folder / "train.jsonl", adapter / "trained_on.jsonl")
        self.trained_on[v.name] = (dataset.folder / "train.jsonl").read_text(encoding="utf-8") + (
            (dataset.folder / "val.jsonl").read_text(encoding="utf-8") if (dataset.folder / "val.jsonl").exists() else "")
        await registry.update_version(ctx.db, v.name, status="candidate", adapter_path=str(adapter),
                                      metrics={"val_loss": 2.0 - 0.1 * v.version})
        return await registry.get_version(ctx.db, v.name)


def stand_in_steps(settings, trainer: FakeTrainer) -> Steps:
    from trainer.evaluate.gate import evaluate_version

    async def loss(persona, version, val):
        return 3.0 if version is None else 2.0 - 0.1 * version.version

    class AnyVersion(Backends):
        def __call__(self, persona, version):
            self.responders.setdefault(version.name if version is not None else "base", good_tim)
            return super().__call__(persona, version)

    backends = AnyVersion({})

    async def evaluate(ctx, persona, version):
        return await evaluate_version(ctx.db, persona, version, data_dir=settings.core.data_dir,
                                      loss_fn=loss, backend_factory=backends)

    real = default_steps()
    return Steps(synthesize=real.synthesize, build=real.build, train=trainer, evaluate=evaluate, promote=real.promote)


class Serving:
    """The bot's side: a pool (fake local backends), model sync and the engine."""

    def __init__(self, db, settings, personas):
        self.pool = BackendPool(settings, factories={"local": ScriptedFactory()})
        self.sync = ModelSync(db, self.pool, personas)
        self.engine = ChatEngine(self.pool.for_persona)
        self.personas = personas

    async def on_switched(self, persona, version):
        await self.sync.sync()

    async def reply(self, persona="tim", text="Hello?"):
        stream = self.engine.respond(self.personas[persona], [Turn("u9", "Zoe", text)])
        return await stream.text(), stream.reply.model


class Notices:
    def __init__(self):
        self.posted: list[tuple[str, str]] = []

    async def __call__(self, persona, text):
        self.posted.append((persona, text))
