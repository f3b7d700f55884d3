"""Training throughput: our LoRA trainer vs a plain TRL SFTTrainer, same model, data and hyperparameters.

    python bench/bench_train.py                                  # tiny random Llama on the CPU
    python bench/bench_train.py --model /path/to/SmolLM2 --steps 8
    python bench/bench_train.py --model random-1b --steps 30 --batch-size 8 --max-length 1024   # GPU, bf16

Each trainer runs in its own subprocess (clean peak-memory numbers), one after the other, in the
same invocation. Both get the same conversations (TutorChatbot from ../shared when present, else a
built-in synthetic set), LoRA rank/alpha/targets, batch size, max length, learning rate, steps,
precision (bf16 on a GPU) and gradient checkpointing (on for GPU). Throughput counts non-padding
input tokens (transformers' `num_input_tokens_seen`, "non_padding") per second of training step
time, after `--warmup-steps` steps. Memory: peak CUDA allocation on a GPU, peak RSS on the CPU.
MFU (GPU): tokens/s x FLOPs/token / peak bf16 FLOP/s, where FLOPs/token = 4 N (forward + input
gradients through the frozen base; adapter gradients are negligible) + 4 L s d (causal attention,
s = mean sequence length), and one more forward (2 N + 2 L s d) with gradient checkpointing.

Differences that are the point of the comparison: ours tokenizes with the serving template and an
assistant-only mask (the baseline trains on every token: TRL's `assistant_only_loss` needs
`{% generation %}` markers the template lacks), batches similar lengths together, and skips TRL's
per-step entropy/accuracy passes over the vocabulary.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SYSTEM = "You are TIM, a compassionate tutor. Keep replies short and kind."
PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L40S": 362.0, "L4": 121.0, "A10": 125.0, "4090": 165.0}


# -- data and models ---------------------------------------------------------------------------------

def conversations(n: int, seed: int = 0) -> list[dict]:
    convos = REPO.parent / "shared" / "data" / "tutorchatbot" / "convos"
    out = []
    if convos.is_dir():
        for path in sorted(convos.glob("*.txt")):
            messages = [{"role": "system", "content": SYSTEM}]
            for block in re.split(r"\n\s*\n", path.read_text(encoding="utf-8", errors="replace")):
                m = re.match(r"^(User|TIM):\s*(.*)$", block.strip(), re.S)
                if not m or not m.group(2).strip():
                    continue
                role = "user" if m.group(1) == "User" else "assistant"
                if messages[-1]["role"] == role or (role == "assistant" and messages[-1]["role"] == "system"):
                    continue
                messages.append({"role": role, "content": m.group(2).strip()})
            while len(messages) > 1 and messages[-1]["role"] != "assistant":
                messages.pop()
            if len(messages) >= 3:
                out.append({"messages": messages})
        source = "tutorchatbot"
    rng = random.Random(seed)
    if not out:
        source = "synthetic"
        words = "light water plant energy fraction number story question answer kind learn explain idea".split()
        for _ in range(n):
            messages = [{"role": "system", "content": SYSTEM}]
            for _ in range(rng.randint(1, 4)):
                messages.append({"role": "user", "content": " ".join(rng.choices(words, k=rng.randint(4, 30))) + "?"})
                messages.append({"role": "assistant", "content": " ".join(rng.choices(words, k=rng.randint(5, 80))) + "."})
            out.append({"messages": messages})
    rng.shuffle(out)
    return out[:n], source


def build_model(kind: str, folder: Path, tokenizer_dir: str | None) -> Path:
    """'tiny' or 'random-1b': a randomly initialised Llama saved to `folder`; anything else is a model folder."""
    if kind not in ("tiny", "random-1b"):
        return Path(kind)
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    if tokenizer_dir:
        tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    else:
        from tests.trainer.finetune.conftest import build_local_tiny_llama

        build_local_tiny_llama(folder / "_tok")
        tok = AutoTokenizer.from_pretrained(str(folder / "_tok"))
    if kind == "tiny":
        cfg = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2)
    else:  # Llama-3.2-1B shape
        cfg = dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16, num_attention_heads=32, num_key_value_heads=8)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tok), max_position_embeddings=4096, bos_token_id=tok.bos_token_id,
                         eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, tie_word_embeddings=True, **cfg)
    model = LlamaForCausalLM(config)
    if kind == "random-1b":
        model = model.to(torch.bfloat16)
    model.save_pretrained(str(folder))
    tok.save_pretrained(str(folder))
    return folder


def matmul_params(model_dir: Path) -> tuple[int, int, int]:
    """(params that do matmuls per token incl. the LM head, layers, hidden size) from the config alone."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(str(model_dir))
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    n = sum(p.numel() for name, p in model.named_parameters() if "embed_tokens" not in name)
    if getattr(config, "tie_word_embeddings", False):
        n += config.vocab_size * config.hidden_size
    return n, config.num_hidden_layers, config.hidden_size


# -- one measured run (subprocess) ---------------------------------------------------------------------

def timing_callback(warmup: int):
    from transformers import TrainerCallback

    class Timer(TrainerCallback):
        marks: list = []

        def on_step_end(self, args, state, control, **kw):
            import torch

            if torch.cuda.is_available():
                torch.cuda.synchronize()
            self.marks.append((state.global_step, time.perf_counter(), state.num_input_tokens_seen))

        def result(self) -> dict:
            timed = [m for m in self.marks if m[0] >= warmup]
            (s0, t0, k0), (s1, t1, k1) = timed[0], timed[-1]
            return {"timed_steps": s1 - s0, "seconds": t1 - t0, "tokens": k1 - k0, "tokens_per_s": (k1 - k0) / (t1 - t0)}

    return Timer()


def run_one(which: str, a: argparse.Namespace) -> dict:
    import resource

    import torch

    from bot.persona.training import TrainingSpec
    from trainer.finetune.config import resolve

    config = resolve(TrainingSpec(rank=a.rank, alpha=2 * a.rank, dropout=0.0, learning_rate=a.lr, batch_size=a.batch_size,
                                  max_length=a.max_length, logging_steps=10_000, eval_steps=10_000, save_steps=10_000,
                                  warmup_ratio=0.0, lr_scheduler="constant", target_modules=a.targets.split(","),
                                  precision=a.precision, gradient_checkpointing=a.checkpointing, group_by_length=not a.no_grouping),
                     device=a.device, max_steps=a.steps)
    on_gpu = config.device == "cuda"
    if on_gpu:
        torch.cuda.reset_peak_memory_stats()
    timer = timing_callback(a.warmup_steps)
    work = Path(a.workdir)
    if which == "ours":
        from trainer.finetune.lora import train_lora

        res = train_lora(a.model_dir, work / "train.jsonl", None, work / f"run-{os.getpid()}", work / f"adapter-{os.getpid()}",
                         config, system_prompt=SYSTEM, resume=False, callbacks=[timer])
        losses = (res.train_loss_first, res.train_loss_last)
    else:
        from datasets import Dataset
        from peft import LoraConfig
        from trl import SFTConfig, SFTTrainer

        records = [json.loads(line) for line in (work / "train.jsonl").read_text().splitlines()]
        dtype = torch.bfloat16 if config.precision == "bf16" else torch.float32
        args = SFTConfig(
            output_dir=str(work / f"trl-{os.getpid()}"), per_device_train_batch_size=config.batch_size,
            max_length=config.max_length, learning_rate=config.learning_rate, lr_scheduler_type="constant",
            max_steps=config.max_steps, bf16=config.precision == "bf16", fp16=config.precision == "fp16",
            gradient_checkpointing=config.gradient_checkpointing,
            gradient_checkpointing_kwargs={"use_reentrant": False} if config.gradient_checkpointing else None,
            logging_steps=10_000, save_strategy="no", report_to=[], disable_tqdm=True, seed=config.seed,
            use_cpu=config.device == "cpu", include_num_input_tokens_seen="non_padding",
            model_init_kwargs={"dtype": dtype, "attn_implementation": "sdpa"}, dataloader_num_workers=0,
        )
        peft_config = LoraConfig(r=config.rank, lora_alpha=config.alpha, lora_dropout=0.0,
                                 target_modules=list(config.target_modules), task_type="CAUSAL_LM")
        trainer = SFTTrainer(model=str(a.model_dir), args=args, train_dataset=Dataset.from_list(records), peft_config=peft_config,
                             callbacks=[timer])
        out = trainer.train()
        hist = [h["loss"] for h in trainer.state.log_history if "loss" in h]
        losses = (hist[0] if hist else None, out.training_loss)
    report = {"trainer": which, **timer.result(), "precision": config.precision, "device": config.device,
              "gradient_checkpointing": config.gradient_checkpointing, "loss_first_last": losses}
    if on_gpu:
        report["peak_memory_gib"] = torch.cuda.max_memory_allocated() / 2**30
        report["gpu"] = torch.cuda.get_device_name()
    else:
        report["peak_rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    return report


# -- driver -----------------------------------------------------------------------------------------------

def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="tiny", help="'tiny', 'random-1b' (randomly initialised ~1B Llama) or a model folder")
    p.add_argument("--tokenizer", default=None, help="tokenizer folder for random models (default: a tiny BPE built here)")
    p.add_argument("--examples", type=int, default=128)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup-steps", type=int, default=3, help="steps excluded from timing")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--max-length", type=int, default=512)
    p.add_argument("--rank", type=int, default=8)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--targets", default="q_proj,k_proj,v_proj,o_proj")
    p.add_argument("--device", default="auto")
    p.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp16", "fp32"])
    p.add_argument("--checkpointing", default="auto", choices=["auto", "on", "off"])
    p.add_argument("--no-grouping", action="store_true", help="turn off our length-grouped batching")
    p.add_argument("--peak-tflops", type=float, default=None, help="peak bf16 TFLOP/s per GPU for MFU (default: by GPU name)")
    p.add_argument("--json", dest="json_out", default=None, help="write the report here too")
    p.add_argument("--only", choices=["ours", "trl"], help=argparse.SUPPRESS)
    p.add_argument("--workdir", help=argparse.SUPPRESS)
    p.add_argument("--model-dir", help=argparse.SUPPRESS)
    a = p.parse_args()

    if a.only:
        print("BENCH " + json.dumps(run_one(a.only, a)), flush=True)
        return

    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        work = Path(tmp)
        records, source = conversations(a.examples)
        (work / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
        model_dir = build_model(a.model, work / "model", a.tokenizer)
        reports = []
        for which in ("trl", "ours"):
            cmd = [sys.executable, __file__, *sys.argv[1:], "--only", which, "--workdir", str(work), "--model-dir", str(model_dir)]
            proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
            line = next((l for l in proc.stdout.splitlines() if l.startswith("BENCH ")), None)
            if proc.returncode != 0 or line is None:
                sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-6000:])
                raise SystemExit(f"{which} run failed")
            reports.append(json.loads(line[6:]))
        trl, ours = reports
        n, layers, hidden = matmul_params(model_dir)
        lengths = []
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(str(model_dir))
        for r in records:
            text = tok.apply_chat_template(r["messages"], tokenize=False)
            lengths.append(min(a.max_length, len(tok(text, add_special_tokens=False)["input_ids"])))
        mean_len = sum(lengths) / len(lengths)
        flops_per_token = 4 * n + 4 * layers * mean_len * hidden
        if ours.get("gradient_checkpointing"):
            flops_per_token *= 1.5
        summary = {"model": a.model, "data": source, "examples": len(records), "mean_tokens": round(mean_len, 1),
                   "steps": a.steps, "batch_size": a.batch_size, "max_length": a.max_length, "rank": a.rank,
                   "matmul_params": n, "flops_per_token": flops_per_token, "trl": trl, "ours": ours,
                   "ratio": ours["tokens_per_s"] / trl["tokens_per_s"]}
        gpu = ours.get("gpu")
        peak = a.peak_tflops or next((v for k, v in PEAK_BF16_TFLOPS.items() if gpu and k in gpu), None)
        if peak and ours["device"] == "cuda":
            for r in (trl, ours):
                r["mfu"] = r["tokens_per_s"] * flops_per_token / (peak * 1e12)
            summary["peak_tflops"] = peak
        mem = "peak_memory_gib" if "peak_memory_gib" in ours else "peak_rss_gib"
        print(f"model {a.model} ({n / 1e6:.1f}M matmul params), data {source}, {len(records)} examples, "
              f"mean {mean_len:.0f} tokens, batch {a.batch_size}, {a.steps} steps, {ours['device']} {ours['precision']}")
        for r in (trl, ours):
            extra = f", MFU {r['mfu'] * 100:.1f}%" if "mfu" in r else ""
            print(f"  {r['trainer']:>4}: {r['tokens_per_s']:9.1f} tokens/s  {mem} {r[mem]:.2f}{extra}")
        print(f"  ratio ours/TRL: {summary['ratio']:.2f}")
        if a.json_out:
            Path(a.json_out).write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
