"""Terminal chat loop: streaming, /persona, /reset, /quit, piped input."""
import io

from bot.backends.pool import BackendPool
from bot.cli.chat import chat_loop
from tests.support.scripted_backend import ScriptedBackend


async def run(settings, lines, backend):
    pool = BackendPool(settings)
    for name in ("tim", "eve", "twin"):
        pool.pin(name, backend)
    out = io.StringIO()
    code = await chat_loop(settings, "tim", stdin=io.StringIO("".join(l + "\n" for l in lines)), stdout=out, pool=pool)
    return code, out.getvalue()


async def test_piped_chat_prints_reply_and_exits(settings):
    backend = ScriptedBackend()
    backend.enqueue(["TIM: ", "Hello ", "learner!"])
    code, out = await run(settings, ["hello", "/quit", "never sent"], backend)
    assert code == 0
    assert out == "TIM> Hello learner!\n"
    assert len(backend.calls) == 1


async def test_history_reset_and_persona_switch(settings):
    backend = ScriptedBackend(default=["ok"])
    code, out = await run(settings, ["one", "two", "/reset", "three", "/persona eve", "four", "/persona nobody"], backend)
    assert code == 0
    sent = [[m["content"] for m in msgs if m["role"] == "user"] for msgs, _ in backend.calls]
    assert sent[1] == ["one", "two"] or sent[1] == ["one\ntwo"] or sent[1][-1] == "two"
    assert sent[2] == ["three"]                      # /reset cleared history
    assert backend.calls[3][0][0]["content"].startswith("You are EVE")
    assert "EVE> ok" in out and "unknown persona 'nobody'" in out


async def test_unknown_persona_exit_code(settings):
    out = io.StringIO()
    code = await chat_loop(settings, "nobody", stdin=io.StringIO(""), stdout=out, pool=BackendPool(settings))
    assert code == 1


async def test_a_card_s_greeting_opens_the_chat_and_is_in_the_model_s_context(settings):
    from bot.persona.card_files import import_card
    from tests.support.tavern_cards import png_card, v2_card

    core = settings.core
    import_card(png_card({"chara": v2_card()}), "mara.png", dirs=core.persona_dirs(), dest_root=core.member_personas_dir,
                name="mara")
    backend = ScriptedBackend(default=["Aye."])
    pool = BackendPool(settings)
    pool.pin("mara", backend)
    pool.pin("tim", backend)
    out = io.StringIO()
    code = await chat_loop(settings, "mara", stdin=io.StringIO("Evening!\n/reset\n/persona tim\nhi\n"), stdout=out, pool=pool)
    assert code == 0
    first = backend.calls[0][0]
    greeting = "*Captain Mara looks up from the bar.* Evening, User. Shut that door, the wind bites."
    lines = out.getvalue().splitlines()
    assert lines[0] == f"Captain Mara> {greeting}" and lines[1] == "Captain Mara> Aye."
    assert lines[2] == "(conversation reset)" and lines[3] == f"Captain Mara> {greeting}"   # /reset greets again
    assert "TIM> Aye." in lines and sum(l.startswith("TIM> ") for l in lines) == 1       # TIM has no greeting
    first = backend.calls[0][0]
    assert [m["role"] for m in first] == ["system", "user", "assistant", "user"]
    assert "Shut that door" in first[2]["content"] and first[3]["content"] == "Evening!"
