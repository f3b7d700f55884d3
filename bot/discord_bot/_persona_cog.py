"""/persona list|info|set|unset|import|export|delete: which persona speaks where, and personas as cards.

Bindings are per channel; a thread without its own binding inherits its parent channel's. `set` and
`unset` need Manage Channels (checked on the member's permissions in this channel, not only hidden
by default permissions, which server admins can change). `import` (a character card attachment →
a new member persona, served at once) and `export` (the persona as a card file, shown only to the
caller) need Manage Server: a card carries the persona's whole prompt. Both call the Discord-free
`bot.persona.card_files`. `delete` (Manage Server, after a confirmation button only the caller can
press) removes a member persona and everything kept for it (`bot.persona.removal`) and stops
serving it at once; shipped personas are refused, and twins are their owners' (`/twin delete`).
"""
from __future__ import annotations

import asyncio
import io
import logging
from typing import TYPE_CHECKING, Literal

import discord
from discord import app_commands
from discord.ext import commands

from bot.discord_bot._chat_cog import persona_autocomplete
from bot.discord_bot._confirm import ConfirmDelete
from bot.persona import PersonaError, card_files
from bot.persona import removal
from bot.persona.cards import MAX_PNG_BYTES, CardError
from bot.store import channels as channel_store
from bot.store import twins as twin_store

if TYPE_CHECKING:
    from bot.discord_bot.client import PersonaBot

log = logging.getLogger(__name__)

MODE_TEXT = {"mention": "answers when mentioned or replied to", "all": "answers every message"}


def _where(interaction: discord.Interaction) -> tuple[str, str | None]:
    channel = interaction.channel
    parent = channel.parent_id if isinstance(channel, discord.Thread) else None
    return str(interaction.channel_id), (str(parent) if parent else None)


def _card_line(spec) -> str:
    card = spec.card
    by = f" by {card.creator}" if card.creator else ""
    version = f" (version {card.character_version})" if card.character_version else ""
    lore = f"; lorebook of {len(spec.lore.entries)} entries" if spec.lore else ""
    return f"\nFrom a character card{by}{version}{lore}."


class PersonaCog(commands.GroupCog, group_name="persona", group_description="Which persona speaks in this channel"):
    def __init__(self, bot: "PersonaBot"):
        self.bot = bot
        super().__init__()

    @app_commands.command(name="list")
    async def list_(self, interaction: discord.Interaction) -> None:
        """List the personas you can talk to."""
        here = self.bot.directory.persona_for(*_where(interaction))
        lines = [f"**{p.display_name}** (`{p.name}`){' ← here' if p.name == here else ''}: {p.description or 'no description'}"
                 for p in sorted(self.bot.personas.values(), key=lambda p: p.name)]
        await interaction.response.send_message("\n".join(lines), ephemeral=True)

    @app_commands.command(name="info")
    @app_commands.describe(persona="The persona to describe (default: the one speaking here)")
    @app_commands.autocomplete(persona=persona_autocomplete)
    async def info(self, interaction: discord.Interaction, persona: str | None = None) -> None:
        """Show a persona's description, model and how it answers in this channel."""
        bot = self.bot
        if persona is not None and persona not in bot.personas:
            await interaction.response.send_message(f"There is no persona called `{persona}`.", ephemeral=True)
            return
        channel_id, parent_id = _where(interaction)
        spec = bot.persona(persona or bot.directory.persona_for(channel_id, parent_id))
        model = bot.pool.model_spec(spec)
        binding = bot.directory.binding_for(channel_id, parent_id)
        if binding is not None and binding.persona == spec.name:
            inherited = " (inherited from the parent channel)" if binding.channel_id != channel_id else ""
            mode = f"Bound here{inherited}: {MODE_TEXT[binding.mode]}."
        else:
            mode = "Not bound here: answers when mentioned."
        text = (f"**{spec.display_name}** (`{spec.name}`)\n{spec.description}\n"
                f"Model: `{model.adapter or model.model}` on {model.backend}. {mode}"
                + ("\nMay stay silent when silence fits." if spec.may_stay_silent else "")
                + (_card_line(spec) if spec.card else ""))
        await interaction.response.send_message(text, ephemeral=True)

    @app_commands.command(name="set")
    @app_commands.describe(persona="The persona that speaks in this channel",
                           mode="mention: only when mentioned or replied to; all: every message",
                           twins_allowed="Let members share their digital twins in this channel (/twin share)")
    @app_commands.autocomplete(persona=persona_autocomplete)
    @app_commands.guild_only()
    @app_commands.checks.has_permissions(manage_channels=True)
    async def set_(self, interaction: discord.Interaction, persona: str, mode: Literal["mention", "all"] = "mention",
                   twins_allowed: bool = False) -> None:
        """Make a persona speak in this channel (and its threads). Needs Manage Channels."""
        bot = self.bot
        if persona not in bot.personas:
            await interaction.response.send_message(f"There is no persona called `{persona}`. Try `/persona list`.", ephemeral=True)
            return
        if await twin_store.get_twin(bot.db, persona) is not None:
            await interaction.response.send_message("A digital twin speaks only where its owner shares it (`/twin share`), "
                                                    "not as a channel's persona.", ephemeral=True)
            return
        binding = await channel_store.bind_channel(bot.db, str(interaction.channel_id), persona, mode=mode,
                                                   guild_id=str(interaction.guild_id), set_by=str(interaction.user.id))
        await twin_store.allow_twins(bot.db, str(interaction.channel_id), twins_allowed)
        bot.directory.bind(binding)
        spec = bot.personas[persona]
        await interaction.response.send_message(f"{spec.display_name} now speaks here and {MODE_TEXT[mode]}."
                                                + (" Members may share their digital twins here." if twins_allowed else ""))

    @app_commands.command(name="unset")
    @app_commands.guild_only()
    @app_commands.checks.has_permissions(manage_channels=True)
    async def unset(self, interaction: discord.Interaction) -> None:
        """Remove this channel's persona; it falls back to answering mentions as the default. Needs Manage Channels."""
        bot = self.bot
        removed = await channel_store.unbind_channel(bot.db, str(interaction.channel_id))
        bot.directory.unbind(str(interaction.channel_id))
        await interaction.response.send_message("This channel's persona was removed." if removed
                                                else "This channel had no persona of its own.", ephemeral=not removed)

    @app_commands.command(name="import")
    @app_commands.describe(card="A character card: PNG or JSON (Tavern V1, V2 or V3), or a personabot zip with its adapter",
                           name="Persona name (default: made from the character's name)",
                           display_name="Name shown in Discord (default: the card's name)")
    @app_commands.guild_only()
    @app_commands.checks.has_permissions(manage_guild=True)
    async def import_(self, interaction: discord.Interaction, card: discord.Attachment, name: str | None = None,
                      display_name: str | None = None) -> None:
        """Create a persona from a character card (SillyTavern and character sites). Needs Manage Server."""
        bot = self.bot
        if card.size > MAX_PNG_BYTES:
            await interaction.response.send_message(
                f"`{card.filename}` is {card.size / 2**20:.1f} MB; cards may be at most {MAX_PNG_BYTES // 2**20} MB.", ephemeral=True)
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        content = await card.read()
        core = bot.settings.core
        try:
            result = await asyncio.to_thread(card_files.import_card, content, card.filename, dirs=core.persona_dirs(),
                                             dest_root=core.member_personas_dir, name=name, display_name=display_name)
            if result.name in bot.personas:   # a folder removed while the bot runs still holds its name
                raise CardError(f"a persona called {result.name!r} is already served; choose another name")
        except CardError as exc:
            await interaction.followup.send(f"I couldn't import `{card.filename}`:\n{exc}"[:2000], ephemeral=True)
            return
        bot.add_persona(result.spec)
        spec = result.spec
        log.info("user %s imported card %s as persona %s", interaction.user.id, result.card.spec, spec.name)
        lore = len(spec.lore.entries) if spec.lore else 0
        notes = "".join(f"\n⚠️ {w}" for w in result.warnings)
        await interaction.followup.send(
            f"Imported **{spec.display_name}** as `{spec.name}` ({result.card.spec}; {result.examples} example dialogue(s), "
            f"{lore} lorebook entr{'y' if lore == 1 else 'ies'}). Talk to it with `/chat persona:{spec.name}` "
            f"or bind it to a channel with `/persona set`.{notes}"[:2000], ephemeral=True)

    @app_commands.command(name="export")
    @app_commands.describe(persona="The persona to export", format="png: a card image (V2 + V3 chunks); json: the card alone")
    @app_commands.autocomplete(persona=persona_autocomplete)
    @app_commands.guild_only()
    @app_commands.checks.has_permissions(manage_guild=True)
    async def export(self, interaction: discord.Interaction, persona: str, format: Literal["png", "json"] = "png") -> None:
        """Get a persona as a character card file, with its provenance and without its weights. Needs Manage Server."""
        bot = self.bot
        spec = bot.personas.get(persona)
        if spec is None:
            await interaction.response.send_message(f"There is no persona called `{persona}`.", ephemeral=True)
            return
        twin = await twin_store.get_twin(bot.db, persona)
        if twin is not None and not twin_store.is_owner(twin, str(interaction.user.id)):
            await interaction.response.send_message("Only this twin's owner can export it.", ephemeral=True)
            return
        prov = await card_files.provenance(bot.db, spec, model_override=bot.pool.model_spec(spec))
        data = await asyncio.to_thread(card_files.export_card, spec, prov, format)
        limit = interaction.filesize_limit
        if len(data) > limit:
            await interaction.response.send_message(f"The card is {len(data):,} bytes, over this server's upload limit; "
                                                    "use `personabot persona export` on the host.", ephemeral=True)
            return
        version = (prov.get("active_version") or {}).get("name") or "no trained version"
        await interaction.response.send_message(
            f"**{spec.display_name}** as a character card ({version}; {prov['consent']}).",
            file=discord.File(io.BytesIO(data), filename=f"{spec.name}.{format}"), ephemeral=True)

    @app_commands.command(name="delete")
    @app_commands.describe(persona="The member persona to delete (imported from a card)")
    @app_commands.autocomplete(persona=persona_autocomplete)
    @app_commands.guild_only()
    @app_commands.checks.has_permissions(manage_guild=True)
    async def delete(self, interaction: discord.Interaction, persona: str) -> None:
        """Delete an imported persona with its adapters, datasets and logged chats (asks first). Needs Manage Server."""
        bot = self.bot
        if removal.is_shipped(bot.settings, persona):
            await interaction.response.send_message(f"`{persona}` ships with the bot; only imported personas can be deleted.",
                                                    ephemeral=True)
            return
        if await twin_store.get_twin(bot.db, persona) is not None:
            await interaction.response.send_message(f"`{persona}` is a digital twin: its owner deletes it with `/twin delete`.",
                                                    ephemeral=True)
            return
        if persona not in bot.personas and not (bot.settings.core.member_personas_dir / persona).exists():
            await interaction.response.send_message(f"There is no persona called `{persona}`.", ephemeral=True)
            return
        label = bot.personas[persona].display_name if persona in bot.personas else persona
        await interaction.response.send_message(
            f"This deletes **{label}** (`{persona}`): its card, trained adapters, datasets, model versions, channel "
            "settings and the conversations logged with it, for good. Continue?",
            view=ConfirmDelete(interaction.user.id, label="Delete the persona and its data",
                               refusal="Only the admin who asked can confirm this.", expected=(PersonaError,),
                               delete=lambda: self._delete_report(persona, interaction.user.id)),
            ephemeral=True)

    async def _delete_report(self, persona: str, admin_id: int) -> str:
        bot = self.bot
        report = await removal.delete_member_persona(bot.db, bot.settings, persona)
        bot.retire_persona(persona)
        rows = sum(report["rows"].values())
        log.info("user %s deleted persona %s: %d rows", admin_id, persona, rows)
        return f"Deleted `{persona}`: {rows} stored rows and {len(report['removed'])} folders/files. It no longer answers anywhere."
