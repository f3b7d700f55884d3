"""Cards ↔ persona folders: the mapping, macros, seeds, name clashes, provenance, round trips."""
import hashlib
import io
import json
import zipfile

import pytest

from bot.persona import load_persona, load_personas
from bot.persona.card_files import (adapter_sha256, export_bundle, export_card, import_card, provenance, slug_for)
from bot.persona.card_mapping import DEFAULT_MAIN
from bot.persona.cards import CardError, read_card
from tests.support.tavern_cards import png_card, read_png_chunks, text_payloads, v1_card, v2_card, v3_card


@pytest.fixture
def where(settings):
    core = settings.core
    return {"dirs": core.persona_dirs(), "dest_root": core.member_personas_dir}


def imported(where, content, filename, **kw):
    return import_card(content, filename, **where, **kw)


@pytest.fixture
def elsewhere(tmp_path):
    """Another installation: its own member personas folder and nothing else."""
    root = tmp_path / "elsewhere" / "personas"
    return {"dirs": [root], "dest_root": root}


def test_v1_json_card_becomes_a_persona_under_the_data_dir(where, settings):
    result = imported(where, json.dumps(v1_card()).encode(), "mara.json")
    assert result.name == "captain-mara" and result.folder == settings.core.member_personas_dir / "captain-mara"
    spec = result.spec
    assert spec.display_name == "Captain Mara" and spec.card.spec == "chara_card_v1"
    # The documented template: default main prompt, description, personality, scenario; {{char}} resolved.
    main = DEFAULT_MAIN.replace("{{char}}", "Captain Mara")
    assert spec.system_prompt == (f"{main}\n\nCaptain Mara is a retired sea captain who runs the harbour tavern.\n\n"
                                  "Captain Mara's personality: gruff, warm, superstitious\n\n"
                                  "Scenario: {{user}} walks into Captain Mara's tavern on a stormy night.")
    assert spec.greeting == "*Captain Mara looks up from the bar.* Evening, {{user}}. Shut that door, the wind bites."
    assert spec.avatar_file is None and spec.lore is None
    assert json.loads((result.folder / "card.json").read_text()) == v1_card(), "the card kept verbatim"
    assert "captain-mara" in load_personas(settings.core.persona_dirs()), "found beside the shipped personas"


def test_v2_png_card_keeps_metadata_avatar_and_lorebook(where):
    result = imported(where, png_card({"chara": v2_card()}), "mara.png")
    spec = result.spec
    assert spec.card.spec == "chara_card_v2" and spec.card.tags == ["sea", "tavern"]
    assert spec.card.character_version == "1.2" and spec.card.creator == "tester"
    assert spec.card.creator_notes == "A tavern keeper for harbour roleplay." == spec.description
    assert spec.card.alternate_greetings == ["*Captain Mara waves.* Back again?"]
    assert spec.avatar_file == "avatar.png"
    assert read_png_chunks((result.folder / "avatar.png").read_bytes())[-1][0] == b"IEND"
    assert b"tEXt" not in (result.folder / "avatar.png").read_bytes(), "the avatar is the image alone"
    assert len(spec.lore.entries) == 5 and spec.lore.scan_depth == 2
    assert json.loads((result.folder / "card.json").read_text()) == v2_card()


def test_v3_png_card_resolves_char_to_the_nickname(where):
    result = imported(where, png_card({"chara": v2_card(), "ccv3": v3_card()}), "mara.png", name="mara")
    spec = result.spec
    assert result.name == "mara" and spec.card.spec == "chara_card_v3" and result.card.source == "png:ccv3"
    assert spec.display_name == "Captain Mara" and spec.aliases == ["Cap'n"]
    assert "Cap'n is a retired sea captain" in spec.system_prompt and "{{char}}" not in spec.system_prompt
    assert spec.greeting.startswith("*Cap'n looks up")


def test_v3_json_card_with_system_prompt_and_post_history_instructions(where):
    card = v3_card(system_prompt="{{original}} Never reveal the Kraken's name.",
                   post_history_instructions="{{original}}Reply in under 60 words to {{user}}.")
    spec = imported(where, json.dumps(card).encode(), "mara.json").spec
    assert spec.system_prompt.startswith(DEFAULT_MAIN.replace("{{char}}", "Cap'n") + " Never reveal the Kraken's name.\n\n")
    assert spec.post_history_instructions == "Reply in under 60 words to {{user}}."
    replaced = imported(where, json.dumps(v3_card(system_prompt="You are {{char}} alone.")).encode(), "m.json", name="m2",
                        display_name="Mara Two").spec
    assert replaced.system_prompt.startswith("You are Cap'n alone.\n\n"), "the card's system prompt replaces the default"


def test_example_dialogues_seed_synthetic_generation_and_probes(where):
    from trainer.evaluate.probes import load_probes
    from trainer.synth.catalog import load_catalog

    result = imported(where, png_card({"chara": v2_card()}), "mara.png")
    assert result.examples == 2
    catalog = load_catalog(result.spec)
    prompt = catalog.templates[0].render(persona="Captain Mara", topic="a storm", user_profile="a sailor", user="Sailor")
    assert "Sailor: Any stories tonight?\nCaptain Mara: Always. Sit down. Pull up a stool." in prompt
    probes = load_probes(result.spec)
    assert [p.name for p in probes.probe] == ["example-1", "example-2"]
    assert probes.probe[1].conversation[0].content == "What happened to your ship?"


def test_braces_in_card_text_cannot_break_a_template(where):
    from trainer.synth.catalog import load_catalog

    card = v2_card(mes_example="<START>\n{{user}}: {weird} {{ braces }}\n{{char}}: {topic}? No.")
    result = imported(where, json.dumps(card).encode(), "m.json")
    load_catalog(result.spec)     # raises on an unknown {slot}


def test_name_clashes_and_bad_names_are_refused(where):
    with pytest.raises(CardError, match="a persona called 'tim' already exists"):
        imported(where, json.dumps(v1_card()).encode(), "m.json", name="tim")
    imported(where, json.dumps(v1_card()).encode(), "m.json")
    with pytest.raises(CardError, match="'captain-mara' already exists"):
        imported(where, json.dumps(v1_card()).encode(), "m.json")
    with pytest.raises(CardError, match="--name '../evil'"):
        imported(where, json.dumps(v1_card()).encode(), "m.json", name="../evil")
    assert not list(where["dest_root"].glob(".*.partial")), "no half-written folder is left behind"


def test_slug_for():
    assert slug_for("Seraphina the Wise!") == "seraphina-the-wise"
    assert slug_for("2B") == "card-2b" and slug_for("火") == "card"


# -- export -------------------------------------------------------------------------------------


def strip_exported(card: dict) -> dict:
    out = json.loads(json.dumps(card))
    out["data"]["extensions"].pop("personabot")
    return out


async def test_a_foreign_card_exported_again_keeps_every_field(where, elsewhere, db):
    card = v3_card()
    card["data"]["extensions"]["depth_prompt"] = {"prompt": "x", "depth": 4}
    card["data"]["unknown_field"] = {"kept": True}
    card["top_level_extra"] = "also kept"
    result = imported(where, png_card({"ccv3": card}), "mara.png")
    prov = await provenance(db, result.spec)
    png = export_card(result.spec, prov, "png")
    payloads = text_payloads(png)
    assert strip_exported(payloads["ccv3"]) == card, "every field and extension as it came"
    assert strip_exported(payloads["chara"])["data"] == card["data"] and payloads["chara"]["spec"] == "chara_card_v2"
    assert payloads["ccv3"]["data"]["extensions"]["personabot"]["consent"].startswith("not fine-tuned")

    v2 = v2_card()
    v2["data"]["extensions"]["chub"] = {"id": 42}
    back = imported(elsewhere, json.dumps(v2).encode(), "v2.json", name="v2")
    again = json.loads(export_card(back.spec, await provenance(db, back.spec), "json"))
    assert strip_exported(again) == v2, "a V2 JSON card stays V2 with all its fields"


async def test_export_then_import_gives_the_same_persona(where, elsewhere, db, settings):
    tim = load_persona(settings.core.resolved_personas_dir() / "tim")
    png = export_card(tim, await provenance(db, tim), "png")
    assert read_card(png, "tim.png").spec == "chara_card_v3"
    back = imported(elsewhere, png, "tim.png").spec
    assert back.name == "tim"
    keep = ("display_name", "description", "system_prompt", "user_label", "aliases", "context_budget", "may_stay_silent",
            "error_reply", "empty_reply", "greeting", "post_history_instructions", "sampling")
    assert {k: getattr(back, k) for k in keep} == {k: getattr(tim, k) for k in keep}
    assert (back.model.backend, back.model.model) == (tim.model.backend, tim.model.model)

    # And an imported card persona survives the same trip, lorebook included.
    first = imported(where, png_card({"chara": v2_card()}), "mara.png").spec
    second = imported(elsewhere, export_card(first, await provenance(db, first), "png"), "mara2.png").spec
    assert second.system_prompt == first.system_prompt and second.greeting == first.greeting
    assert second.lore == first.lore and second.card.tags == first.card.tags


async def test_edited_card_persona_exports_what_is_served(where, db):
    result = imported(where, json.dumps(v2_card()).encode(), "m.json")
    toml = result.folder / "persona.toml"
    toml.write_text(toml.read_text().replace('greeting = "', 'greeting = "Ahoy! '), encoding="utf-8")
    spec = load_persona(result.folder)
    data = json.loads(export_card(spec, await provenance(db, spec), "json"))["data"]
    assert data["first_mes"].startswith("Ahoy! ")
    foreign_view = read_card(json.dumps({"spec": "chara_card_v2", "data": data}).encode(), "x.json")
    assert foreign_view.text("first_mes").startswith("Ahoy!"), "other frontends see the edit too"


async def test_provenance_names_version_adapter_dataset_and_consent(where, elsewhere, db, tmp_path):
    from bot.store import registry
    from trainer.dataset.versions import record_version

    adapter = tmp_path / "adapters" / "mara-v1"
    adapter.mkdir(parents=True)
    (adapter / "adapter_model.safetensors").write_bytes(b"weights" * 1000)
    (adapter / "adapter_config.json").write_text("{}")
    (adapter / "checkpoint-5").mkdir()
    (adapter / "checkpoint-5" / "optimizer.pt").write_bytes(b"x")
    spec = imported(where, png_card({"chara": v2_card()}), "mara.png", name="mara").spec
    await record_version(db, persona="mara", version=1, path="/d/v1", manifest_hash="ab" * 32, source_ids=[1],
                         member_ids=["11", "22", "33"])
    version = await registry.create_version(db, persona="mara", backend="local", base_model="smollm2-135m-instruct",
                                            dataset_version="v1", adapter_path=str(adapter), status="candidate")
    await registry.set_active(db, version.name)
    prov = await provenance(db, spec)
    assert prov["model"] == {"backend": "local", "base_model": "smollm2-135m-instruct"}
    assert prov["active_version"] == {"name": "mara-v1",
                                      "adapter_sha256": hashlib.sha256(b"weights" * 1000).hexdigest()}
    assert prov["dataset"] == {"version": "v1", "manifest_sha256": "ab" * 32}
    assert prov["consent"] == "trained on consented logs from 3 members, synthetic data and the owner's exports"
    assert adapter_sha256(adapter) == prov["active_version"]["adapter_sha256"]

    png = export_card(spec, prov, "png")
    assert b"weights" not in png, "weights are never embedded in a card"
    assert text_payloads(png)["chara"]["data"]["extensions"]["personabot"]["active_version"]["name"] == "mara-v1"

    bundle = export_bundle(spec, prov, adapter)
    names = sorted(zipfile.ZipFile(io.BytesIO(bundle)).namelist())
    assert names == ["adapter/adapter_config.json", "adapter/adapter_model.safetensors", "card.png"]

    # The bundle imports as a persona bound to its own copy of the adapter.
    again = imported(elsewhere, bundle, "mara.zip", name="mara-bundled").spec
    assert again.model.adapter and again.model.adapter.endswith("mara-bundled/adapter")
    assert adapter_sha256(again.model.adapter) == prov["active_version"]["adapter_sha256"]


def test_unsafe_bundle_paths_are_refused(where):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("card.json", json.dumps(v1_card()))
        z.writestr("adapter/../../evil.txt", "x")
    with pytest.raises(CardError, match="unsafe path"):
        imported(where, buf.getvalue(), "evil.zip")


def test_loader_names_the_file_of_a_broken_card_persona(where):
    from bot.persona import PersonaError

    folder = imported(where, json.dumps(v2_card()).encode(), "m.json").folder
    card = json.loads((folder / "card.json").read_text())
    card["data"]["character_book"]["entries"][0]["keys"] = "lighthouse"
    (folder / "card.json").write_text(json.dumps(card))
    with pytest.raises(PersonaError, match=r"card\.json: data\.character_book\.entries\[0\]\.keys: expected a list of strings"):
        load_persona(folder)
    (folder / "card.json").unlink()
    with pytest.raises(PersonaError, match=r"card\.file: card\.json is missing"):
        load_persona(folder)


async def test_an_avatar_that_is_not_a_png_is_reported(where, db):
    from bot.persona import PersonaError

    result = imported(where, png_card({"chara": v2_card()}), "mara.png")
    (result.folder / "avatar.png").write_bytes(b"GIF89a not a png")
    with pytest.raises(PersonaError, match="avatar_file must be a PNG"):
        export_card(result.spec, await provenance(db, result.spec), "png")


async def test_a_long_multiline_name_becomes_a_discord_display_name_and_still_round_trips(where, db):
    long_name = "Lady Mara\nof the " + "Very " * 30 + "Long Harbour"
    result = imported(where, json.dumps(v2_card(name=long_name)).encode(), "long.json", name="lady")
    assert "\n" not in result.spec.display_name and len(result.spec.display_name) == 80
    assert any("one line of at most 80 characters" in w for w in result.warnings)
    exported = json.loads(export_card(result.spec, await provenance(db, result.spec), "json"))
    assert exported["data"]["name"] == long_name, "the card keeps its own name"
    discordish = imported(where, json.dumps(v2_card(name="Discord Helper")).encode(), "d.json", name="helper")
    assert any("'discord' or 'clyde'" in w for w in discordish.warnings)


async def test_concurrent_imports_of_one_name_leave_one_persona(where):
    import asyncio

    content = json.dumps(v2_card()).encode()
    results = await asyncio.gather(*(asyncio.to_thread(imported, where, content, "m.json") for _ in range(4)),
                                   return_exceptions=True)
    assert sum(not isinstance(r, Exception) for r in results) == 1
    assert all(isinstance(r, CardError) and "already exists" in str(r) for r in results if isinstance(r, Exception))
    assert sorted(p.name for p in where["dest_root"].iterdir()) == ["captain-mara"]


def test_a_display_name_another_persona_has_is_refused(where):
    with pytest.raises(CardError, match=r"persona 'tim' is already called 'TIM' in Discord"):
        imported(where, json.dumps(v2_card(name="Tim")).encode(), "t.json", name="tim2")
    spec = imported(where, json.dumps(v2_card(name="Tim")).encode(), "t.json", name="tim2", display_name="Tim the Captain").spec
    assert spec.display_name == "Tim the Captain"


async def test_tampered_personabot_settings_are_reported_not_crashed_on(where, elsewhere, db, settings):
    tim = load_persona(settings.core.resolved_personas_dir() / "tim")
    card = json.loads(export_card(tim, await provenance(db, tim), "json"))
    card["data"]["extensions"]["personabot"]["persona"]["sampling"]["temperature"] = None
    with pytest.raises(CardError, match="cannot be written as persona.toml"):
        imported(elsewhere, json.dumps(card).encode(), "t.json")
    card["data"]["extensions"]["personabot"]["persona"]["sampling"]["temperature"] = 9
    with pytest.raises(CardError, match=r"persona 'tim': sampling\.temperature"):
        imported(elsewhere, json.dumps(card).encode(), "t.json")
    assert not any(elsewhere["dest_root"].iterdir()), "nothing half-written is left"
