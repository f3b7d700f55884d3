"""The Discord front end: the only package that imports `discord`.

`PersonaBot` (a `commands.Bot`) is built by the entry point (`personabot run`), which owns the
database, the backend pool and the engine and hands them in. Cogs are thin: they turn Discord
objects into the plain types of `bot.conversations` and call the discord-free core.

- `client`: `PersonaBot`, its command tree and lifetimes.
- `endpoints`: point discord.py at another Discord-compatible server (DISCORD_API_BASE/GATEWAY_URL).
- `_chat_cog`: when to answer, history, streaming replies, reactions, /chat and /reset.
- `_io`: Discord messages → `MessageFacts` (classified in `bot.conversations.classify`), and the
  message sinks (plain bot account or webhook, falling back to the bot account).
- `_requests`: every REST request through the bot's one `RequestBudget` (discord.py's `http_trace`).
- `_persona_cog`, `_consent_cog`, `_privacy_cog`, `_admin_cog`: the slash command groups.
- `_curation_cog`: /curate review and stats, the persistent review buttons, reaction removal.
"""
from bot.discord_bot.client import PersonaBot
from bot.discord_bot.endpoints import apply_endpoints

__all__ = ["PersonaBot", "apply_endpoints"]
