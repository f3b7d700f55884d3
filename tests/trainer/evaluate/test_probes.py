"""Probe files and the checks each probe runs."""
import pytest

from bot.persona import load_personas
from tests.support.scripted_backend import ScriptedBackend
from trainer.evaluate import ProbeFileError, load_probes, run_probe
from trainer.evaluate.probes import Probe, ProbeDefaults, leaked_label, parse_probes


@pytest.fixture
def personas(settings):
    return load_personas(settings.core.resolved_personas_dir())


def test_shipped_probe_files_are_valid(personas):
    for name in ("tim", "eve", "twin"):
        suite = load_probes(personas[name])
        assert len(suite.probe) >= 3, name
    twin = load_probes(personas["twin"])
    assert any(p.expect_silence for p in twin.probe)


def test_errors_name_the_file_and_probe():
    text = """
[[probe]]
name = "ok"
prompt = "hi"

[[probe]]
name = "broken"
prompt = "hi"
must_match = ["(unclosed"]
speling = 1
"""
    with pytest.raises(ProbeFileError) as err:
        parse_probes(text, "personas/tim/probes.toml")
    message = str(err.value)
    assert "personas/tim/probes.toml: probe[1] (broken).must_match" in message and "regular expression" in message
    assert "probe[1] (broken).speling: unknown key" in message
    with pytest.raises(ProbeFileError, match="exactly one of `prompt` or `conversation`"):
        parse_probes('[[probe]]\nname = "x"\n')
    with pytest.raises(ProbeFileError, match="must end with a user turn"):
        parse_probes('[[probe]]\nname = "x"\nconversation = [{role = "assistant", content = "hi"}]\n')
    with pytest.raises(ProbeFileError, match="repeated: x"):
        parse_probes('[[probe]]\nname = "x"\nprompt = "a"\n[[probe]]\nname = "x"\nprompt = "b"\n')


def test_leaked_labels(personas):
    tim = personas["tim"]
    assert leaked_label("TIM: TIM: Hello", tim) == "TIM:"
    assert leaked_label("Hello!\nUser: thanks", tim) == "User:"
    assert leaked_label("**Tim:** hi", tim) == "Tim:"
    assert leaked_label("Step 1: find the common denominator.\nNote: it is 12.", tim) is None


async def run(persona, reply, **probe):
    backend = ScriptedBackend("m")
    backend.enqueue(reply)
    probe.setdefault("name", "p")
    probe.setdefault("prompt", "hi")
    return await run_probe(backend, persona, Probe(**probe), ProbeDefaults())


async def test_checks(personas):
    tim, twin = personas["tim"], personas["twin"]
    ok = await run(tim, ["A fraction is a part ", "of a whole."], must_contain=["WHOLE"], must_contain_any=["part", "x"],
                   must_not_contain=["stupid"], must_match=[r"\bfraction\b"], must_not_match=[r"\d+ ?mg"])
    assert ok.passed and ok.reply == "A fraction is a part of a whole." and ok.finish == "stop"

    bad = await run(tim, "You are stupid", must_contain=["whole"], must_contain_any=["part"],
                    must_not_contain=["stupid"], must_match=["fraction"], must_not_match=["stupid"])
    assert [f.split(":")[0] for f in bad.failures] == ["must_contain", "must_contain_any", "must_not_contain",
                                                       "must_match", "must_not_match"]

    rambling = await run(tim, "word " * 50, max_tokens=20)
    assert rambling.finish == "length" and rambling.failures[0].startswith("terminates: the reply ran into max_tokens (20)")

    # The member sees a cleaned reply, but the leak in the raw output still fails the probe.
    leaky = await run(tim, "TIM: Hello!\nUser: bye")
    assert leaky.reply == "Hello!" and leaky.failures == ["no_label_leakage: the raw output contains the speaker label 'TIM:'"]

    assert (await run(tim, [])).failures == ["expect_silence: the reply is empty"]
    assert (await run(twin, [])).passed                              # a twin may stay silent
    assert (await run(twin, [], expect_silence=False)).failures == ["expect_silence: the reply is empty"]
    assert (await run(twin, [], expect_silence=True)).passed
    assert (await run(twin, "haha", expect_silence=True)).failures == [
        "expect_silence: the persona should have stayed silent but replied"]


async def test_backend_failure_is_a_failed_probe(personas):
    from bot.backends.base import BackendError

    result = await run(personas["tim"], BackendError("boom"))
    assert not result.passed and result.finish == "error" and "generation failed: BackendError: boom" in result.failures[0]


async def test_probe_prompt_matches_serving(personas):
    tim = personas["tim"]
    backend = ScriptedBackend("m", default=["Hi!"])
    conversation = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"}]
    await run_probe(backend, tim, Probe(name="c", conversation=conversation))
    messages, params = backend.calls[0]
    assert messages == [{"role": "system", "content": tim.system_prompt}, *conversation]
    assert params.temperature == 0.0 and params.max_tokens == tim.sampling.max_tokens
    assert "\nUser:" not in params.stop  # the member's label is not a stop: leaks must show
