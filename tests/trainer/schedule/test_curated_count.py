"""The scheduler's `min_new_examples` counts approved items since the last run, within the persona's
guild scope: another guild's approvals never trigger (or train) this guild's persona."""
from bot.store import channels, consent, curation, exchanges
from tests.trainer.schedule.conftest import FakeTrainer, Notices, stand_in_steps
from trainer.schedule.daemon import TrainerDaemon


async def approve(db, user, text, guild):
    logged = await exchanges.log_exchange(db, persona="tim", conversation_key=f"discord:{guild}-{text[:12]}", user_id=user,
                                          user_content=text, reply_content=f"A helpful answer about {text}", guild_id=guild)
    assert await curation.curate(db, logged.reply_message_id, status="approved", curator="cli:test")


async def test_min_new_examples_counts_this_guilds_approvals_only(db, settings, personas):
    await consent.set_consent(db, "u1", True, "1")
    await channels.bind_channel(db, "100", "tim", guild_id="home")
    for i in range(4):                         # min_new_examples is 4 in these tests
        await approve(db, "u1", f"question {i} from another server about planets", "elsewhere")
    await approve(db, "u1", "a question from home about fractions and halves", "home")
    trainer = FakeTrainer(settings)
    daemon = TrainerDaemon(db, settings, personas, steps=stand_in_steps(settings, trainer), notifier=Notices())
    skipped = await daemon.run_now("tim", "schedule")
    assert skipped.status == "skipped" and skipped.new_examples == 1
    for i in range(3):
        await approve(db, "u1", f"home question number {i} about long division", "home")
    ran = await daemon.run_now("tim", "schedule")
    assert ran.status == "promoted" and ran.new_examples == 4
    trained = "".join(trainer.trained_on.values())
    assert "fractions and halves" in trained and "another server" not in trained
