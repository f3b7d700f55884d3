"""Local LoRA SFT: `train_lora(...)` trains an adapter on a dataset version and writes it out.

What it guarantees (and the tests check):
- Rows come from `chat_format`: the serving chat template and system prompt, EOS after every
  assistant turn, loss on assistant tokens only, the mask checked (an empty mask raises).
- Only the LoRA weights train; the base weights are frozen and never written.
- bf16 + gradient checkpointing on a GPU (`config.resolve` decides); fp32 on the CPU for tiny models.
- Checkpoints every `save_steps` under `<run_dir>/checkpoints`; a later call with `resume=True`
  continues from the newest one (optimizer, scheduler, RNG and data position included).
- Under `accelerate launch` it runs data-parallel on every GPU; only the main process reports
  and writes the adapter.

The training loop is transformers' `Trainer` with our collator (padding, or packing without
cross-example contamination) rather than TRL's `SFTTrainer`: we own tokenization and the mask,
which leaves SFTTrainer nothing to do but add per-step entropy/accuracy passes over the full
vocabulary that cost throughput (see bench/RESULTS.md).
"""
from __future__ import annotations

import json
import logging
import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from trainer.finetune.chat_format import EncodeStats, encode_jsonl
from trainer.finetune.config import LoraRunConfig

log = logging.getLogger(__name__)

#: What `on_log` receives: step, max_steps, epoch, and any of loss, val_loss, tokens_per_s, learning_rate.
LogFn = Callable[[dict], None]


@dataclass
class TrainResult:
    adapter_dir: Path
    global_step: int
    max_steps: int
    train_loss_first: float | None
    train_loss_last: float | None
    val_loss_base: float | None
    val_loss_final: float | None
    tokens_per_s: float | None
    tokens: int                 # non-padding tokens processed (this process)
    runtime_s: float
    resumed_from: str | None
    train_stats: dict = field(default_factory=dict)
    val_stats: dict | None = None
    log_history: list[dict] = field(default_factory=list)

    def metrics(self) -> dict:
        keys = ("global_step", "train_loss_first", "train_loss_last", "val_loss_base", "val_loss_final",
                "tokens_per_s", "tokens", "runtime_s", "resumed_from")
        out = {k: getattr(self, k) for k in keys}
        out["trained_tokens"] = self.train_stats.get("trained_tokens")
        out["train_examples"] = self.train_stats.get("examples")
        out["val_examples"] = (self.val_stats or {}).get("examples")
        return out


class TrainingInterrupted(RuntimeError):
    """Raised by a stop callback; the run's checkpoints stay so it can resume."""


def last_checkpoint(checkpoint_dir: Path) -> Path | None:
    if not checkpoint_dir.is_dir():
        return None
    found = [p for p in checkpoint_dir.glob("checkpoint-*") if p.name.split("-")[-1].isdigit()
             and (p / "trainer_state.json").is_file()]
    return max(found, key=lambda p: int(p.name.split("-")[-1]), default=None)


def _torch_dtype(precision: str):
    import torch

    # fp16 keeps fp32 master weights under autocast; bf16 weights are fine for a frozen base.
    return torch.bfloat16 if precision == "bf16" else torch.float32


def load_base(model_dir: Path, config: LoraRunConfig):
    """Tokenizer and base model, ready for adapters (no KV cache: it would also disable packing masks)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=_torch_dtype(config.precision), attn_implementation="sdpa")
    model.config.use_cache = False
    return tokenizer, model


def add_lora(model, config: LoraRunConfig):
    from peft import LoraConfig, get_peft_model

    lora = LoraConfig(r=config.rank, lora_alpha=config.alpha, lora_dropout=config.dropout,
                      target_modules=list(config.target_modules), bias="none", task_type="CAUSAL_LM")
    return get_peft_model(model, lora)


def _make_trainer_class():
    from transformers import Trainer

    class _Trainer(Trainer):
        """Trainer that counts non-padding tokens (for tokens/s) from the collator's `num_real_tokens`."""

        tokens_seen = 0

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            real = inputs.pop("num_real_tokens", None)
            if real is not None and model.training:
                self.tokens_seen += int(real)
            return super().compute_loss(model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch)

    return _Trainer


def _reporting_callback(on_log: LogFn | None, trainer_ref: list, stop_at: int | None, stop_event):
    from transformers import TrainerCallback

    class _Report(TrainerCallback):
        def __init__(self):
            self.mark = (time.perf_counter(), 0)
            self.tokens_per_s: float | None = None
            self.interrupted: int | None = None

        def on_train_begin(self, args, state, control, **kw):
            self.mark = (time.perf_counter(), trainer_ref[0].tokens_seen)

        def on_step_end(self, args, state, control, **kw):
            if stop_at is not None and state.global_step >= stop_at:
                raise TrainingInterrupted(f"stopped at step {state.global_step} (stop_at_step)")
            if stop_event is not None and stop_event.is_set() and state.global_step < state.max_steps:
                control.should_save = True
                control.should_training_stop = True
                self.interrupted = state.global_step

        def on_log(self, args, state, control, logs=None, **kw):
            if not state.is_world_process_zero or not logs:
                return
            event = {"step": state.global_step, "max_steps": state.max_steps, "epoch": state.epoch}
            if "loss" in logs:
                now, tokens = time.perf_counter(), trainer_ref[0].tokens_seen
                t0, k0 = self.mark
                if now > t0 and tokens > k0:
                    self.tokens_per_s = (tokens - k0) / (now - t0) * max(1, args.world_size)
                self.mark = (now, tokens)
                event.update(loss=float(logs["loss"]), tokens_per_s=self.tokens_per_s,
                             learning_rate=logs.get("learning_rate"))
            if "eval_loss" in logs:
                event["val_loss"] = float(logs["eval_loss"])
            if on_log is not None and ("loss" in event or "val_loss" in event):
                on_log(event)

    return _Report()


def train_lora(
    base_model_dir: str | Path,
    train_jsonl: str | Path,
    val_jsonl: str | Path | None,
    run_dir: str | Path,
    adapter_dir: str | Path,
    config: LoraRunConfig,
    *,
    system_prompt: str | None,
    resume: bool = True,
    on_log: LogFn | None = None,
    stop_at_step: int | None = None,
    stop_event=None,
    callbacks: Sequence = (),
) -> TrainResult:
    """Train a LoRA adapter; write it (with the tokenizer and `training.json`) to `adapter_dir`.

    `system_prompt`: the persona's prompt (replaces each example's system message) or None to keep
    the dataset's. `run_dir` holds checkpoints; with `resume=True` the newest one is continued, with
    `resume=False` they are deleted first. `stop_at_step` raises `TrainingInterrupted` after that
    step (used to exercise resuming); setting `stop_event` (a `threading.Event`) saves a checkpoint
    after the current step and raises `TrainingInterrupted` (Ctrl-C). `callbacks` are extra `TrainerCallback`s. Returns losses, tokens/s and the adapter folder.
    """
    import torch
    from accelerate import PartialState
    from transformers import TrainingArguments, set_seed

    from trainer.finetune.data import Collator, ListDataset, as_features, pack
    from trainer.finetune.heldout import mean_assistant_loss

    state = PartialState()
    run_dir, adapter_dir = Path(run_dir), Path(adapter_dir)
    checkpoint_dir = run_dir / "checkpoints"
    if not resume and state.is_main_process and checkpoint_dir.exists():
        shutil.rmtree(checkpoint_dir)
    state.wait_for_everyone()
    resume_from = last_checkpoint(checkpoint_dir) if resume else None

    set_seed(config.seed)
    tokenizer, model = load_base(Path(base_model_dir), config)
    train_rows, train_stats = encode_jsonl(tokenizer, Path(train_jsonl), system_prompt=system_prompt, max_length=config.max_length)
    val_rows, val_stats = [], None
    if val_jsonl is not None and Path(val_jsonl).is_file() and Path(val_jsonl).stat().st_size > 0:
        val_rows, stats = encode_jsonl(tokenizer, Path(val_jsonl), system_prompt=system_prompt, max_length=config.max_length)
        val_stats = stats.as_dict()

    model = add_lora(model, config)
    if config.device != "cpu":
        model.to(state.device)
    pad_id = tokenizer.pad_token_id

    features = pack(train_rows, config.max_length) if config.packing else as_features(train_rows)
    steps_per_epoch = math.ceil(len(features) / (config.batch_size * config.gradient_accumulation * state.num_processes))
    max_steps = config.max_steps if config.max_steps > 0 else max(1, math.ceil(steps_per_epoch * config.epochs))

    # Base loss before any update (LoRA's B starts at zero, so this is the base model's loss).
    base_file = run_dir / "val_loss_base.json"
    val_loss_base = None
    if val_rows:
        if base_file.is_file():
            val_loss_base = json.loads(base_file.read_text())["val_loss"]
        else:
            val_loss_base = mean_assistant_loss(model, val_rows, pad_token_id=pad_id, batch_size=config.batch_size)
            if state.is_main_process:
                run_dir.mkdir(parents=True, exist_ok=True)
                base_file.write_text(json.dumps({"val_loss": val_loss_base}))
            if on_log is not None and state.is_main_process:
                on_log({"step": 0, "max_steps": max_steps, "epoch": 0.0, "val_loss": val_loss_base})

    on_gpu = config.device == "cuda"
    args = TrainingArguments(
        output_dir=str(checkpoint_dir),
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.batch_size,
        gradient_accumulation_steps=config.gradient_accumulation,
        learning_rate=config.learning_rate,
        lr_scheduler_type=config.lr_scheduler,
        warmup_steps=config.warmup_ratio,
        weight_decay=config.weight_decay,
        max_grad_norm=config.max_grad_norm,
        num_train_epochs=config.epochs,
        max_steps=max_steps,
        bf16=config.precision == "bf16",
        fp16=config.precision == "fp16",
        activation_checkpointing=config.gradient_checkpointing,
        activation_checkpointing_kwargs={"use_reentrant": False} if config.gradient_checkpointing else None,
        train_sampling_strategy="group_by_length" if config.group_by_length else "random",
        logging_steps=config.logging_steps,
        logging_first_step=True,
        eval_strategy="steps" if val_rows else "no",
        eval_steps=config.eval_steps,
        save_strategy="steps",
        save_steps=config.save_steps,
        save_total_limit=config.save_total_limit,
        seed=config.seed,
        data_seed=config.seed,
        report_to=[],
        disable_tqdm=True,
        remove_unused_columns=False,
        dataloader_num_workers=0,
        dataloader_pin_memory=on_gpu,
        use_cpu=config.device == "cpu",
        ddp_find_unused_parameters=False,
        include_num_input_tokens_seen="non_padding",
    )
    trainer_cls = _make_trainer_class()
    holder: list = []
    report = _reporting_callback(on_log, holder, stop_at_step, stop_event)
    trainer = trainer_cls(
        model=model,
        args=args,
        train_dataset=ListDataset(features),
        eval_dataset=ListDataset(as_features(val_rows)) if val_rows else None,
        data_collator=Collator(pad_id, pad_to_multiple_of=8 if on_gpu else None),
        processing_class=tokenizer,
        callbacks=[report, *callbacks],
    )
    holder.append(trainer)
    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(PrinterCallback)  # progress goes to `on_log`, not stdout

    started = time.perf_counter()
    trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    runtime = time.perf_counter() - started
    if report.interrupted is not None:
        raise TrainingInterrupted(f"stopped after step {report.interrupted}; checkpoint saved")

    val_loss_final = mean_assistant_loss(model, val_rows, pad_token_id=pad_id, batch_size=config.batch_size) if val_rows else None
    history = list(trainer.state.log_history)
    losses = [h["loss"] for h in history if "loss" in h]
    result = TrainResult(
        adapter_dir=adapter_dir,
        global_step=trainer.state.global_step,
        max_steps=max_steps,
        train_loss_first=losses[0] if losses else None,
        train_loss_last=losses[-1] if losses else None,
        val_loss_base=val_loss_base,
        val_loss_final=val_loss_final,
        tokens_per_s=(trainer.tokens_seen / runtime * state.num_processes) if runtime > 0 and trainer.tokens_seen else None,
        tokens=trainer.tokens_seen,
        runtime_s=runtime,
        resumed_from=resume_from.name if resume_from else None,
        train_stats=train_stats.as_dict(),
        val_stats=val_stats,
        log_history=history,
    )
    if val_loss_final is not None and on_log is not None and state.is_main_process:
        on_log({"step": result.global_step, "max_steps": max_steps, "epoch": trainer.state.epoch, "val_loss": val_loss_final})
    if state.is_main_process:
        adapter_dir.mkdir(parents=True, exist_ok=True)
        trainer.model.save_pretrained(str(adapter_dir))
        tokenizer.save_pretrained(str(adapter_dir))
        (adapter_dir / "training.json").write_text(json.dumps({
            "base_model": str(base_model_dir), "train": str(train_jsonl), "val": str(val_jsonl) if val_jsonl else None,
            "system_prompt_policy": config.system_prompt_policy, "hyperparams": config.as_dict(),
            "metrics": result.metrics(),
        }, indent=2, default=str))
    state.wait_for_everyone()
    del trainer
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return result


__all__ = ["train_lora", "TrainResult", "TrainingInterrupted", "last_checkpoint", "load_base", "add_lora", "EncodeStats"]
