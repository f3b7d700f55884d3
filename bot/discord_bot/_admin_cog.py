"""/admin status: backends reachable, the model serving each persona, and the generation queue."""
from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

if TYPE_CHECKING:
    from bot.discord_bot.client import PersonaBot

log = logging.getLogger(__name__)

HEALTH_TIMEOUT_S = 5.0


@app_commands.guild_only()
@app_commands.default_permissions(manage_guild=True)
class AdminCog(commands.GroupCog, group_name="admin", group_description="Bot administration"):
    def __init__(self, bot: "PersonaBot"):
        self.bot = bot
        super().__init__()

    @app_commands.command(name="status")
    @app_commands.checks.has_permissions(manage_guild=True)
    async def status(self, interaction: discord.Interaction) -> None:
        """Show whether the model backends answer, which model serves each persona, and the queue. Needs Manage Server."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        bot = self.bot
        lines = ["**Personas**"]
        for spec in sorted(bot.personas.values(), key=lambda p: p.name):
            try:
                backend = bot.pool.for_persona(spec)
                model = backend.model_name
                health = await asyncio.wait_for(backend.health(), HEALTH_TIMEOUT_S)
                state = f"✅ {health}"
            except asyncio.TimeoutError:
                model, state = _configured(bot, spec), f"❌ no answer in {HEALTH_TIMEOUT_S:.0f} s"
            except Exception as exc:  # report any backend failure by type, never crash the command
                model, state = _configured(bot, spec), f"❌ {type(exc).__name__}"
            lines.append(f"• **{spec.display_name}** (`{spec.name}`): model `{model}`: {state}")
            if bot.model_sync is not None:
                routed = bot.model_sync.state().get(spec.name, {})
                version = routed.get("version") or "the spec's model (no active version)"
                lines.append(f"  active version: `{version}`" + (f" ⚠️ newer version not applied: {routed['error'][:150]}"
                                                                if routed.get("error") else ""))
        gate, conv = bot.gate, bot.conversations
        lines += [
            "**Queue**",
            f"• generating {gate.running}/{gate.max_concurrent}, waiting {gate.waiting}/{gate.max_queue}",
            f"• conversations with work: {conv.active}, messages folded into next turns: {conv.pending}",
            f"• gateway latency: {bot.latency * 1000:.0f} ms" if bot.latency == bot.latency else "• gateway latency: unknown",
        ]
        await interaction.followup.send("\n".join(lines), ephemeral=True)


def _configured(bot: "PersonaBot", spec) -> str:
    model = bot.pool.model_spec(spec)
    return model.adapter or model.model
