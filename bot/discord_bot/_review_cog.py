"""/model review: admins compare a new version's replies with the current one's, blind, then promote or keep.

`/model review persona:NAME` (Manage Server) posts, in the persona's admin channel
(`[schedule] admin_channel_id`, else the channel where it was used), the gate's numbers and a
thread holding K blind pairs ("Reply 1 / Reply 2" in the random order stored with the review, so
nobody can tell which reply is new), each with the buttons "1 is better", "2 is better" and
"Same", and at the end "Promote" and "Keep current". Promote works only once at least K/2 pairs
carry a vote. The scheduler opens reviews by itself for `[gate] promote = "review"` personas; the
bot posts those (`reviews.unposted`) within `poll_s` seconds.

- Persistent: every button is a `DynamicItem` whose custom id carries the review and the pair
  (`pb:review:vote:<review>:<pair>:<1|2|same>`, `pb:review:end:<review>:<promote|keep>`),
  registered in `setup_hook`, so the buttons of a review posted before a restart still work.
- Access: Manage Server, checked on the command and on every button (whatever command
  permissions the server set); a refusal is a short ephemeral line.
- The reviews, votes and decisions are `bot.store.reviews` (discord-free); promoting goes through
  `trainer.review` (imported when a button is pressed, never at start-up), and the running bot
  follows the registry at once through its model sync.
"""
from __future__ import annotations

import asyncio
import logging
import re
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.discord_bot._chat_cog import persona_autocomplete
from bot.store import reviews
from bot.store.reviews import Review

if TYPE_CHECKING:
    from bot.discord_bot.client import PersonaBot

log = logging.getLogger(__name__)

PREFIX = "pb:review"
REFUSAL = "Only members with Manage Server may review and promote model versions."
VOTE_LABELS = {"1": "1 is better", "2": "2 is better", "same": "Same"}
END_LABELS = {"promote": "Promote", "keep": "Keep current"}
CHOSEN = {"1": "Reply 1 is better", "2": "Reply 2 is better", "same": "both are the same"}


def _admin(interaction: discord.Interaction) -> bool:
    perms = interaction.permissions
    return interaction.guild_id is not None and (perms.manage_guild or perms.administrator)


async def _refuse(interaction: discord.Interaction) -> None:
    log.info("model review refused for user %s in guild %s", interaction.user.id, interaction.guild_id)
    await interaction.response.send_message(REFUSAL, ephemeral=True)


def _quote(text: str, limit: int) -> str:
    text = discord.utils.escape_mentions(text.strip()) or "(nothing)"
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    return "\n".join("> " + line for line in text.splitlines())


def pair_text(spec, review: Review, index: int) -> str:
    """One blind pair: the last turns of the context, then Reply 1 and Reply 2 (under 2000 characters)."""
    pair = review.pairs[index]
    one, two = pair.shown()
    context = []
    for m in pair.messages[-3:]:
        who = spec.display_name if m["role"] == "assistant" else spec.user_label
        context.append(f"**{who}:** {discord.utils.escape_mentions(m['content'].strip())[:300]}")
    return (f"**Pair {index + 1} of {len(review.pairs)}**\n" + "\n".join(context) +
            f"\n\n**Reply 1**\n{_quote(one, 600)}\n\n**Reply 2**\n{_quote(two, 600)}")[:2000]


class VoteButton(discord.ui.DynamicItem[discord.ui.Button],
                 template=rf"{PREFIX}:vote:(?P<review>\d+):(?P<pair>\d+):(?P<shown>1|2|same)"):
    """"1 is better" / "2 is better" / "Same" on one pair; all its state is in the custom id."""

    def __init__(self, review_id: int, pair: int, shown: str):
        style = discord.ButtonStyle.secondary if shown == "same" else discord.ButtonStyle.primary
        super().__init__(discord.ui.Button(label=VOTE_LABELS[shown], style=style,
                                           custom_id=f"{PREFIX}:vote:{review_id}:{pair}:{shown}"))
        self.review_id, self.pair, self.shown = review_id, pair, shown

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Button, match: re.Match[str], /):
        return cls(int(match["review"]), int(match["pair"]), match["shown"])

    async def callback(self, interaction: discord.Interaction) -> None:
        if not _admin(interaction):
            await _refuse(interaction)
            return
        bot: PersonaBot = interaction.client  # type: ignore[assignment]
        try:
            await reviews.vote(bot.db, self.review_id, self.pair, str(interaction.user.id), self.shown, via="discord")
        except LookupError as exc:
            await interaction.response.send_message(f"This vote was not counted: {exc}.", ephemeral=True)
            return
        tally = await reviews.tally(bot.db, self.review_id)
        log.info("user %s voted on pair %s of review %s", interaction.user.id, self.pair, self.review_id)
        left = max(0, tally.needed - tally.pairs_voted)
        await interaction.response.send_message(
            f"Your vote on pair {self.pair + 1}: {CHOSEN[self.shown]}. {tally.pairs_voted} pair(s) voted"
            + (f"; {left} more before Promote is possible." if left else "; Promote is possible."), ephemeral=True)


class EndButton(discord.ui.DynamicItem[discord.ui.Button], template=rf"{PREFIX}:end:(?P<review>\d+):(?P<action>promote|keep)"):
    """"Promote" / "Keep current" at the end of the thread."""

    def __init__(self, review_id: int, action: str):
        style = discord.ButtonStyle.success if action == "promote" else discord.ButtonStyle.danger
        super().__init__(discord.ui.Button(label=END_LABELS[action], style=style,
                                           custom_id=f"{PREFIX}:end:{review_id}:{action}"))
        self.review_id, self.action = review_id, action

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Button, match: re.Match[str], /):
        return cls(int(match["review"]), match["action"])

    async def callback(self, interaction: discord.Interaction) -> None:
        if not _admin(interaction):
            await _refuse(interaction)
            return
        bot: PersonaBot = interaction.client  # type: ignore[assignment]
        review = await reviews.get_review(bot.db, self.review_id)
        spec = bot.personas.get(review.persona) if review else None
        if review is None or spec is None:
            await interaction.response.send_message("That review no longer exists.", ephemeral=True)
            return
        from trainer.review import ReviewError, finish_review

        # Refusals first, while the answer can still be private.
        if review.status != "open":
            await interaction.response.send_message(f"This review is already closed ({review.status}).", ephemeral=True)
            return
        tally = await reviews.tally(bot.db, review.id)
        if self.action == "promote" and not tally.can_decide:
            await interaction.response.send_message(
                f"Vote on at least {tally.needed} of the {len(review.pairs)} pairs before promoting "
                f"({tally.pairs_voted} voted so far).", ephemeral=True)
            return
        await interaction.response.defer(thinking=True)   # promoting may load an adapter on vLLM first
        try:
            line = await finish_review(bot.db, bot.settings, spec, review.id, self.action, str(interaction.user.id),
                                       on_switched=_switched(bot))
        except ReviewError as exc:
            await interaction.followup.send(f"Not done: {exc}.", ephemeral=True)
            return
        log.info("user %s chose %s on review %s (%s)", interaction.user.id, self.action, review.id, review.candidate)
        await interaction.followup.send(f"{'🚀' if self.action == 'promote' else '🛑'} {line} "
                                        f"(decided by {interaction.user.mention})")
        if interaction.message is not None:
            await interaction.message.edit(view=None)


def _switched(bot: "PersonaBot"):
    """After a promotion: the running bot's model sync follows at once (else at its next poll)."""
    async def switched(persona, version) -> None:
        if bot.model_sync is not None:
            bot.model_sync.notify()

    return switched


class PairView(discord.ui.View):
    def __init__(self, review_id: int, pair: int):
        super().__init__(timeout=None)
        for shown in VOTE_LABELS:
            self.add_item(VoteButton(review_id, pair, shown))


class EndView(discord.ui.View):
    def __init__(self, review_id: int):
        super().__init__(timeout=None)
        for action in END_LABELS:
            self.add_item(EndButton(review_id, action))


WITHDRAWN = ("This review was withdrawn: its reply pairs quoted conversations of a member who asked to be "
             "forgotten, so they were deleted. Its votes and decision are kept.")


async def post_review(bot: "PersonaBot", review: Review, channel: discord.abc.Messageable) -> discord.Thread:
    """The gate's numbers in `channel`, then a thread with the blind pairs and the end buttons."""
    spec = bot.personas[review.persona]
    header = await channel.send(
        f"🧑‍⚖️ **{spec.display_name}: a new version waits for review** ({len(review.pairs)} blind pairs; "
        f"promote after votes on at least {review.needed_votes})\n```\n{review.gate[:1500]}\n```")
    thread = await channel.create_thread(name=f"Review: {spec.display_name} #{review.id}"[:100],
                                         type=discord.ChannelType.public_thread, auto_archive_duration=10080)
    await thread.send("Which reply is better? The order is random: you cannot tell which one is new. "
                      "Only members with Manage Server can vote.")
    for i in range(len(review.pairs)):
        await thread.send(pair_text(spec, review, i), view=PairView(review.id, i))
    await thread.send(f"When enough pairs are voted: **Promote** makes the new version serve {spec.display_name}; "
                      "**Keep current** leaves things as they are.", view=EndView(review.id))
    await reviews.mark_posted(bot.db, review.id, channel_id=str(channel.id), message_id=str(header.id),
                              thread_id=str(thread.id))
    return thread


@app_commands.guild_only()
@app_commands.default_permissions(manage_guild=True)
class ReviewCog(commands.GroupCog, group_name="model", group_description="Model versions: human review before promotion"):
    def __init__(self, bot: "PersonaBot", *, poll_s: float = 30.0):
        self.bot = bot
        self.poll_s = poll_s
        self._task: asyncio.Task | None = None
        super().__init__()

    async def cog_load(self) -> None:
        self._task = asyncio.create_task(self._post_queued(), name="model-reviews")

    async def cog_unload(self) -> None:
        if self._task is not None:
            self._task.cancel()

    @app_commands.command(name="review")
    @app_commands.describe(persona="The persona whose new version to review")
    @app_commands.autocomplete(persona=persona_autocomplete)
    async def review(self, interaction: discord.Interaction, persona: str) -> None:
        """Compare a new version's replies with the current ones, blind, then promote it or keep the current one."""
        if not _admin(interaction):
            await _refuse(interaction)
            return
        spec = self.bot.personas.get(persona)
        if spec is None:
            await interaction.response.send_message("There is no persona by that name.", ephemeral=True)
            return
        from trainer.review import ReviewError, start_review

        await interaction.response.defer(ephemeral=True, thinking=True)
        try:
            review = await start_review(self.bot.db, spec, requested_by=str(interaction.user.id))
        except ReviewError as exc:
            await interaction.followup.send(f"Nothing to review: {exc}.", ephemeral=True)
            return
        channel = await self._admin_channel(spec) or interaction.channel
        if isinstance(channel, discord.Thread):   # asked inside a thread: the review gets a thread of its parent's
            channel = channel.parent or await self.bot.fetch_channel(channel.parent_id)
        thread = await post_review(self.bot, review, channel)
        await interaction.followup.send(f"Posted the review of {spec.display_name}'s new version in {thread.mention}.",
                                        ephemeral=True)

    async def _admin_channel(self, spec):
        channel_id = spec.schedule.admin_channel_id
        if not channel_id:
            return None
        return self.bot.get_channel(channel_id) or await self.bot.fetch_channel(channel_id)

    async def post_queued(self) -> int:
        """Post the reviews the scheduler opened to each persona's admin channel; returns how many."""
        posted = 0
        for review in await reviews.unposted(self.bot.db):
            spec = self.bot.personas.get(review.persona)
            channel = await self._admin_channel(spec) if spec else None
            if channel is None:
                continue   # no admin channel: `/model review` posts it where an admin asks
            await post_review(self.bot, review, channel)
            posted += 1
        return posted

    async def withdraw_forgotten(self) -> int:
        """Delete what the bot posted of reviews whose pairs a forget dropped (their contexts quoted a
        forgotten member): every message of ours in the review thread, then a line saying why. The
        bot's own messages need no permission to delete. Returns how many reviews were withdrawn."""
        withdrawn = 0
        for review_id, thread_id, _ in await reviews.to_withdraw(self.bot.db):
            try:
                thread = self.bot.get_channel(int(thread_id)) or await self.bot.fetch_channel(int(thread_id))
                me = self.bot.user.id
                async for message in thread.history(limit=None):
                    if message.author.id == me:
                        await message.delete()
                await thread.send(WITHDRAWN)
            except discord.NotFound:
                pass   # the thread is gone already: nothing of it is left to delete
            except discord.HTTPException as exc:   # retried on the next poll
                log.warning("could not withdraw review %s from thread %s: HTTP %s", review_id, thread_id, exc.status)
                continue
            await reviews.mark_withdrawn(self.bot.db, review_id)
            log.info("withdrew review %s from thread %s: a member its pairs quoted was forgotten", review_id, thread_id)
            withdrawn += 1
        return withdrawn

    async def _post_queued(self) -> None:
        await self.bot.wait_until_ready()
        while True:
            for step in (self.post_queued, self.withdraw_forgotten):
                try:
                    await step()
                except Exception:  # an unreachable channel must not stop the bot; it is tried again next time
                    log.exception("%s failed", step.__name__)
            await asyncio.sleep(self.poll_s)
