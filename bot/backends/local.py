"""`LocalBackend`: a transformers causal LM (plus optional peft LoRA adapters) run in-process.

Contract (see `bot.backends.base`):

- The prompt is the tokenizer's own chat template with `add_generation_prompt=True`, the same
  template training uses, so serving and training format conversations identically.
  `count_tokens` renders exactly that prompt and counts it with the real tokenizer.
- `stream()` runs `model.generate` in a worker thread and yields text deltas through an asyncio
  queue (a `TextIteratorStreamer` whose chunks are handed to the event loop with
  `call_soon_threadsafe`), so the event loop never waits on the model.
- Generation ends at EOS (the tokenizer's, plus `<|im_end|>` when the vocabulary has it), at
  `max_tokens`, at a stop string, or when the consumer stops iterating. Stop strings are given to
  transformers (`StopStringCriteria`, cached per stop set, so the model stops spending time) and also checked on the decoded
  text here: the reply is cut before the stop string, and text that might be the start of a stop
  string is held back until it is known not to be.
- Serialization: there is one model and, usually, one CPU, so generations run one at a time under
  `self._lock` (a `threading.Lock` taken by the worker thread for the whole `generate` call).
  Further `stream()` calls wait their turn without blocking the event loop. Adapter changes take
  the same lock, so they happen between generations, never in the middle of one.
- Cancellation: when the consumer leaves the `async for` (break, `aclose()`, task cancellation),
  a flag checked by a `StoppingCriteria` after every token stops the worker thread, and a thread
  still waiting for the lock skips its generation.
- `temperature == 0` means greedy decoding; otherwise sampling with `temperature` and `top_p`.
  `seed` seeds torch's global RNG inside the lock, which is safe because generations are serialized.
- Adapters (peft LoRA): `load_adapter`, `set_adapter` (name or `None` for the base model),
  `unload_adapter`. These are blocking calls (disk I/O, waiting for a running generation); from
  async code call them through `asyncio.to_thread`. `model_name` is `<base>` or `<base>+<adapter>`.

Torch, transformers and peft are imported inside methods only: importing this module is cheap,
so a bot serving through OpenAI or vLLM never loads them.
"""
from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, AsyncIterator

from bot.backends.base import Backend, BackendError, BackendNotFoundError, GenerationParams
from bot.backends.stops import held_back

if TYPE_CHECKING:  # pragma: no cover
    from bot.persona.spec import ModelSpec
    from bot.settings import Settings

log = logging.getLogger(__name__)

_WORKER_NAME = "personabot-local-generate"


@dataclass(frozen=True)
class GenerationStats:
    """What the last finished generation did (for logs, /admin status and benchmarks)."""

    model_name: str
    prompt_tokens: int
    new_tokens: int
    seconds: float
    finish_reason: str  # "stop" (EOS or stop string), "length" (max_tokens) or "cancelled"

    @property
    def tokens_per_s(self) -> float:
        return self.new_tokens / self.seconds if self.seconds > 0 else 0.0


class _Job:
    """One generation's shared state between the consumer (event loop) and its worker thread."""

    def __init__(self) -> None:
        self.cancel = threading.Event()  # checked after every token by a StoppingCriteria
        self.stop_string_hit = False  # the consumer saw a stop string (so "stop", not "cancelled")


class _Done:
    """End-of-stream marker put on the queue by the worker thread, carrying its error if any."""

    def __init__(self, error: BaseException | None = None):
        self.error = error


class LocalBackend(Backend):
    kind = "local (transformers)"

    def __init__(self, model: Any, tokenizer: Any, *, base_name: str):
        """Wrap an already loaded model and tokenizer; most callers want `load()` or `from_spec()`."""
        self._model = model
        self._tokenizer = tokenizer
        self._base_name = base_name
        self._lock = threading.Lock()
        self._adapters: dict[str, str] = {}  # name -> folder it was loaded from
        self._active: str | None = None
        # Running/waiting worker threads and their cancel flags, so aclose() can stop and join them.
        self._workers: dict[threading.Thread, threading.Event] = {}
        self._closed = False
        self._stop_cache: dict[tuple[str, ...], Any] = {}  # stop strings -> StopStringCriteria
        self._eos_ids = self._find_eos_ids(tokenizer, model)
        #: Statistics of the most recent finished generation, or None before the first one.
        self.last_stats: GenerationStats | None = None

    # -- construction ---------------------------------------------------------------------------

    @classmethod
    def load(cls, folder: str | Path, *, device: str = "auto", dtype: str = "auto", name: str | None = None) -> "LocalBackend":
        """Load a transformers model folder.

        `device`: "auto" (cuda when available, else cpu), "cpu" or "cuda[:n]".
        `dtype`: "auto" is float32 on CPU and bfloat16 on GPU. On the 2-core AMD EPYC CPUs here
        (AVX2, no AVX-512-BF16/AMX) SmolLM2-135M streamed about 2x faster in float32 than in bf16
        with a realistic 66-token prompt (bench/RESULTS.md): without native bf16 instructions
        torch converts on the fly, which costs more than bf16's halved memory traffic saves
        (bf16 was ~10% faster only with a 30-token prompt on a quiet machine). GPUs run bf16 natively. "float32", "bfloat16"
        or "float16" force a dtype.
        """
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        folder = Path(folder)
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if dtype == "auto":
            dtype = "float32" if device.startswith("cpu") else "bfloat16"
        torch_dtype = getattr(torch, dtype)
        # The per-tensor "Loading weights" bar is noise in the bot's log; our own display covers it.
        hf_logging.disable_progress_bar()
        try:
            tokenizer = AutoTokenizer.from_pretrained(folder)
            model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch_dtype)
        except OSError as exc:
            raise BackendNotFoundError(f"cannot load a model from {folder}: {exc}") from exc
        model.to(device)
        model.eval()
        if tokenizer.chat_template is None:
            raise BackendError(f"the tokenizer in {folder} has no chat template; the local backend needs one")
        return cls(model, tokenizer, base_name=name or folder.name)

    @classmethod
    def from_spec(cls, model_spec: "ModelSpec", settings: "Settings") -> "LocalBackend":
        """Build the backend a persona's `[model]` section asks for, fetching/converting the model once.

        The spec's `adapter` (a LoRA folder) is loaded and activated under its folder name; the
        registry's active version may later replace it with `load_adapter` + `set_adapter`.
        Blocking (first use may download and convert for a minute): from async code, call it
        through `asyncio.to_thread`.
        """
        from bot.backends.local_models import EMBEDDED_MODEL, resolve_model

        folder = resolve_model(model_spec.model, settings.core.models_dir)
        name = EMBEDDED_MODEL if model_spec.model == EMBEDDED_MODEL else folder.name
        backend = cls.load(folder, device=settings.core.local_device, name=name)
        if model_spec.adapter:
            adapter = Path(model_spec.adapter).expanduser()
            backend.load_adapter(adapter.name, adapter)
            backend.set_adapter(adapter.name)
        return backend

    # -- Backend contract -----------------------------------------------------------------------

    @property
    def model_name(self) -> str:
        return self._base_name if self._active is None else f"{self._base_name}+{self._active}"

    @property
    def tokenizer(self) -> Any:
        """The model's tokenizer (the engine may use it to trim history to the budget)."""
        return self._tokenizer

    @property
    def model(self) -> Any:
        """The underlying (possibly peft-wrapped) model, e.g. for benchmarks against raw `generate`."""
        return self._model

    def render_prompt(self, messages: list[dict]) -> str:
        """The exact prompt text the model sees: the chat template plus the assistant header."""
        return self._tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)

    def encode_prompt(self, messages: list[dict]) -> list[int]:
        # The template already writes every special token it wants, so none are added again.
        return self._tokenizer(self.render_prompt(messages), add_special_tokens=False)["input_ids"]

    def count_tokens(self, messages: list[dict]) -> int | None:
        return len(self.encode_prompt(messages))

    async def stream(self, messages: list[dict], params: GenerationParams) -> AsyncIterator[str]:
        if self._closed:
            raise BackendError("the local backend is closed")
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()
        job = _Job()
        prompt_ids = self.encode_prompt(messages)
        worker = threading.Thread(
            target=self._generate_in_thread,
            args=(loop, queue, job, prompt_ids, params),
            name=_WORKER_NAME,
            daemon=True,  # a generation must never keep the process alive at exit
        )
        self._workers[worker] = job.cancel
        worker.start()
        stops = _StopScanner(params.stop)
        try:
            while True:
                item = await queue.get()
                if isinstance(item, _Done):
                    if item.error is not None:
                        raise item.error
                    tail = stops.flush()
                    if tail:
                        yield tail
                    return
                text, hit = stops.feed(item)
                if text:
                    yield text
                if hit:
                    # The model may already be a token past the stop string (transformers checks it
                    # too, but our text check can be first). Stop it and wait for it, so that when
                    # the stream ends the generation really is over (stats, lock, next request).
                    job.stop_string_hit = True
                    job.cancel.set()
                    while not isinstance(await queue.get(), _Done):
                        pass
                    return
        finally:
            # Runs on normal end, stop string, break/aclose() and task cancellation alike. A consumer
            # that left does not wait for the thread: it may still be queued behind another
            # generation, and it will see the flag and skip or stop at its next token.
            job.cancel.set()

    async def health(self) -> str:
        return f"{self.model_name} on {self._device()}, {'closed' if self._closed else 'ready'}"

    async def aclose(self) -> None:
        """Stop running generations, wait for their threads, and drop the weights."""
        self._closed = True
        for worker, cancel in list(self._workers.items()):
            cancel.set()
            await asyncio.to_thread(worker.join, 30)
        with self._lock:
            self._model = None
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except ImportError:  # pragma: no cover
            pass

    # -- adapters -------------------------------------------------------------------------------

    @property
    def adapters(self) -> list[str]:
        """Names of the loaded adapters."""
        return list(self._adapters)

    @property
    def active_adapter(self) -> str | None:
        return self._active

    def load_adapter(self, name: str, path: str | Path) -> None:
        """Load the peft adapter in folder `path` under `name` (not activated: see `set_adapter`).

        Reloading an existing name replaces it, which is how the local backend takes a retrained
        adapter in place.
        """
        from peft import PeftModel

        path = Path(path)
        if not (path / "adapter_config.json").is_file():
            raise BackendNotFoundError(f"no peft adapter (adapter_config.json) in {path}")
        with self._lock:
            if name in self._adapters:
                self._delete_adapter_locked(name)
            if isinstance(self._model, PeftModel):
                self._model.load_adapter(str(path), adapter_name=name)
            else:
                self._model = PeftModel.from_pretrained(self._model, str(path), adapter_name=name)
            self._model.eval()
            self._adapters[name] = str(path)
            # peft activates the first adapter it loads; ours stay inactive until set_adapter().
            self._apply_active_locked()

    def set_adapter(self, name: str | None) -> None:
        """Make adapter `name` answer from the next generation on; `None` means the base model."""
        if name is not None and name not in self._adapters:
            raise BackendNotFoundError(f"adapter {name!r} is not loaded (loaded: {sorted(self._adapters) or 'none'})")
        with self._lock:
            self._active = name
            self._apply_active_locked()

    def unload_adapter(self, name: str) -> None:
        """Remove adapter `name` from memory; if it was active, the base model answers again."""
        if name not in self._adapters:
            raise BackendNotFoundError(f"adapter {name!r} is not loaded")
        with self._lock:
            self._delete_adapter_locked(name)
            if self._active == name:
                self._active = None
            self._apply_active_locked()

    def _delete_adapter_locked(self, name: str) -> None:
        from peft import PeftModel

        del self._adapters[name]
        if not self._adapters and isinstance(self._model, PeftModel):
            # Last adapter gone: unwrap to the plain model. unload() removes the LoRA layers without
            # merging them, so the base weights stay exactly what they were.
            self._model = self._model.unload()
        else:
            self._model.delete_adapter(name)

    def _apply_active_locked(self) -> None:
        from peft import PeftModel

        if not isinstance(self._model, PeftModel):
            return
        if self._active is None:
            # Keep the adapters loaded but bypass them: the LoRA layers forward the base output only.
            self._model.base_model.disable_adapter_layers()
        else:
            self._model.base_model.enable_adapter_layers()
            self._model.set_adapter(self._active)

    # -- generation (worker thread) -------------------------------------------------------------

    def _generate_in_thread(
        self,
        loop: asyncio.AbstractEventLoop,
        queue: asyncio.Queue,
        job: "_Job",
        prompt_ids: list[int],
        params: GenerationParams,
    ) -> None:
        def send(item: object) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the loop is closed: nobody is listening any more
                pass

        try:
            with self._lock:
                if job.cancel.is_set() or self._model is None:
                    return
                self._generate_locked(send, job, prompt_ids, params)
        except BaseException as exc:  # noqa: BLE001 - every failure must reach the consumer
            log.exception("local generation failed")
            error = exc if isinstance(exc, BackendError) else BackendError(f"local generation failed: {type(exc).__name__}")
            send(_Done(error))
            return
        finally:
            self._workers.pop(threading.current_thread(), None)
        send(_Done())

    def _generate_locked(self, send, job: "_Job", prompt_ids: list[int], params: GenerationParams) -> None:
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

        class _QueueStreamer(TextIteratorStreamer):
            # Same word-boundary decoding as TextIteratorStreamer, but chunks go straight to the
            # event loop instead of a queue.Queue that an async consumer could only poll or block on.
            def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
                if text:
                    send(text)

        class _Cancelled(StoppingCriteria):
            def __call__(self, input_ids, scores, **kwargs) -> torch.BoolTensor:
                return torch.full((input_ids.shape[0],), job.cancel.is_set(), dtype=torch.bool, device=input_ids.device)

        model = self._model
        device = self._device()
        input_ids = torch.tensor([prompt_ids], dtype=torch.long, device=device)
        streamer = _QueueStreamer(self._tokenizer, skip_prompt=True, skip_special_tokens=True)
        gen_kwargs: dict[str, Any] = dict(
            input_ids=input_ids,
            attention_mask=torch.ones_like(input_ids),
            max_new_tokens=params.max_tokens,
            eos_token_id=self._eos_ids,
            pad_token_id=self._pad_id(),
            repetition_penalty=params.repetition_penalty,
            streamer=streamer,
            stopping_criteria=StoppingCriteriaList([_Cancelled()]),
        )
        if params.temperature > 0:
            gen_kwargs.update(do_sample=True, temperature=params.temperature, top_p=params.top_p, top_k=0)
        else:
            # Greedy; the explicit neutral values keep transformers from warning about sampling
            # settings inherited from the model's generation_config.
            gen_kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        stops = tuple(dict.fromkeys(s for s in params.stop if s))
        if stops:
            gen_kwargs["stopping_criteria"].append(self._stop_criteria(stops))
        if params.seed is not None:
            torch.manual_seed(params.seed)

        started = time.perf_counter()
        with torch.inference_mode():
            output = model.generate(**gen_kwargs)
        elapsed = time.perf_counter() - started
        new = output[0, len(prompt_ids):].tolist()
        if job.stop_string_hit:
            reason = "stop"
        elif job.cancel.is_set():
            reason = "cancelled"
        elif len(new) >= params.max_tokens and not (new and new[-1] in self._eos_ids):
            reason = "length"
        else:
            reason = "stop"
        self.last_stats = GenerationStats(self.model_name, len(prompt_ids), len(new), elapsed, reason)

    # -- helpers --------------------------------------------------------------------------------

    def _stop_criteria(self, stops: tuple[str, ...]) -> Any:
        """transformers' StopStringCriteria for `stops`, built once per stop set (called under the lock).

        Building one scans the whole vocabulary (about 1.4 s for SmolLM2's 49k tokens on 2 cores),
        which `generate(stop_strings=...)` would redo on every call. The criteria object keeps
        no per-generation state, so it can be reused; the tokenizer never changes.
        """
        from transformers import StopStringCriteria

        criteria = self._stop_cache.pop(stops, None)
        if criteria is None:
            criteria = StopStringCriteria(self._tokenizer, list(stops))
        self._stop_cache[stops] = criteria  # re-inserted last: the dict is kept in LRU order
        while len(self._stop_cache) > 32:
            self._stop_cache.pop(next(iter(self._stop_cache)))
        return criteria

    def _device(self) -> str:
        if self._model is None:
            return "none"
        return str(next(self._model.parameters()).device)

    def _pad_id(self) -> int:
        tok = self._tokenizer
        return tok.pad_token_id if tok.pad_token_id is not None else self._eos_ids[0]

    @staticmethod
    def _find_eos_ids(tokenizer: Any, model: Any) -> list[int]:
        """Every token that ends an assistant turn: the tokenizer's EOS, the model's, and `<|im_end|>`."""
        ids: list[int] = []
        candidates: list[Any] = [tokenizer.eos_token_id, getattr(model.generation_config, "eos_token_id", None)]
        # ChatML closes every turn with <|im_end|>; some converted tokenizers name another EOS.
        im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
        if isinstance(im_end, int) and im_end != tokenizer.unk_token_id:
            candidates.append(im_end)
        for c in candidates:
            for i in c if isinstance(c, (list, tuple)) else [c]:
                if isinstance(i, int) and i >= 0 and i not in ids:
                    ids.append(i)
        if not ids:
            raise BackendError("the tokenizer defines no EOS token; replies could never end")
        return ids


class _StopScanner:
    """Cuts streamed text at the first stop string, holding back a possible stop-string prefix."""

    def __init__(self, stops: tuple[str, ...] | list[str]):
        self._stops = [s for s in stops if s]
        self._pending = ""

    def feed(self, chunk: str) -> tuple[str, bool]:
        """Return (text safe to emit now, whether a stop string was found)."""
        if not self._stops:
            return chunk, False
        text = self._pending + chunk
        cut = min((i for i in (text.find(s) for s in self._stops) if i >= 0), default=-1)
        if cut >= 0:
            self._pending = ""
            return text[:cut], True
        keep = held_back(text, self._stops)
        self._pending = text[len(text) - keep:] if keep else ""
        return text[: len(text) - keep], False

    def flush(self) -> str:
        text, self._pending = self._pending, ""
        return text

