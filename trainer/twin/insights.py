"""`twin_insights`: what a twin was trained on, and how its replies compare with its owner's.

From the owner's own messages in the twin's sources (kind 'text'; media, links and system lines
left out): counts by year, top words (stop words removed: of the language the owner names, else,
as exports rarely record theirs, the common languages' lists together, `trainer.dataset.keywords`), top emoji (whole
sequences, by the `emoji` package), and the distribution of message lengths in characters. The
`side_by_side` part takes held-out contexts from the newest dataset's validation file and puts the
twin's reply (its active version, else the newest candidate; generated exactly as probes are)
beside the owner's real one. Keys of `to_dict()`: by_year, top_words, top_emoji, lengths,
side_by_side. `write_png` draws one chart with matplotlib (Agg, no display needed).

The texts are the owner's own; PII scrubbing applies to training data, and the side-by-side uses
the dataset's (scrubbed) contexts, so insights show nothing a dataset would not.
"""
from __future__ import annotations

import json
import statistics
from collections import Counter
from pathlib import Path

import aiosqlite

from bot.persona.spec import PersonaSpec
from bot.settings import Settings

LENGTH_BUCKETS = ((1, 20), (21, 50), (51, 100), (101, 200), (201, 500), (501, None))


def _bucket(n: int) -> str:
    for lo, hi in LENGTH_BUCKETS:
        if hi is None or n <= hi:
            return f"{lo}+" if hi is None else f"{lo}-{hi}"
    return "?"


async def owner_messages(db: aiosqlite.Connection, persona: str) -> list[tuple[str | None, str]]:
    async with db.execute(
        "SELECT m.ts, m.content FROM source_messages m JOIN sources s ON s.id = m.source_id "
        "WHERE s.persona = ? AND m.is_owner = 1 AND m.kind = 'text' ORDER BY m.ts", (persona,)) as cur:
        cur.row_factory = None
        return list(await cur.fetchall())


def text_stats(messages: list[tuple[str | None, str]], top: int = 15, language: str | None = None) -> dict:
    import emoji

    from trainer.dataset.keywords import content_words

    by_year: Counter = Counter()
    words: Counter = Counter()
    emojis: Counter = Counter()
    lengths = []
    for ts, text in messages:
        by_year[ts[:4] if ts else "unknown"] += 1
        words.update(content_words(text, language))
        emojis.update(e["emoji"] for e in emoji.emoji_list(text))
        lengths.append(len(text))
    buckets = Counter(_bucket(n) for n in lengths)
    return {
        "messages": len(messages),
        "language": language or "any (stop words of en, de, fr, es, it, pt, nl)",
        "by_year": dict(sorted(by_year.items())),
        "top_words": [[w, n] for w, n in words.most_common(top)],
        "top_emoji": [[e, n] for e, n in emojis.most_common(top)],
        "lengths": {"buckets": {label: buckets.get(label, 0) for label in (_bucket(lo) for lo, _ in LENGTH_BUCKETS)},
                    "mean": round(statistics.fmean(lengths), 1) if lengths else 0,
                    "median": statistics.median(lengths) if lengths else 0,
                    "max": max(lengths, default=0)},
    }


def heldout_contexts(settings: Settings, persona: str, limit: int) -> list[dict]:
    from trainer.finetune.runner import TrainingSetupError, newest_dataset

    try:
        val = newest_dataset(settings.core.data_dir, persona) / "val.jsonl"
    except TrainingSetupError:
        return []
    out = []
    for line in val.read_text(encoding="utf-8").splitlines() if val.is_file() else []:
        turns = [m for m in json.loads(line)["messages"] if m["role"] != "system"]
        if len(turns) >= 2 and turns[-1]["role"] == "assistant" and turns[-2]["role"] == "user":
            out.append({"context": turns[:-1], "owner": turns[-1]["content"]})
        if len(out) >= limit:
            break
    return out


async def side_by_side(db: aiosqlite.Connection, settings: Settings, spec: PersonaSpec, limit: int = 5, backend_factory=None) -> list[dict]:
    from bot.store import registry
    from trainer.evaluate.probes import Probe, ProbeDefaults, run_probe

    contexts = heldout_contexts(settings, spec.name, limit)
    versions = await registry.list_versions(db, spec.name)
    version = await registry.active_version(db, spec.name) or next(
        (v for v in reversed(versions) if v.status in ("candidate", "failed") and v.adapter_path), None)
    if not contexts:
        return []
    rows = [{"context": c["context"][-1]["content"], "owner": c["owner"], "twin": None, "version": None} for c in contexts]
    if version is None:
        return rows
    if backend_factory is None:
        from trainer.evaluate.runtime import backend_factory as make

        backend_factory = make(settings)
    async with backend_factory(spec, version) as backend:
        for row, c in zip(rows, contexts):
            probe = Probe(name="side-by-side", conversation=c["context"])
            result = await run_probe(backend, spec, probe, ProbeDefaults())
            row["twin"], row["version"] = result.reply, version.name
    return rows


async def twin_insights(db: aiosqlite.Connection, settings: Settings, spec: PersonaSpec, *, examples: int = 5,
                        backend_factory=None, language: str | None = None) -> dict:
    stats = text_stats(await owner_messages(db, spec.name), language=language)
    stats["side_by_side"] = await side_by_side(db, settings, spec, examples, backend_factory)
    stats["twin"] = spec.name
    return stats


def summary_text(data: dict) -> str:
    lines = [f"{data['twin']}: {data['messages']} messages of yours."]
    if data["by_year"]:
        lines.append("By year: " + ", ".join(f"{y} {n}" for y, n in data["by_year"].items()))
    if data["top_words"]:
        lines.append("Top words: " + ", ".join(f"{w} ({n})" for w, n in data["top_words"][:10]))
    if data["top_emoji"]:
        lines.append("Top emoji: " + " ".join(f"{e}×{n}" for e, n in data["top_emoji"][:10]))
    ln = data["lengths"]
    lines.append(f"Length: mean {ln['mean']} characters, median {ln['median']}, longest {ln['max']}")
    for row in data["side_by_side"]:
        lines.append(f"• {row['context'][:80]!r}\n    you:  {row['owner'][:120]!r}\n    twin: "
                     + (repr(row["twin"][:120]) if row["twin"] is not None else "(not trained yet)"))
    return "\n".join(lines)


def write_png(data: dict, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    years = data["by_year"]
    axes[0].bar(list(years), list(years.values()), color="#4c72b0")
    axes[0].set_title("Messages by year")
    words = data["top_words"][:12][::-1]
    axes[1].barh([w for w, _ in words], [n for _, n in words], color="#55a868")
    axes[1].set_title("Top words (stop words removed)")
    buckets = data["lengths"]["buckets"]
    axes[2].bar(list(buckets), list(buckets.values()), color="#c44e52")
    axes[2].set_title("Message length (characters)")
    axes[2].tick_params(axis="x", rotation=30)
    fig.suptitle(f"{data['twin']}: what the twin learned from ({data['messages']} messages)")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=90)
    plt.close(fig)
    return path
