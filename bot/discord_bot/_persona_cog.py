"""/persona list|info|set|unset: which persona speaks where.

Bindings are per channel; a thread without its own binding inherits its parent channel's. `set` and
`unset` need Manage Channels (checked on the member's permissions in this channel, not only hidden
by default permissions, which server admins can change).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import discord
from discord import app_commands
from discord.ext import commands

from bot.discord_bot._chat_cog import persona_autocomplete
from bot.store import channels as channel_store

if TYPE_CHECKING:
    from bot.discord_bot.client import PersonaBot

MODE_TEXT = {"mention": "answers when mentioned or replied to", "all": "answers every message"}


def _where(interaction: discord.Interaction) -> tuple[str, str | None]:
    channel = interaction.channel
    parent = channel.parent_id if isinstance(channel, discord.Thread) else None
    return str(interaction.channel_id), (str(parent) if parent else None)


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
                + ("\nMay stay silent when silence fits." if spec.may_stay_silent else ""))
        await interaction.response.send_message(text, ephemeral=True)

    @app_commands.command(name="set")
    @app_commands.describe(persona="The persona that speaks in this channel",
                           mode="mention: only when mentioned or replied to; all: every message")
    @app_commands.autocomplete(persona=persona_autocomplete)
    @app_commands.guild_only()
    @app_commands.checks.has_permissions(manage_channels=True)
    async def set_(self, interaction: discord.Interaction, persona: str, mode: Literal["mention", "all"] = "mention") -> None:
        """Make a persona speak in this channel (and its threads). Needs Manage Channels."""
        bot = self.bot
        if persona not in bot.personas:
            await interaction.response.send_message(f"There is no persona called `{persona}`. Try `/persona list`.", ephemeral=True)
            return
        binding = await channel_store.bind_channel(bot.db, str(interaction.channel_id), persona, mode=mode,
                                                   guild_id=str(interaction.guild_id), set_by=str(interaction.user.id))
        bot.directory.bind(binding)
        spec = bot.personas[persona]
        await interaction.response.send_message(f"{spec.display_name} now speaks here and {MODE_TEXT[mode]}.")

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
