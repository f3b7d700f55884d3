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
