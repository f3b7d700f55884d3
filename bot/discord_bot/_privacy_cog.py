"""/privacy export and /privacy forget: a member's own data, as a file or gone.

Both run through `bot.store.privacy`, which covers every store of member data. `export` answers
ephemerally with a JSON file. `forget` asks for confirmation with buttons only the asking member can
press, then deletes everything and runs the forget hooks (the trainer marks datasets stale and
adapters tainted).
"""
from __future__ import annotations

import io
import json
import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.store import privacy

if TYPE_CHECKING:
    from bot.discord_bot.client import PersonaBot

log = logging.getLogger(__name__)


class ConfirmForget(discord.ui.View):
    def __init__(self, bot: "PersonaBot", user_id: int):
        super().__init__(timeout=120)
        self.bot = bot
        self.user_id = user_id

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        return interaction.user.id == self.user_id

    @discord.ui.button(label="Delete everything", style=discord.ButtonStyle.danger)
    async def confirm(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        twins = self.bot.get_cog("TwinCog")
        if twins is not None:   # the member's twins are their data too: rows, files and what the bot serves
            await twins.delete_member_twins(str(self.user_id))
        counts = await privacy.forget_user(self.bot.db, str(self.user_id), hooks=self.bot.forget_hooks)
        total = sum(counts.values())
        log.info("forgot user %s: %s", self.user_id, counts)
        self.stop()
        await interaction.response.edit_message(
            content=f"Done: {total} stored item(s) about you were deleted, and you are no longer opted in.", view=None)
        review_cog = self.bot.get_cog("ReviewCog")
        if review_cog is not None:   # reviews whose pairs quoted the member: off Discord now, not at the next poll
            await review_cog.withdraw_forgotten()

    @discord.ui.button(label="Cancel", style=discord.ButtonStyle.secondary)
    async def cancel(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        self.stop()
        await interaction.response.edit_message(content="Nothing was deleted.", view=None)


class PrivacyCog(commands.GroupCog, group_name="privacy", group_description="Your data: export it or delete it"):
    def __init__(self, bot: "PersonaBot"):
        self.bot = bot
        super().__init__()

    @app_commands.command(name="export")
    async def export(self, interaction: discord.Interaction) -> None:
        """Get a JSON file of everything stored about you (only you can see it)."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        data = await privacy.export_user(self.bot.db, str(interaction.user.id))
        blob = json.dumps(data, indent=2, ensure_ascii=False, default=str).encode("utf-8")
        log.info("exported data of user %s: %d bytes", interaction.user.id, len(blob))
        await interaction.followup.send("Everything stored about you:", ephemeral=True,
                                        file=discord.File(io.BytesIO(blob), filename=f"personabot-{interaction.user.id}.json"))

    @app_commands.command(name="forget")
    async def forget(self, interaction: discord.Interaction) -> None:
        """Delete everything stored about you (asks for confirmation first)."""
        await interaction.response.send_message(
            "This deletes every stored message, reply, reaction and consent record of yours, for good. "
            "Models trained on them will be retrained without them. Continue?",
            view=ConfirmForget(self.bot, interaction.user.id), ephemeral=True)
