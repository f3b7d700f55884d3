"""/curate review and /curate stats: curators approve, reject and correct logged replies in Discord.

`/curate review [persona]` answers with a message only the curator sees: the next pending item of
this guild's queue (context and reply with display names, the signals) and the buttons Approve,
Reject, Correct and Skip. Correct opens a modal prefilled with the reply. Each decision replaces
the message in place with the next item.

- Persistent: the buttons are `DynamicItem`s whose custom ids carry everything needed
  (`pb:curate:<action>:<item id>:<skipped>:<persona or *>`), registered in `setup_hook`, with no
  timeout: a button on a review message from before a restart still works, and so does a
  correction modal opened before it (`on_interaction` answers submissions nobody else will).
- Access: Manage Server, or the role in the persona's `[curation] curator_role`
  (`bot.curation.access`), checked here on every interaction: the command, each button and the
  modal, whatever command permissions the server set. A refusal is a short ephemeral line that
  shows no item.
- Guilds: a guild's queue holds only its own items, unless the persona is `[curation] shared`.
- Reactions: removing a 👍/👎 removes that feedback (the chat cog stores it when added).

The queue and the decisions are `bot.store.curation` (discord-free); this cog only converts.
"""
from __future__ import annotations

import logging
import re
from collections import OrderedDict
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.curation.access import REFUSAL, curatable, may_curate
from bot.curation.render import discord_text
from bot.discord_bot._chat_cog import persona_autocomplete
from bot.store import curation
from bot.store.curation import QueueFilter, ReviewItem
from bot.store.feedback import feedback_value, remove_feedback

if TYPE_CHECKING:
    from bot.discord_bot.client import PersonaBot

log = logging.getLogger(__name__)

PREFIX = "pb:curate"
ALL = "*"
LABELS = {"approve": "Approve", "reject": "Reject", "correct": "Correct", "skip": "Skip"}
STYLES = {"approve": discord.ButtonStyle.success, "reject": discord.ButtonStyle.danger,
          "correct": discord.ButtonStyle.primary, "skip": discord.ButtonStyle.secondary}
MODAL_ID = re.compile(rf"{PREFIX}:modal:(?P<item>\d+):(?P<skipped>\d+):(?P<persona>[A-Za-z0-9_*-]+)")
DONE = {"approved": "✅ Approved", "rejected": "🚫 Rejected", "corrected": "✏️ Corrected"}
GONE = "That reply left the queue (its member opted out or was forgotten)."


def _roles(member: discord.abc.User) -> list[tuple[str, str]]:
    return [(str(r.id), r.name) for r in getattr(member, "roles", [])]


def _manage_guild(interaction: discord.Interaction) -> bool:
    perms = interaction.permissions
    return perms.manage_guild or perms.administrator


def _quoted(text: str) -> str:
    # Inside inline code only a backtick or a line break could break out.
    return "`" + text[:50].replace("`", "'").replace("\n", " ") + "`"


async def _refuse(interaction: discord.Interaction, text: str = REFUSAL) -> None:
    log.info("curation refused for user %s in guild %s", interaction.user.id, interaction.guild_id)
    await interaction.response.send_message(text, ephemeral=True)


def _allowed(bot: "PersonaBot", interaction: discord.Interaction, persona_key: str) -> list[str]:
    """The personas this member may curate here, narrowed to `persona_key` (a name, or * for all)."""
    names = curatable(bot.personas, manage_guild=_manage_guild(interaction), roles=_roles(interaction.user))
    return names if persona_key == ALL else [n for n in names if n == persona_key]


async def _queue(bot: "PersonaBot", guild_id: int, personas: list[str]) -> QueueFilter:
    """The pending queue as seen from this guild: its own items, shared personas' from every guild,
    and DMs of personas that belong to this guild alone."""
    shared = tuple(p for p in personas if bot.personas[p].curation.shared)
    dms = []
    for p in personas:
        scope = await curation.training_scope(bot.db, bot.personas[p])
        if scope.guilds is not None and scope.guilds <= {str(guild_id)}:
            dms.append(p)
    return QueueFilter(personas=tuple(personas), status="pending", in_guild=str(guild_id), shared=shared, dm_personas=tuple(dms))


def _where(bot: "PersonaBot", item: ReviewItem) -> str:
    channel_id = item.channel_id
    if channel_id is None:
        return "the terminal" if item.conversation_key.startswith("cli:") else "elsewhere"
    channel = bot.get_channel(int(channel_id))
    if isinstance(channel, discord.Thread):
        parent = channel.parent
        return f"thread “{channel.name}”" + (f" in #{parent.name}" if parent else "")
    if isinstance(channel, (discord.TextChannel, discord.VoiceChannel, discord.ForumChannel)):
        return f"#{channel.name}"
    return "a DM" if item.guild_id is None else "a channel I can't see"


async def screen(bot: "PersonaBot", interaction: discord.Interaction, persona_key: str, skipped: int,
                 note: str = "") -> tuple[str, discord.ui.View | None]:
    """The review message: the next pending item after `skipped` skips, with its buttons (or the end)."""
    personas = _allowed(bot, interaction, persona_key)
    flt = await _queue(bot, interaction.guild_id, personas)
    items = await curation.list_items(bot.db, flt, personas=bot.personas, limit=1, offset=skipped)
    prefix = f"{note}\n" if note else ""
    pending = (await curation.counts(bot.db, None, flt))["pending"]
    if not items:
        end = ("Nothing left to review here. 🎉" if not pending
               else f"End of the queue: {pending} pending item(s) skipped. Run /curate review again to see them.")
        return prefix + end, None
    item = items[0]
    spec = bot.personas[item.persona]
    text = discord_text(item, persona=spec.display_name, where=_where(bot, item), pending=pending)
    return prefix + text, ReviewView(item.id, skipped, persona_key)


class CurateButton(discord.ui.DynamicItem[discord.ui.Button],
                   template=rf"{PREFIX}:(?P<action>approve|reject|correct|skip):(?P<item>\d+):(?P<skipped>\d+):(?P<persona>[A-Za-z0-9_*-]+)"):
    """One of the four review buttons; all its state is in the custom id (persistent across restarts)."""

    def __init__(self, action: str, item_id: int, skipped: int, persona_key: str):
        super().__init__(discord.ui.Button(label=LABELS[action], style=STYLES[action],
                                           custom_id=f"{PREFIX}:{action}:{item_id}:{skipped}:{persona_key}"))
        self.action, self.item_id, self.skipped, self.persona_key = action, item_id, skipped, persona_key

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Button, match: re.Match[str], /):
        return cls(match["action"], int(match["item"]), int(match["skipped"]), match["persona"])

    async def callback(self, interaction: discord.Interaction) -> None:
        bot: PersonaBot = interaction.client  # type: ignore[assignment]
        if interaction.guild_id is None:
            await _refuse(interaction)
            return
        if self.action == "skip":
            if not _allowed(bot, interaction, self.persona_key):
                await _refuse(interaction)
                return
            content, view = await screen(bot, interaction, self.persona_key, self.skipped + 1)
            await interaction.response.edit_message(content=content, view=view)
            return
        item = await curation.get_item(bot.db, self.item_id, personas=bot.personas)
        if item is not None and not _may(bot, interaction, item):
            await _refuse(interaction)
            return
        if item is None:
            if not _allowed(bot, interaction, self.persona_key):
                await _refuse(interaction)
                return
            content, view = await screen(bot, interaction, self.persona_key, self.skipped, note=GONE)
            await interaction.response.edit_message(content=content, view=view)
            return
        if self.action == "correct":
            modal = CorrectModal(item, self.skipped, self.persona_key)
            cog = bot.get_cog(CurationCog.__cog_name__)
            if isinstance(cog, CurationCog):
                cog.opened(modal.custom_id)
            await interaction.response.send_modal(modal)
            return
        status = "approved" if self.action == "approve" else "rejected"
        await decide(bot, interaction, item, status, self.skipped, self.persona_key)


def _may(bot: "PersonaBot", interaction: discord.Interaction, item: ReviewItem) -> bool:
    spec = bot.personas.get(item.persona)
    if spec is None:
        return _manage_guild(interaction)
    if not may_curate(spec, manage_guild=_manage_guild(interaction), roles=_roles(interaction.user)):
        return False
    # Another guild's item is not this guild's to decide, unless the persona is shared.
    return spec.curation.shared or item.guild_id in (None, str(interaction.guild_id))


async def decide(bot: "PersonaBot", interaction: discord.Interaction, item: ReviewItem, status: str, skipped: int,
                 persona_key: str, correction: str | None = None) -> None:
    ok = await curation.curate(bot.db, item.id, status=status, curator=str(interaction.user.id),
                               correction=correction, via="discord")
    note = f"{DONE[status]} item {item.id}." if ok else GONE
    log.info("user %s %s item %s (%s)", interaction.user.id, status if ok else "could not decide", item.id, item.persona)
    content, view = await screen(bot, interaction, persona_key, skipped, note=note)
    await interaction.response.edit_message(content=content, view=view)


class ReviewView(discord.ui.View):
    def __init__(self, item_id: int, skipped: int, persona_key: str):
        super().__init__(timeout=None)
        if len(f"{PREFIX}:correct:{item_id}:{skipped}:{persona_key}") > 100:
            persona_key = ALL    # Discord's custom id limit; a very long persona name reviews every persona
        for action in LABELS:
            self.add_item(CurateButton(action, item_id, skipped, persona_key))


class CorrectModal(discord.ui.Modal):
    """The reply, prefilled and editable; submitting stores the correction and shows the next item."""

    def __init__(self, item: ReviewItem, skipped: int, persona_key: str):
        super().__init__(title=f"Correct item {item.id}"[:45], timeout=None,
                         custom_id=f"{PREFIX}:modal:{item.id}:{skipped}:{persona_key}")
        self.item, self.skipped, self.persona_key = item, skipped, persona_key
        self.text = discord.ui.TextInput(label="Corrected reply (this is what trains)", style=discord.TextStyle.paragraph,
                                         default=item.reply[:4000], max_length=4000, custom_id=f"{PREFIX}:text")
        self.add_item(self.text)

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await submit_correction(interaction.client, interaction, self.item.id, self.skipped, self.persona_key, self.text.value)


async def submit_correction(bot: "PersonaBot", interaction: discord.Interaction, item_id: int, skipped: int,
                            persona_key: str, text: str) -> None:
    """A submitted correction: checked, stored, and the next item shown in place. An unchanged text approves."""
    item = await curation.get_item(bot.db, item_id, personas=bot.personas)
    if interaction.guild_id is None or (item is not None and not _may(bot, interaction, item)):
        await _refuse(interaction)
        return
    text = text.strip()
    if item is None or not text:
        note = GONE if item is None else "An empty correction was not stored; the reply is still pending."
        content, view = await screen(bot, interaction, persona_key, skipped, note=note)
        await interaction.response.edit_message(content=content, view=view)
        return
    if text == item.reply.strip():
        await decide(bot, interaction, item, "approved", skipped, persona_key)
        return
    await decide(bot, interaction, item, "corrected", skipped, persona_key, correction=text)


def _submitted_text(data: dict) -> str:
    """The value of the (only) text input in a MODAL_SUBMIT payload: rows of inputs, or labels around one."""
    stack = list(data.get("components") or [])
    while stack:
        component = stack.pop(0)
        if "value" in component and isinstance(component["value"], str):
            return component["value"]
        stack += component.get("components") or []
        if isinstance(component.get("component"), dict):
            stack.append(component["component"])
    return ""


@app_commands.guild_only()
class CurationCog(commands.GroupCog, group_name="curate", group_description="Review logged replies: approve, reject, correct"):
    def __init__(self, bot: "PersonaBot"):
        self.bot = bot
        # Correction modals opened by this process: discord.py answers their submissions itself. A
        # submission of any other (opened before a restart) is answered by `on_interaction`.
        self._opened: OrderedDict[str, None] = OrderedDict()
        super().__init__()

    def opened(self, custom_id: str) -> None:
        self._opened[custom_id] = None
        while len(self._opened) > 10_000:
            self._opened.popitem(last=False)

    @commands.Cog.listener()
    async def on_interaction(self, interaction: discord.Interaction) -> None:
        if interaction.type is not discord.InteractionType.modal_submit:
            return
        data = interaction.data or {}
        custom_id = str(data.get("custom_id", ""))
        match = MODAL_ID.fullmatch(custom_id)
        if match is None or custom_id in self._opened:
            return
        await submit_correction(self.bot, interaction, int(match["item"]), int(match["skipped"]), match["persona"],
                                _submitted_text(data))

    def _key(self, persona: str | None) -> str | None:
        if persona is None:
            return ALL
        return persona if persona in self.bot.personas else None

    @app_commands.command(name="review")
    @app_commands.describe(persona="Only this persona's replies (default: every persona you may curate)")
    @app_commands.autocomplete(persona=persona_autocomplete)
    async def review(self, interaction: discord.Interaction, persona: str | None = None) -> None:
        """Review logged replies one by one: Approve, Reject, Correct or Skip. Only you see it."""
        key = self._key(persona)
        if key is None:
            await interaction.response.send_message(f"There is no persona called {_quoted(persona)}.", ephemeral=True)
            return
        if not _allowed(self.bot, interaction, key):
            await _refuse(interaction)
            return
        content, view = await screen(self.bot, interaction, key, 0)
        await interaction.response.send_message(content, view=view or discord.utils.MISSING, ephemeral=True)

    @app_commands.command(name="stats")
    @app_commands.describe(persona="Only this persona (default: every persona you may curate)")
    @app_commands.autocomplete(persona=persona_autocomplete)
    async def stats(self, interaction: discord.Interaction, persona: str | None = None) -> None:
        """Replies by status, and how many were approved since the persona's last training run."""
        key = self._key(persona)
        if key is None:
            await interaction.response.send_message(f"There is no persona called {_quoted(persona)}.", ephemeral=True)
            return
        names = _allowed(self.bot, interaction, key)
        if not names:
            await _refuse(interaction)
            return
        db = self.bot.db
        lines = []
        for name in names:
            spec = self.bot.personas[name]
            flt = await _queue(self.bot, interaction.guild_id, [name])
            counts = await curation.counts(db, name, flt)
            cutoff = await curation.last_training_cutoff(db, name)
            new = await curation.count_approved(db, name, cutoff, scope=await curation.training_scope(db, spec))
            since = f"since the last training run ({cutoff[:10]})" if cutoff else "so far (not trained yet)"
            lines.append(f"**{spec.display_name}** (`{name}`): {counts['pending']} pending · {counts['approved']} approved · "
                         f"{counts['rejected']} rejected · {counts['corrected']} corrected · "
                         f"{new} approved or corrected {since}; a scheduled run needs {spec.schedule.min_new_examples}")
        await interaction.response.send_message("\n".join(lines)[:2000], ephemeral=True)

    @commands.Cog.listener()
    async def on_raw_reaction_remove(self, payload: discord.RawReactionActionEvent) -> None:
        if self.bot.user is None or payload.user_id == self.bot.user.id:
            return
        value = feedback_value(str(payload.emoji))
        if value is None:
            return
        removed = await remove_feedback(self.bot.db, user_id=str(payload.user_id),
                                        reply_external_id=str(payload.message_id), value=value)
        log.info("feedback %+d removed on message %s by %s: %s", value, payload.message_id, payload.user_id,
                 "removed" if removed else "nothing stored")
