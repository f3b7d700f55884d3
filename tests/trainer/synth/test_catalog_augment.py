"""Persona data files, the deterministic plan, template validation, and style augmentation."""
from __future__ import annotations

import random
import re

import pytest

from bot.persona import load_persona
from bot.persona.synthetic import StyleSpec
from tests.conftest import REPO
from trainer.synth import CatalogError, load_catalog
from trainer.synth.augment import augment_text, augment_turns
from trainer.synth.parse import ASSISTANT, USER, Turn

from .conftest import persona_copy


@pytest.mark.parametrize("name", ["tim", "eve", "twin"])
def test_shipped_personas_have_usable_synthetic_data(name):
    persona = load_persona(REPO / "personas" / name)
    catalog = load_catalog(persona)
    assert catalog.topics.get("general") and catalog.topics.get("adversarial")
    for item in catalog.plan(40, seed=1):
        prompt = item.template.render(persona=persona.display_name, topic=item.topic.text, user_profile=item.profile.text,
                                      user=persona.user_label)
        assert not re.search(r"\{\w*\}", prompt) and item.topic.text in prompt and item.profile.text in prompt
        assert f"{persona.user_label}:" in prompt and f"{persona.display_name}:" in prompt


def test_tim_ships_enough_topics_and_profiles():
    catalog = load_catalog(load_persona(REPO / "personas" / "tim"))
    assert len(catalog.topics["general"]) >= 60 and len(catalog.topics["adversarial"]) >= 30
    assert {"child", "adult"} <= catalog.topics.keys()
    ids = {p.id for p in catalog.profiles}
    assert {"bored-8yo", "hungry-student", "hostile-teen", "adult-learner"} <= ids


def test_silence_template_only_where_silence_is_allowed():
    for name in ("tim", "eve", "twin"):
        persona = load_persona(REPO / "personas" / name)
        uses_silence = any("{silence}" in t.text for t in load_catalog(persona).templates)
        assert uses_silence == persona.may_stay_silent, name


def test_plan_is_deterministic_prefix_stable_and_balanced():
    catalog = load_catalog(load_persona(REPO / "personas" / "tim"))
    a, b = catalog.plan(50, seed=4), catalog.plan(120, seed=4)
    assert a == b[:50] and a == catalog.plan(50, seed=4)
    assert [i.key for i in a] != [i.key for i in catalog.plan(50, seed=5)]
    # Topics of a tag are dealt like cards: no repeat before the deck is used up.
    general = [i.topic.text for i in b if i.topic.tag == "general"]
    assert len(set(general[:65])) == min(len(general), 65)
    for item in b:
        assert item.topic.tag in item.profile.tags and item.topic.tag in item.template.tags
    only = catalog.plan(20, seed=4, tags=("adversarial",))
    assert {i.topic.tag for i in only} == {"adversarial"} and all(i.template.name == "hard_moment" for i in only)


def test_catalog_errors_name_the_file_and_problem(tmp_path):
    folder = persona_copy(tmp_path, "tim")
    (folder / "templates" / "broken.txt").write_text("Write about {topic} for {persna} and {user_profile}.\n")
    (folder / "topics.toml").write_text('general = ["a", "a"]\nspicy = ["b"]\n')
    (folder / "profiles.toml").write_text('[[profile]]\nid = "x"\ntext = "someone"\ntags = ["kids"]\n')
    with pytest.raises(CatalogError) as info:
        load_catalog(load_persona(folder))
    message = str(info.value)
    assert "broken.txt: unknown slot(s) {persna}" in message and "broken.txt: missing slot(s) {persona}" in message
    assert "topics.toml: spicy: unknown tag" in message and "duplicate topic 'a'" in message
    assert "profiles.toml: profile 1 (x): tags" in message


def test_style_augmentation_touches_user_turns_only_and_is_deterministic():
    style = StyleSpec(enabled=True, lowercase=1.0, punctuation_drop=1.0, apostrophe_drop=1.0, typo_rate=0.0)
    turns = [Turn(USER, "Hello TIM, I don't get it. Can you help?"), Turn(ASSISTANT, "Of course. Let's start, slowly.")]
    out = augment_turns(turns, style, seed=3)
    assert out[0].text == "hello tim i dont get it can you help?"
    assert out[1] == turns[1]
    assert augment_turns(turns, StyleSpec(enabled=False), seed=3) == turns


def test_typo_rate_is_respected_and_urls_numbers_survive():
    style = StyleSpec(enabled=True, lowercase=0.0, punctuation_drop=0.0, apostrophe_drop=0.0, typo_rate=0.2)
    words = ("because", "fraction", "planet", "answer", "question") * 200
    text = " ".join(words) + " see https://example.org/a.b and 3.14"
    rough = augment_text(text, style, random.Random(1))
    changed = sum(a != b for a, b in zip(text.split(), rough.split()))
    assert 0.12 * len(words) < changed < 0.28 * len(words)
    assert "https://example.org/a.b" in rough.split() and rough.endswith(" 3.14")
    assert augment_text(text, style, random.Random(1)) == rough


def test_template_opening_ends_the_prompt_and_starts_the_transcript(tmp_path):
    folder = persona_copy(tmp_path, "tim")
    for t in (folder / "templates").glob("*.txt"):
        t.unlink()
    (folder / "templates" / "open.txt").write_text(
        "# tags: general, child, adult, adversarial\nChat about {topic} with {user_profile}.\n=== opening ===\n{user}: Hi {persona}!\n{persona}:\n")
    persona = load_persona(folder)
    (template,) = load_catalog(persona).templates
    kwargs = dict(persona="TIM", topic="rain", user_profile="a child", user="User")
    assert template.render(**kwargs) == "Chat about rain with a child.\n\nUser: Hi TIM!\nTIM:"
    assert template.render_opening(**kwargs) == "User: Hi TIM!\nTIM:"
