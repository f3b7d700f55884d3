"""/consent: the policy, the member's current status, and Opt in / Opt out buttons.

The buttons belong to a persistent view (fixed custom ids, no timeout, registered in setup_hook),
so they keep working after a restart. A decision is stored with the policy version and time by
`bot.store.consent.set_consent`; opting out takes effect for the very next message, because the
one write path checks consent on every exchange.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.conversations.notices import consent_policy
from bot.store.consent import OPTED_IN, get_consent, set_consent

if TYPE_CHECKING:
    from bot.discord_bot.client import PersonaBot

OPT_IN_ID = "personabot:consent:opt-in"
OPT_OUT_ID = "personabot:consent:opt-out"


async def consent_text(bot: "PersonaBot", user_id: int) -> str:
    version = bot.settings.core.consent_policy_version
    record = await get_consent(bot.db, str(user_id))
    if record is None:
        status = "You have not opted in: nothing you write is stored."
    elif record.status == OPTED_IN:
        status = f"You opted in on {record.updated_at[:16].replace('T', ' ')} UTC (policy version {record.policy_version})."
        if record.policy_version != version:
            status += f" The policy has changed since (now version {version}): please read it again."
    else:
        status = f"You opted out on {record.updated_at[:16].replace('T', ' ')} UTC: nothing you write is stored."
    return f"{consent_policy(version)}\n\n**Your status:** {status}"


class ConsentView(discord.ui.View):
    def __init__(self, bot: "PersonaBot"):
        super().__init__(timeout=None)
        self.bot = bot

    async def _decide(self, interaction: discord.Interaction, opted_in: bool) -> None:
        await set_consent(self.bot.db, str(interaction.user.id), opted_in, self.bot.settings.core.consent_policy_version,
                          display_name=interaction.user.display_name)
        await interaction.response.edit_message(content=await consent_text(self.bot, interaction.user.id), view=self)

    @discord.ui.button(label="Opt in", style=discord.ButtonStyle.success, custom_id=OPT_IN_ID)
    async def opt_in(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        await self._decide(interaction, True)

    @discord.ui.button(label="Opt out", style=discord.ButtonStyle.secondary, custom_id=OPT_OUT_ID)
    async def opt_out(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        await self._decide(interaction, False)


class ConsentCog(commands.Cog):
    def __init__(self, bot: "PersonaBot"):
        self.bot = bot

    @app_commands.command(name="consent")
    async def consent(self, interaction: discord.Interaction) -> None:
        """See what is stored about your conversations, and opt in or out."""
        await interaction.response.send_message(await consent_text(self.bot, interaction.user.id),
                                                view=ConsentView(self.bot), ephemeral=True)
