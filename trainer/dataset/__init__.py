"""Dataset building: turn a persona's sources into versioned, validated train/val JSONL.

Pipeline (one module per step, each pure and testable on its own):
`ingest` (run an importer, store the source) -> `collect` (read imports, synthetic sources and
approved curated logs) -> `sessions` (gap split, bursts, roles) -> `cleanup` (system/media/link/
filler/length) -> `pii` (offline pseudonyms and redaction) -> `windows` (token-bounded examples)
-> `split` (newest sessions to validation) -> dedup (`trainer.dedup`) -> `validate` -> `export`.
`build.build_dataset` runs it all; `versions` records the result in the database.
"""
