"""Engine overhead of the local backend: tokens/s through `LocalBackend.stream` vs raw `model.generate`.

Same model object, same prompt, same greedy settings and `max_new_tokens`, in one process, with the
repetitions interleaved (raw, ours, ours+stop, raw, ...) so that drift in machine load hits every
variant alike. Each figure is new tokens / wall seconds of the whole call, prefill included, and
the script prints the median per variant and the ratio ours/raw (target >= 0.95).

- "ours" streams through the worker thread, streamer and asyncio queue with no stop strings.
- "ours+stop" adds the stop string the engine always passes (the member's label, "User:").
- "ChatEngine.respond" is the whole product path: TIM's persona spec (greedy), prompt assembly
  under the token budget with the model's tokenizer, streaming clean-up of labels and stops.
- `--compare-dtypes` also times `LocalBackend.stream` in float32 against bfloat16, interleaved.

    python bench/bench_local_backend.py                 # real SmolLM2 (fetched/converted once)
    python bench/bench_local_backend.py --model PATH    # any HF folder or .gguf file
"""
from __future__ import annotations

import argparse
import os
import asyncio
import platform
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bot.backends.base import GenerationParams  # noqa: E402
from bot.backends.local import LocalBackend  # noqa: E402
from bot.backends.local_models import EMBEDDED_MODEL, resolve_model  # noqa: E402

SYSTEM = (
    "You are TIM, a compassionate tutor. You help learners of every age understand things for themselves. "
    "Explain one idea at a time in plain words, and ask a short question back."
)
QUESTION = "Explain step by step how plants make their food, in about five sentences."


def raw_generate(backend: LocalBackend, prompt_ids: list[int], max_new: int) -> tuple[int, float]:
    import torch

    ids = torch.tensor([prompt_ids], device=backend.model.device)
    started = time.perf_counter()
    with torch.inference_mode():
        out = backend.model.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=max_new,
            do_sample=False,
            temperature=None,
            top_p=None,
            top_k=None,
            repetition_penalty=1.0,
            eos_token_id=backend._eos_ids,
            pad_token_id=backend._pad_id(),
        )
    return out.shape[1] - ids.shape[1], time.perf_counter() - started


def raw_generate_in_thread(backend: LocalBackend, prompt_ids: list[int], max_new: int) -> tuple[int, float]:
    """Raw generate on a fresh thread, as our backend runs it: separates threading from our code."""
    import threading

    result: list[tuple[int, float]] = []
    worker = threading.Thread(target=lambda: result.append(raw_generate(backend, prompt_ids, max_new)))
    worker.start()
    worker.join()
    return result[0]


async def ours(backend: LocalBackend, messages: list[dict], params: GenerationParams) -> tuple[int, float]:
    started = time.perf_counter()
    async for _ in backend.stream(messages, params):
        pass
    elapsed = time.perf_counter() - started
    return backend.last_stats.new_tokens, elapsed


async def through_engine(engine, persona, backend: LocalBackend) -> tuple[int, float]:
    from bot.engine import Turn

    started = time.perf_counter()
    stream = engine.respond(persona, [Turn("bench", persona.user_label, QUESTION)])
    async for _ in stream:
        pass
    elapsed = time.perf_counter() - started
    return backend.last_stats.new_tokens, elapsed


def main() -> None:
    import torch

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=EMBEDDED_MODEL, help="embedded model name, HF folder or .gguf file")
    ap.add_argument("--models-dir", type=Path, default=REPO / "data" / "models")
    ap.add_argument("--dtype", default="auto", help="auto (float32 on CPU), float32 or bfloat16")
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--compare-dtypes", action="store_true", help="also time LocalBackend.stream in float32 vs bfloat16")
    args = ap.parse_args()

    folder = resolve_model(args.model, args.models_dir)
    backend = LocalBackend.load(folder, device="cpu", dtype=args.dtype)
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": QUESTION}]
    prompt_ids = backend.encode_prompt(messages)
    plain = GenerationParams(temperature=0.0, max_tokens=args.max_new_tokens, repetition_penalty=1.0)
    stopped = GenerationParams(temperature=0.0, max_tokens=args.max_new_tokens, repetition_penalty=1.0, stop=("User:",))

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, load average {load:.1f}, {torch.get_num_threads()} torch threads, "
          f"torch {torch.__version__}, python {platform.python_version()}, no GPU used")
    print(f"model: {folder} ({backend.model.dtype}), prompt {len(prompt_ids)} tokens, max_new_tokens {args.max_new_tokens}")

    from bot.engine import ChatEngine
    from bot.persona import load_persona

    tim = load_persona(REPO / "personas" / "tim")
    persona = tim.model_copy(update={
        "system_prompt": SYSTEM,
        "sampling": tim.sampling.model_copy(update={"temperature": 0.0, "max_tokens": args.max_new_tokens,
                                                    "repetition_penalty": 1.0}),
    })
    engine = ChatEngine(lambda _persona: backend)

    # Warm-up: first calls pay one-off costs (allocations, the stop-string vocabulary scan).
    raw_generate(backend, prompt_ids, 8)
    asyncio.run(ours(backend, messages, GenerationParams(temperature=0.0, max_tokens=8, repetition_penalty=1.0, stop=("User:",))))
    asyncio.run(through_engine(engine, persona, backend))

    results: dict[str, list[float]] = {
        "raw generate": [],
        "raw generate (thread)": [],
        "LocalBackend.stream": [],
        "LocalBackend.stream+stop": [],
        "ChatEngine.respond": [],
    }
    tokens: dict[str, int] = {}
    for rep in range(args.reps):
        for name, run in (
            ("raw generate", lambda: raw_generate(backend, prompt_ids, args.max_new_tokens)),
            ("raw generate (thread)", lambda: raw_generate_in_thread(backend, prompt_ids, args.max_new_tokens)),
            ("LocalBackend.stream", lambda: asyncio.run(ours(backend, messages, plain))),
            ("LocalBackend.stream+stop", lambda: asyncio.run(ours(backend, messages, stopped))),
            ("ChatEngine.respond", lambda: asyncio.run(through_engine(engine, persona, backend))),
        ):
            n, secs = run()
            tokens[name] = n
            results[name].append(n / secs)
            print(f"  rep {rep + 1}: {name:26s} {n:4d} tokens {secs:6.2f}s {n / secs:6.2f} tok/s", flush=True)

    raw = statistics.median(results["raw generate"])
    print("\nmedian tokens/s")
    for name, values in results.items():
        med = statistics.median(values)
        print(f"  {name:26s} {med:6.2f} tok/s  ({tokens[name]} tokens)  ratio vs raw {med / raw:.3f}")
    threaded = statistics.median(results["raw generate (thread)"])
    engine_rate = statistics.median(results["ChatEngine.respond"])
    print(f"\nengine vs raw generate: {engine_rate / raw:.3f}; vs raw generate on a thread: {engine_rate / threaded:.3f} (target >= 0.95)")

    if args.compare_dtypes:
        # Through LocalBackend.stream, the path the product uses (see RESULTS.md for why not main-thread generate).
        print("\nLocalBackend.stream by dtype (interleaved)")
        other = "float32" if backend.model.dtype == torch.bfloat16 else "bfloat16"
        second = LocalBackend.load(folder, device="cpu", dtype=other)
        asyncio.run(ours(second, messages, GenerationParams(temperature=0.0, max_tokens=8, repetition_penalty=1.0)))
        by_dtype: dict[str, list[float]] = {str(backend.model.dtype): [], str(second.model.dtype): []}
        for rep in range(args.reps):
            for b in (backend, second):
                n, secs = asyncio.run(ours(b, messages, plain))
                by_dtype[str(b.model.dtype)].append(n / secs)
                print(f"  rep {rep + 1}: {str(b.model.dtype):16s} {n:4d} tokens {secs:6.2f}s {n / secs:6.2f} tok/s", flush=True)
        for name, values in by_dtype.items():
            print(f"  {name:16s} median {statistics.median(values):6.2f} tok/s")
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
