"""Synthetic conversation generation: persona topic lists and templates → clean persona conversations.

Modules (each states its contract in its docstring):
- `catalog`: load a persona's topics, user profiles and prompt templates; the deterministic plan.
- `parse`: plain-text transcript → turns (label variants, name normalisation, merging, silence).
- `clean`: keep or drop a transcript for one counted reason (refusal, too few turns, leaked labels,
  repetition, near-duplicates, …); also used by the `transcripts` importer.
- `augment`: style augmentation of user turns (lower case, sparse punctuation, typos).
- `generate`: the run itself: bounded concurrency, retries, resume, provenance, progress events.
- `store`: `synth_items` rows (resume, provenance) and the `synthetic` sources `dataset build` reads.
- `export`: OpenAI chat JSONL.
- `writer`: build the writer backend; `add_conversations` for the scheduler.
"""
from trainer.synth.augment import augment_turns
from trainer.synth.catalog import Catalog, CatalogError, PlanItem, load_catalog
from trainer.synth.clean import DROP_REASONS, Cleaned, Cleaner, CleanStats
from trainer.synth.export import chat_example, export_jsonl
from trainer.synth.generate import RunOptions, SynthAborted, SynthReport, run_synth, speakers_for
from trainer.synth.parse import ASSISTANT, USER, ParsedTranscript, Speakers, Turn, parse_transcript
from trainer.synth.writer import WriterError, add_conversations, build_writer, other_persona_names

__all__ = [
    "ASSISTANT", "USER", "Catalog", "CatalogError", "CleanStats", "Cleaned", "Cleaner", "DROP_REASONS", "ParsedTranscript",
    "PlanItem", "RunOptions", "Speakers", "SynthAborted", "SynthReport", "Turn", "augment_turns", "chat_example",
    "export_jsonl", "load_catalog", "parse_transcript", "run_synth", "speakers_for", "WriterError", "add_conversations",
    "build_writer", "other_persona_names",
]
