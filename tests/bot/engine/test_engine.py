"""ChatEngine with a scripted backend: streaming, clean-up, silence, empty output, failures."""
import pytest

from bot.backends.base import BackendError
from bot.engine import ChatEngine, Turn
from bot.persona import load_persona
from tests.support.scripted_backend import ScriptedBackend


@pytest.fixture
def tim(settings):
    return load_persona(settings.core.resolved_personas_dir() / "tim")


@pytest.fixture
def twin(settings):
    return load_persona(settings.core.resolved_personas_dir() / "twin")


def engine_with(backend, **kw):
    return ChatEngine(lambda persona: backend, **kw)


HISTORY = [Turn("u1", "Sam", "What is photosynthesis?")]


async def collect(stream):
    deltas = [d async for d in stream]
    return deltas, stream.reply


async def test_streams_cleaned_deltas(tim):
    backend = ScriptedBackend()
    backend.enqueue(["TIM: ", "TIM: Plants ", "use light", " to make food.", "\nUser: cool", " thanks"])
    deltas, reply = await collect(engine_with(backend).respond(tim, HISTORY))
    assert "".join(deltas) == reply.text == "Plants use light to make food."
    assert len(deltas) >= 2                       # it streamed, not one lump
    assert reply.stopped_by and "User" in reply.stopped_by
    messages, params = backend.calls[0]
    assert messages[0] == {"role": "system", "content": tim.system_prompt}
    assert messages[-1] == {"role": "user", "content": "What is photosynthesis?"}
    assert params.max_tokens == tim.sampling.max_tokens
    assert "\nUser:" in params.stop


async def test_member_name_leak_is_cut(tim):
    backend = ScriptedBackend()
    backend.enqueue(["Good question!\nSam: and", " more"])
    _, reply = await collect(engine_with(backend).respond(tim, HISTORY))
    assert reply.text == "Good question!"


async def test_other_persona_label_is_cut(tim):
    backend = ScriptedBackend()
    backend.enqueue(["Let's try.\nEVE: I think", " that"])
    _, reply = await collect(engine_with(backend, other_persona_labels=["EVE", "TIM"]).respond(tim, HISTORY))
    assert reply.text == "Let's try."


async def test_empty_output_retried_then_fallback(tim):
    backend = ScriptedBackend()
    backend.enqueue(["   ", "\n"])
    backend.enqueue(["TIM:"])
    deltas, reply = await collect(engine_with(backend).respond(tim, HISTORY))
    assert reply.attempts == 2
    assert reply.text == tim.empty_reply == "".join(deltas)
    assert not reply.silent


async def test_empty_output_retry_succeeds(tim):
    backend = ScriptedBackend()
    backend.enqueue([" "])
    backend.enqueue(["Second try works."])
    _, reply = await collect(engine_with(backend).respond(tim, HISTORY))
    assert reply.text == "Second try works."


async def test_silence_for_personas_that_may(twin):
    backend = ScriptedBackend()
    backend.enqueue([""])
    deltas, reply = await collect(engine_with(backend).respond(twin, HISTORY))
    assert reply.silent and reply.text == "" and deltas == []
    assert len(backend.calls) == 1


async def test_backend_error_gives_apology(tim):
    backend = ScriptedBackend()
    backend.enqueue([BackendError("upstream 500")])
    deltas, reply = await collect(engine_with(backend).respond(tim, HISTORY))
    assert reply.text == tim.error_reply == "".join(deltas)
    assert reply.error and "BackendError" in reply.error


async def test_error_mid_stream_keeps_partial_then_apologises(tim):
    backend = ScriptedBackend()
    backend.enqueue(["Plants use ", "light. ", BackendError("connection reset")])
    _, reply = await collect(engine_with(backend).respond(tim, HISTORY))
    assert reply.text.startswith("Plants use light.")
    assert reply.text.endswith(tim.error_reply)


async def test_budget_is_applied(tim):
    backend = ScriptedBackend(default=["ok then"])
    history = [Turn("u1", "Sam", "word " * 400) if i % 2 == 0 else Turn("b", "TIM", "reply " * 400, True) for i in range(21)]
    stream = engine_with(backend).respond(tim, history)
    await stream.text()
    messages, _ = backend.calls[0]
    assert stream.reply.prompt_messages < len(history)
    assert sum(len(m["content"]) for m in messages) // 4 <= tim.context_budget + 50
