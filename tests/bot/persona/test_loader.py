"""Persona specs: the shipped ones validate; bad ones fail naming file, field and expectation."""
from pathlib import Path

import pytest

from bot.persona import PersonaError, load_persona, load_personas
from tests.conftest import REPO


def write(tmp_path: Path, name: str, text: str) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "persona.toml").write_text(text, encoding="utf-8")
    return folder


MINIMAL = 'display_name = "Zed"\nsystem_prompt = "You are Zed."\n'


def test_shipped_personas_are_valid():
    specs = load_personas(REPO / "personas")
    assert {"tim", "eve", "twin"} <= set(specs)
    assert specs["tim"].display_name == "TIM" and "tutor" in specs["tim"].system_prompt.lower()
    assert specs["twin"].may_stay_silent
    for spec in specs.values():
        assert spec.folder is not None and spec.context_budget >= 64


def test_minimal_spec_gets_documented_defaults(tmp_path):
    spec = load_persona(write(tmp_path, "zed", MINIMAL))
    assert spec.name == "zed" and spec.model.backend == "local" and spec.sampling.max_tokens == 256
    assert (spec.gate.samples, spec.gate.judge, spec.gate.min_win_rate, spec.gate.promote) == (24, "none", 0.5, "auto")


@pytest.mark.parametrize("text,expected", [
    (MINIMAL + "temprature = 0.5\n", "persona.toml: temprature: unknown key"),
    (MINIMAL + "[sampling]\ntemperature = 5\n", "sampling.temperature: Input should be less than or equal to 2"),
    (MINIMAL + "[model]\nbackend = \"gemini\"\n", "model.backend: Input should be 'local', 'openai' or 'vllm'"),
    ('display_name = "Zed"\n', "system_prompt: required but missing"),
    (MINIMAL + "[sampling]\nstop = \"###\"\n", "sampling.stop: Input should be a valid list"),
    ("display_name = \n", "not valid TOML"),
    (MINIMAL + "[gate]\njudge = \"gpt4\"\n", 'gate.judge: Value error, expected "openai:MODEL", "vllm:MODEL", "local"'),
    (MINIMAL + "[gate]\npromote = \"always\"\n", "gate.promote: Input should be 'auto', 'judge' or 'review'"),
    (MINIMAL + "[gate]\nmin_win_rate = 1.5\n", "gate.min_win_rate: Input should be less than or equal to 1"),
    (MINIMAL + "[training]\nrank = 0\n", "training.rank: Input should be greater than or equal to 1"),
])
def test_errors_name_file_field_and_expectation(tmp_path, text, expected):
    folder = write(tmp_path, "zed", text)
    with pytest.raises(PersonaError) as err:
        load_persona(folder)
    message = str(err.value)
    assert str(folder / "persona.toml") in message
    assert expected in message


def test_name_must_match_folder(tmp_path):
    with pytest.raises(PersonaError, match="must match the folder name 'zed'"):
        load_persona(write(tmp_path, "zed", 'name = "tim"\n' + MINIMAL))


def test_all_problems_reported_together(tmp_path):
    write(tmp_path, "a", MINIMAL + "bogus = 1\n")
    write(tmp_path, "b", MINIMAL + "[sampling]\ntop_p = 0\n")
    write(tmp_path, "c", MINIMAL)
    with pytest.raises(PersonaError) as err:
        load_personas(tmp_path)
    assert "a/persona.toml: bogus" in str(err.value) and "b/persona.toml: sampling.top_p" in str(err.value)


def test_member_personas_are_found_beside_shipped_ones_and_never_shadow_them(tmp_path):
    from bot.persona import find_persona_folder, persona_folders

    shipped, member = tmp_path / "shipped", tmp_path / "member"
    shipped.mkdir(), member.mkdir()
    write(shipped, "tim", 'display_name = "TIM"\nsystem_prompt = "You are TIM."\n')
    write(member, "tim", 'display_name = "Impostor"\nsystem_prompt = "You are someone else."\n')
    write(member, "sam", 'display_name = "Sam"\nsystem_prompt = "You are Sam."\n')
    folders = persona_folders([shipped, member, tmp_path / "absent"])
    assert list(folders) == ["sam", "tim"]
    assert folders["tim"] == shipped / "tim" and folders["sam"] == member / "sam"
    assert load_personas([shipped, member])["tim"].display_name == "TIM"
    assert find_persona_folder([shipped, member], "nobody") is None


def test_settings_look_in_the_data_directory_for_member_personas(settings):
    assert settings.core.persona_dirs() == [settings.core.resolved_personas_dir(), settings.core.data_dir / "personas"]
    folder = settings.core.member_personas_dir / "sam"
    folder.mkdir(parents=True)
    (folder / "persona.toml").write_text('display_name = "Sam"\nsystem_prompt = "You are Sam."\n', encoding="utf-8")
    assert {"tim", "sam"} <= set(load_personas(settings.core.persona_dirs()))
