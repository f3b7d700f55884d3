"""Probes seeded from a card's example dialogues run with the prompt serving builds: the card's
lorebook, {{user}} and post-history instructions included."""
import json

from bot.persona.card_files import import_card
from trainer.evaluate.probes import load_probes, run_probe
from tests.support.scripted_backend import ScriptedBackend
from tests.support.tavern_cards import v2_card


async def test_card_probes_see_the_serving_prompt(settings):
    card = v2_card(mes_example="<START>\n{{user}}: What of the lighthouse?\n{{char}}: Dark, since the storm.",
                   post_history_instructions="Answer {{user}} in one sentence.")
    core = settings.core
    spec = import_card(json.dumps(card).encode(), "m.json", dirs=core.persona_dirs(), dest_root=core.member_personas_dir).spec
    suite = load_probes(spec)
    backend = ScriptedBackend(default=["Dark since the storm, friend."])
    result = await run_probe(backend, spec, suite.probe[0], suite.defaults)
    assert result.passed, result.failures
    messages, _ = backend.calls[0]
    assert "The lighthouse has been dark since the storm of '09." in messages[0]["content"]
    assert "with User." in messages[0]["content"], "{{user}} is the probe's member label"
    assert messages[-1] == {"role": "system", "content": "Answer User in one sentence."}
    assert messages[1] == {"role": "user", "content": "What of the lighthouse?"}
