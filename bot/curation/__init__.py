"""Curation, the pure parts: who may curate, how an item reads, bulk rules, and the JSONL exchange format.

The queue itself (items, decisions, filters) is in `bot.store.curation`; `/curate` lives in
`bot.discord_bot._curation_cog` and `personabot curate` in `bot.cli.curate`. Nothing here imports
discord or touches the database.

- `access`: Manage Server or the persona's `[curation] curator_role` may curate.
- `render`: an item as the text of the Discord review message (within 2000 characters).
- `rules`: `curate auto` rules (thumbs-up, no-thumbs-down, all).
- `transfer`: `curate export`/`import` lines, with `file:line: reason` errors.
"""
