"""Writing a built dataset: the versioned folder and its files.

Layout of `<data_dir>/datasets/<persona>/v<N>/`:
  train.jsonl, val.jsonl   OpenAI chat format, one {"messages": [...]} per line (assistant turns may
                           carry "weight": 0 = context only)
  manifest.json            persona, version, created_at, options/filters, sources (id, kind, label,
                           content hash, counts), curated logs, counts at every step, dropped by
                           reason, dedup, PII counts by type, split, validation report, file sha256s
  report.md                the same, short and human-readable
  hf/                      (--format hf) a `datasets.DatasetDict` saved with save_to_disk
  axolotl.yml              (--format hf) an Axolotl `type: chat_template` config snippet
Everything is written into a temporary folder that is renamed into place at the end, so a failed
build never leaves a half-written version behind.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path


def write_jsonl(path: Path, examples: list[dict]) -> str:
    """One JSON object per line (`json.dumps(ex, ensure_ascii=False)`); returns the file's sha256."""
    encode = json.JSONEncoder(ensure_ascii=False).encode       # what json.dumps uses, made once
    digest = hashlib.sha256()
    with path.open("w", encoding="utf-8") as fh:
        for start in range(0, len(examples), 1000):
            text = "".join([encode(ex) + "\n" for ex in examples[start:start + 1000]])
            fh.write(text)
            digest.update(text.encode("utf-8"))
    return digest.hexdigest()


def write_hf(folder: Path, train: list[dict], val: list[dict]) -> None:
    """A Hugging Face DatasetDict with a `messages` column; weights kept as a per-message field."""
    from datasets import Dataset, DatasetDict
    from datasets.utils.logging import disable_progress_bar

    disable_progress_bar()      # the build shows its own progress; datasets would print over it

    def rows(examples):
        # Arrow needs one schema: every message gets a weight (1 unless down-weighted) and a name.
        return [{"messages": [{"role": m["role"], "content": m["content"], "weight": int(m.get("weight", 1))} for m in ex["messages"]]}
                for ex in examples]

    parts = {"train": Dataset.from_list(rows(train))}
    if val:
        parts["validation"] = Dataset.from_list(rows(val))
    DatasetDict(parts).save_to_disk(str(folder / "hf"))


def axolotl_snippet(folder: Path, base_model: str) -> str:
    return f"""# Axolotl config snippet for this dataset version (chat_template replaced the sharegpt type).
# Loss only on assistant turns; a message with weight 0 is context only.
base_model: {base_model}
chat_template: tokenizer_default
datasets:
  - path: {folder / 'train.jsonl'}
    ds_type: json
    type: chat_template
    field_messages: messages
    message_property_mappings:
      role: role
      content: content
    message_field_training: weight
    roles_to_train: ["assistant"]
    train_on_eos: turn
test_datasets:
  - path: {folder / 'val.jsonl'}
    ds_type: json
    split: train
    type: chat_template
    field_messages: messages
    message_field_training: weight
    roles_to_train: ["assistant"]
"""


def _curated_lines(curated: dict | None) -> list[str]:
    """The curated logs by status: what trained (approved, corrected) and what was left out, and why."""
    by = (curated or {}).get("by_status")
    if not by:
        return []
    lines = [f"- Curated replies: {by['approved']} approved and {by['corrected']} corrected (in the examples); "
             f"left out: {by['pending']} pending, {by['rejected']} rejected, {by.get('out_of_scope', 0)} from other guilds, "
             f"{by.get('not_opted_in', 0)} of members no longer opted in"]
    note = (curated.get("scope") or {}).get("note")
    if note:
        lines.append(f"- Curated scope: {note}")
    return lines


def _posts_lines(posts: dict | None) -> list[str]:
    if not posts:
        return []
    if not posts.get("prompted"):
        return ["- Posts-only sessions left out (--no-prompted-posts)"]
    used = ", ".join(f"{t!r} {n}" for t, n in posts.get("used", {}).items()) or "none"
    skipped = ", ".join(f"{k} {n}" for k, n in posts.get("skipped_at_import", {}).items()) or "none"
    return [f"- Prompted posts: prompts used {used}; skipped at import: {skipped}"]


def report_markdown(manifest: dict) -> str:
    c = manifest["counts"]
    v = manifest["validation"]
    lines = [
        f"# Dataset {manifest['persona']} v{manifest['version']}",
        "",
        f"- Built {manifest['created_at']} from {len(manifest['sources'])} source(s)"
        + (f" and {manifest['curated']['threads']} curated conversation(s)" if manifest.get("curated") else ""),
        *_curated_lines(manifest.get("curated")),
        f"- Messages read: {c['messages_read']}; sessions: {c['sessions']} ({c['sessions_kept']} kept)",
        f"- Examples: {c['train_examples']} train, {c['val_examples']} validation "
        f"({c.get('examples_from_conversations', 0)} from conversations, {c.get('examples_from_posts', 0)} from posts)",
        *_posts_lines(manifest.get("posts")),
        f"- Tokens ({v['tokenizer']}): mean {v['distributions']['tokens']['mean']}, max {v['distributions']['tokens']['max']} "
        f"per example; estimate {v['estimate']['billed_tokens']} tokens over {v['estimate']['epochs']} epochs",
        f"- Validation: {'OK' if v['ok'] else 'ERRORS ' + json.dumps(v['errors'])}",
        "",
        "## Dropped or changed, by reason",
        "",
        *[f"- {k}: {n}" for k, n in sorted(manifest["dropped"].items())],
        "",
        "## PII (replaced)",
        "",
        *[f"- {k}: {n}" for k, n in manifest["pii"].items()],
        "",
        "## Sources",
        "",
        *[f"- #{s['id']} {s['kind']} {s['label']} ({s['content_hash'][:12]}): {s['counts'].get('imported', '?')} messages" for s in manifest["sources"]],
        "",
    ]
    return "\n".join(lines)
