"""/admin status: backends reachable, the model serving each persona, the generation queue, the Discord
request budget, and channels where Discord refuses the bot something.

It never builds a backend (that may load a model for a minute): a persona whose backend is not
built yet is shown as such.
"""
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
        """Show model backends, the queue, Discord request rate and channels with missing permissions. Needs Manage Server."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        bot = self.bot
        lines = ["**Personas**"]
        for spec in sorted(bot.personas.values(), key=lambda p: p.name):
            try:
                backend = bot.pool.built(spec)
                if backend is None:
                    lines.append(f"• **{spec.display_name}** (`{spec.name}`): model `{_configured(bot, spec)}`: "
                                 "⏳ not loaded yet (it loads in the background, or on its first message)")
                    continue
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
        budget = bot.requests
        lines += [
            "**Discord requests**",
            f"• {budget.rate():.1f}/s now (peak {budget.peak_rate:.0f}/s, budget {budget.rate_limit:g}/s), "
            f"{budget.total()} sent, {budget.rate_limited} rate-limited (429), {budget.waiting} waiting",
            f"• replies streaming: {budget.streams}, edits coalesced: {budget.coalesced_edits}",
        ]
        problems = bot.channel_problems.current()
        if problems:
            lines.append("**Channels with problems**")
            for problem in problems[:20]:
                what = f"missing **{problem.need}**" if problem.need != "history unreadable" else "history unreadable"
                lines.append(f"• <#{problem.channel_id}>: {what} ({problem.detail})")
            if len(problems) > 20:
                lines.append(f"• … and {len(problems) - 20} more")
        else:
            lines.append("**Channels with problems**: none seen")
        await interaction.followup.send("\n".join(lines)[:2000], ephemeral=True)


def _configured(bot: "PersonaBot", spec) -> str:
    model = bot.pool.model_spec(spec)
    return model.adapter or model.model
