"""Dependencies point one way: the CLI and the serving core start without torch, trainer code or
(below the Discord layer) discord."""
import subprocess
import sys

from tests.conftest import REPO


def loaded_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print('\\n'.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True).stdout
    return {line.split(".")[0] for line in out.splitlines()} | set(out.splitlines())


def test_cli_start_imports_no_heavy_or_training_code():
    mods = loaded_after("import bot.cli.main")
    for heavy in ("torch", "transformers", "peft", "trl", "datasets", "datasketch"):
        assert heavy not in mods, f"`personabot --help` imported {heavy}"
    heavy_trainer = {m for m in mods if m.startswith("trainer.") and not m.startswith("trainer.cli")}
    assert not heavy_trainer, f"CLI start imported trainer internals: {sorted(heavy_trainer)}"


def test_core_below_discord_layer_never_imports_discord():
    mods = loaded_after("import bot.engine, bot.store.privacy, bot.store.registry, bot.backends.pool, bot.persona")
    assert "discord" not in mods
    assert "torch" not in mods
    assert not any(m == "trainer" or m.startswith("trainer.") for m in mods)


def test_curation_core_is_discord_and_torch_free():
    mods = loaded_after("import bot.store.curation, bot.curation.access, bot.curation.render, bot.curation.rules, "
                        "bot.curation.transfer, bot.engine.checks")
    assert "discord" not in mods and "torch" not in mods
    assert not any(m == "trainer" or m.startswith("trainer.") for m in mods)
