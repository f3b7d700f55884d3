"""`build_dataset`: a persona's sources -> a versioned, validated dataset folder + database record.

Order matters and is deliberate: clean-up before PII (link-only detection needs the URL), PII
before dedup and split (duplicates are judged on what is written), split before windowing (whole
sessions go to validation, so no window of a validation session can reach train), validation
examples deduplicated first (a train example that near-duplicates a validation one is a leak and is
dropped from train). Every drop is counted by reason in the manifest. Nothing is written unless
the build succeeds; the version folder appears whole or not at all.
"""
from __future__ import annotations

import hashlib
import json
import shutil
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import aiosqlite

from bot.store.curation import training_scope
from bot.store.db import utcnow
from trainer._gc import gc_long_lived, gc_paused
from trainer.dataset import collect, export, versions
from trainer.dataset.cleanup import Cleaner
from trainer.dataset.pii import Scrubber
from trainer.dataset.posts import PromptLog, assemble_posts, is_monologue
from trainer.dataset.sessions import Session, assemble_turns, split_sessions
from trainer.dataset.split import assign_splits
from trainer.dataset.tokens import MESSAGE_OVERHEAD, TokenCounter
from trainer.dataset.validate import Validator, example_errors
from trainer.dataset.windows import make_windows
from trainer.dedup import Deduplicator

# Their "participants" are role labels ("User", "TIM"), not people: pseudonymising them would turn
# "sorry to hear that, User" into "…, Person 1". Regex PII detectors still run on their text.
ROLE_LABELLED_KINDS = frozenset({"synthetic", "transcripts"})


class BuildError(RuntimeError):
    """The build cannot produce a usable dataset; the message says why, in one line."""


@dataclass(frozen=True)
class BuildOptions:
    session_gap_s: float = 2 * 3600        # a new session after this much silence
    val_fraction: float = 0.1
    media: str = "placeholder"             # or "drop"
    links: str = "placeholder"             # or "drop"
    max_message_chars: int = 2000
    max_tokens: int | None = None          # default: the persona's training.max_length
    dedup: bool = True
    near_dup_threshold: float = 0.85
    pii: bool = True
    include_curated: bool = True
    hf: bool = False
    seed: int = 1
    region: str | None = None              # phone region for every source (else each source's own hint)
    prompted_posts: bool = True            # posts-only sessions (tweets, ...) become prompted examples


@dataclass
class BuildResult:
    persona: str
    version: int
    folder: Path
    dataset_id: int
    manifest: dict = field(default_factory=dict)


Progress = Callable[[str, int, int], None]     # (step, done, total)


def _noop(step: str, done: int, total: int) -> None:
    pass


def _post_skips(sources: list[dict]) -> dict[str, int]:
    """Posts the importers skipped (retweets, quotes, empty), summed over the persona's posts sources."""
    from trainer.importers import post_kinds

    total: Counter = Counter()
    kinds = post_kinds()
    for s in sources:
        if s["kind"] in kinds:
            total.update(s["counts"].get("skipped") or {})
    return dict(sorted(total.items()))


async def build_dataset(db: aiosqlite.Connection, *, persona, data_dir: Path, options: BuildOptions = BuildOptions(),
                        tokenizer=None, progress: Progress = _noop) -> BuildResult:
    with gc_long_lived():           # threads, turns and examples live until the version is written
        return await _build_dataset(db, persona=persona, data_dir=data_dir, options=options, tokenizer=tokenizer, progress=progress)


async def _build_dataset(db: aiosqlite.Connection, *, persona, data_dir: Path, options: BuildOptions, tokenizer, progress: Progress) -> BuildResult:
    counter = TokenCounter(tokenizer)
    max_tokens = options.max_tokens or persona.training.max_length
    scrubber = Scrubber(owner_pseudonym=persona.display_name, region=options.region)
    cleaner = Cleaner(media=options.media, links=options.links, max_chars=options.max_message_chars)
    stats: Counter = Counter()
    dropped: Counter = Counter()
    prompt_log = PromptLog()

    # 1. Collect threads and register every participant so pseudonyms are stable.
    sources = await collect.persona_sources(db, persona.name)
    threads = []
    messages_read = 0
    regions: dict[int | None, str | None] = {}        # source id -> phone region for its texts
    for i, source in enumerate(sources):
        progress("reading sources", i, len(sources))
        src_threads, participants, owners = await collect.source_threads(db, source)
        if source["kind"] not in ROLE_LABELLED_KINDS:
            for pid in sorted(participants):
                scrubber.add_participant(participants[pid], owner=pid in owners)
        threads += src_threads
        messages_read += sum(len(t.messages) for t in src_threads)
        regions[source["id"]] = options.region or (source.get("provenance") or {}).get("region")
    curated_info = None
    if options.include_curated:
        scope = await training_scope(db, persona)
        cur_threads, names = await collect.curated_threads(db, persona.name, scope)
        for mid in sorted(names):
            scrubber.add_participant(names[mid])
        threads += cur_threads
        messages_read += sum(len(t.messages) for t in cur_threads)
        curated_info = {"threads": len(cur_threads), "messages": sum(len(t.messages) for t in cur_threads),
                        "by_status": await collect.curated_counts(db, persona.name, scope), "scope": scope.to_dict()}
    if not options.pii:
        scrubber.scrub = lambda text, region=None: text      # type: ignore[method-assign]
        scrubber.scrub_many = lambda texts, region=None: list(texts)      # type: ignore[method-assign]
    progress("reading sources", len(sources), len(sources))

    # Steps 2-5 are synchronous and allocate a lot that lives on: the cyclic GC is paused meanwhile.
    with gc_paused():
        # 2. Sessions -> turns (clean-up and PII per message).
        sessions: list[Session] = []
        n_sessions = 0
        for i, thread in enumerate(threads):
            if i % 200 == 0:
                progress("sessions", i, len(threads))
            for j, msgs in enumerate(split_sessions(thread.messages, options.session_gap_s)):
                n_sessions += 1
                origin = "conversations"
                if thread.posts and is_monologue(msgs):
                    # The owner's own posts with nobody else's words: prompted examples (posts.py).
                    if not options.prompted_posts:
                        dropped["posts_left_out"] += 1
                        continue
                    origin = "posts"
                    turns = assemble_posts(msgs, cleaner=cleaner, scrubber=scrubber, stats=stats, dropped=dropped, log=prompt_log,
                                           region=regions.get(thread.source_id))
                    if turns is None:
                        dropped["session_no_usable_post"] += 1
                        continue
                else:
                    turns = assemble_turns(msgs, group=thread.group, cleaner=cleaner, scrubber=scrubber, stats=stats,
                                           region=regions.get(thread.source_id))
                if turns is None:
                    has_owner = any(m.is_owner and m.kind != "system" for m in msgs)
                    dropped["session_no_owner_reply" if not has_owner else "session_no_user_turn"] += 1
                    continue
                times = [m.ts for m in msgs if m.ts is not None]
                sessions.append(Session(f"{thread.key}#{j}", thread.source_id, min(times) if times else None,
                                        max(times) if times else None, turns, thread.members, extra={"origin": origin}))
        progress("sessions", len(threads), len(threads))
        if not sessions:
            raise BuildError(f"no usable conversations for {persona.name}: {n_sessions} session(s) read, none with both a user turn and an owner reply"
                             + (f" ({dropped['posts_left_out']} posts-only session(s) left out by --no-prompted-posts)" if dropped["posts_left_out"] else "")
                             + ("" if sources or curated_info else " (no sources imported and no curated logs)")
                             + (f"; {curated_info['scope']['note']}" if curated_info and curated_info["scope"]["note"] else ""))

        # 3. Split whole sessions, then window them into examples.
        assign_splits(sessions, options.val_fraction)
        system_prompt = persona.offline_system_prompt
        system = {"role": "system", "content": system_prompt}
        system_tokens = counter.count(system_prompt) + MESSAGE_OVERHEAD + 1
        examples = {"val": [], "train": []}
        owners_of = {"val": [], "train": []}
        # Every turn's tokens are counted once, in big batches; windows (and validation) reuse them.
        contents = [t["content"] for s in sessions for t in s.turns]
        counts: list[int] = []
        for i in range(0, len(contents), 50_000):
            progress("tokens", i, len(contents))
            counts += counter.count_many(contents[i:i + 50_000])
        progress("tokens", len(contents), len(contents))
        at = 0
        for i, s in enumerate(sessions):
            if i % 500 == 0:
                progress("windows", i, len(sessions))
            tokens = [c + MESSAGE_OVERHEAD for c in counts[at:at + len(s.turns)]]
            at += len(s.turns)
            spans, too_long = make_windows(len(s.turns), system_tokens, tokens, max_tokens)
            dropped["exchange_too_long"] += too_long
            if len(spans) > 1:
                stats["sessions_split_into_windows"] += 1
            for a, b, with_context in spans:
                turns = [dict(t) for t in s.turns[a:b]]
                if with_context:
                    turns[1]["weight"] = 0
                if all(t.get("weight", 1) == 0 for t in turns if t["role"] == "assistant"):
                    dropped["example_only_filler"] += 1
                    continue
                examples[s.split].append({"messages": [system, *turns]})
                owners_of[s.split].append(s)
        progress("windows", len(sessions), len(sessions))

        # 4. Dedup: validation first, so train examples that duplicate validation are leaks, not keepers.
        dedup_info = {"enabled": options.dedup}
        if options.dedup:
            progress("dedup", 0, 2)
            dd = Deduplicator(threshold=options.near_dup_threshold, seed=options.seed)
            keep = {}
            for split in ("val", "train"):
                texts = ["\n".join(m["content"] for m in ex["messages"][1:]) for ex in examples[split]]
                first_index = len(dd)
                n_val = first_index if split == "train" else 0
                matches = dd.check_many(texts)
                keep[split] = [m is None for m in matches]
                for m in matches:
                    if m is None:
                        continue
                    if split == "train" and m < n_val:
                        dropped["train_duplicates_val"] += 1
                    else:
                        dropped[f"{split}_duplicate"] += 1
                progress("dedup", 1 if split == "val" else 2, 2)
            for split in ("val", "train"):
                examples[split] = [ex for ex, k in zip(examples[split], keep[split]) if k]
                owners_of[split] = [s for s, k in zip(owners_of[split], keep[split]) if k]
            dedup_info.update({"exact": dd.exact_duplicates, "near": dd.near_duplicates, "threshold": options.near_dup_threshold})
        if not examples["train"]:
            raise BuildError(f"no training examples left for {persona.name} after splitting and dedup "
                             f"({len(examples['val'])} validation example(s)); import more data")

        # 5. Validate what will be written (the same checks as `dataset validate`).
        allow_silence = persona.may_stay_silent or stats.get("silent_turns", 0) > 0
        reports = {}
        for split in ("train", "val"):
            v = Validator(counter=counter, max_tokens=max_tokens, allow_silence=allow_silence)
            good, good_owners = [], []
            for n, (ex, s) in enumerate(zip(examples[split], owners_of[split]), 1):
                errs = v.add(ex, f"{split}.jsonl:{n}")
                if errs:
                    dropped[f"invalid_{'_'.join(sorted(errs))}"] += 1
                else:
                    good.append(ex)
                    good_owners.append(s)
            examples[split], owners_of[split] = good, good_owners
            reports[split] = v.report(epochs=persona.training.epochs)
        progress("validate", 1, 1)

    # 6. Write the version folder atomically and record it.
    version = await versions.next_version(db, persona.name)
    root = Path(data_dir) / "datasets" / persona.name
    final = root / f"v{version}"
    tmp = root / f".v{version}.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        hashes = {"train.jsonl": export.write_jsonl(tmp / "train.jsonl", examples["train"]),
                  "val.jsonl": export.write_jsonl(tmp / "val.jsonl", examples["val"])}
        used_sources = sorted({s.source_id for split in owners_of for s in owners_of[split] if s.source_id is not None})
        members = sorted({m for split in owners_of for s in owners_of[split] for m in s.members})
        manifest = {
            "persona": persona.name, "version": version, "created_at": utcnow(),
            "format": "openai-chat-jsonl", "system_prompt_sha256": hashlib.sha256(persona.offline_system_prompt.encode()).hexdigest(),
            "options": {**asdict(options), "max_tokens": max_tokens},
            "filters": ["drop system/service lines", f"media: {options.media}", f"link-only: {options.links}",
                        f"cap messages at {options.max_message_chars} chars", "filler assistant turns weight 0",
                        f"sessions split on gaps > {options.session_gap_s:.0f}s", "PII pseudonymised/redacted" if options.pii else "PII kept",
                        f"dedup exact + MinHash near (J >= {options.near_dup_threshold})" if options.dedup else "no dedup",
                        f"windows of <= {max_tokens} tokens, split between turns"],
            "tokenizer": counter.name,
            "sources": [{"id": s["id"], "kind": s["kind"], "label": s["label"], "content_hash": s["content_hash"],
                         "counts": s["counts"], "imported_at": s["imported_at"], "used": s["id"] in used_sources} for s in sources],
            "curated": curated_info,
            "members": len(members),
            "counts": {"messages_read": messages_read, "sessions": n_sessions, "sessions_kept": len(sessions),
                       "val_sessions": sum(1 for s in sessions if s.split == "val"),
                       "train_examples": len(examples["train"]), "val_examples": len(examples["val"]),
                       **{f"examples_from_{o}": sum(1 for split in owners_of for s in owners_of[split] if s.extra.get("origin") == o)
                          for o in ("conversations", "posts")}},
            "posts": {"prompted": options.prompted_posts, **prompt_log.to_dict(),
                      "skipped_at_import": _post_skips(sources)},
            "cleanup": dict(sorted((cleaner.stats + stats).items())),
            "dropped": dict(sorted(dropped.items())),
            "dedup": dedup_info,
            "pii": scrubber.report() if options.pii else {},
            "phone_regions": {str(k): v for k, v in regions.items()},      # source id -> region used for national numbers
            "validation": reports["train"], "validation_val": reports["val"],
            "files": hashes,
        }
        if options.hf:
            export.write_hf(tmp, examples["train"], examples["val"])
            (tmp / "axolotl.yml").write_text(export.axolotl_snippet(final, persona.model.model), encoding="utf-8")
            manifest["files"]["hf"] = "hf/"
            manifest["files"]["axolotl.yml"] = hashlib.sha256((tmp / "axolotl.yml").read_bytes()).hexdigest()
        manifest_text = json.dumps(manifest, indent=2, ensure_ascii=False, default=str)
        (tmp / "manifest.json").write_text(manifest_text, encoding="utf-8")
        (tmp / "report.md").write_text(export.report_markdown(manifest), encoding="utf-8")
        tmp.rename(final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    dataset_id = await versions.record_version(db, persona=persona.name, version=version, path=str(final),
                                               manifest_hash=hashlib.sha256(manifest_text.encode("utf-8")).hexdigest(),
                                               source_ids=used_sources, member_ids=members)
    return BuildResult(persona.name, version, final, dataset_id, manifest)
