"""/twin create|import|build|chat|share|unshare|insights|delete: a member's digital twin, in DMs.

A thin caller of `trainer.twin` (imported lazily: the bot never imports trainer code at start-up)
and `bot.store.twins`. Every action on an existing twin goes through `_owned`, which refuses anyone
but the twin's owner. Private work (create, import, build, insights, delete, chat) happens in a DM
with the bot; `share`/`unshare` run in the guild channel concerned, and only where the server's
admins allowed twins (`/persona set ... twins_allowed:True`). There, members talk to it with
`/chat persona:NAME`, and its replies carry its "NAME (AI twin)" display name as webhook name.

Import: size and file type are checked before downloading; the member attests with a button that
the data is their own; the upload is written under `<data_dir>/uploads/<twin>/`, parsed, and
deleted in a `finally` right after; they pick which identity in the export is them; only the
scrubbed messages are stored, and the report (messages, sessions, posts, PII redacted by type,
skipped by reason) answers in the DM. Builds are queued one at a time; progress is one DM message
edited now and then, and the result with the gate's report a new DM.
"""
from __future__ import annotations

import asyncio
import io
import logging
import secrets
import time
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import discord
from discord import app_commands
from discord.ext import commands

from bot.discord_bot._confirm import ConfirmDelete
from bot.store import channels as channel_store
from bot.store import twins as twin_store

if TYPE_CHECKING:
    from bot.discord_bot.client import PersonaBot

log = logging.getLogger(__name__)

KINDS = Literal["twitter", "discord-package", "discord-exporter", "telegram", "whatsapp", "facebook",
                "instagram", "facebook-posts", "instagram-posts"]
PROGRESS_EDIT_S = 5.0
NOT_OWNER = "Only this twin's owner can do that."


def _in_dm(interaction: discord.Interaction) -> bool:
    return interaction.guild is None


async def twin_autocomplete(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
    bot: PersonaBot = interaction.client  # type: ignore[assignment]
    mine = await twin_store.list_twins(bot.db, str(interaction.user.id))
    return [app_commands.Choice(name=t.persona, value=t.persona) for t in mine if current.lower() in t.persona][:25]


class _OwnerView(discord.ui.View):
    """Buttons only the twin's owner may press."""

    def __init__(self, owner_id: int, timeout: float = 600):
        super().__init__(timeout=timeout)
        self.owner_id = owner_id

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        if interaction.user.id != self.owner_id:
            await interaction.response.send_message(NOT_OWNER, ephemeral=True)
            return False
        return True


class ImportFlow(_OwnerView):
    """Attest → download, parse, delete the upload → choose the identity that is you → store."""

    def __init__(self, cog: "TwinCog", twin: twin_store.Twin, attachment: discord.Attachment, kind: str | None, owner_id: int):
        super().__init__(owner_id)
        self.cog, self.twin, self.attachment, self.kind = cog, twin, attachment, kind
        self.parsed = None
        attest = discord.ui.Button(label="This is my own data", style=discord.ButtonStyle.success, custom_id="twin:attest")
        attest.callback = self.attest
        cancel = discord.ui.Button(label="Cancel", style=discord.ButtonStyle.secondary, custom_id="twin:cancel")
        cancel.callback = self.cancel
        self.add_item(attest)
        self.add_item(cancel)

    async def cancel(self, interaction: discord.Interaction) -> None:
        self.stop()
        await interaction.response.edit_message(content="Import cancelled; nothing was downloaded or stored.", view=None)

    async def attest(self, interaction: discord.Interaction) -> None:
        from trainer.twin import TwinError
        from trainer.twin.uploads import parse_upload

        await interaction.response.defer()
        folder = self.cog.bot.settings.core.data_dir / "uploads" / self.twin.persona
        raw = folder / f"{secrets.token_hex(8)}{Path(self.attachment.filename).suffix.lower()}"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            await self.attachment.save(raw)
            self.parsed = await asyncio.to_thread(parse_upload, raw, self.attachment.filename, self.kind)
        except TwinError as exc:
            self.stop()
            await interaction.edit_original_response(content=str(exc)[:2000], view=None)
            return
        except discord.HTTPException as exc:
            self.stop()
            await interaction.edit_original_response(content=f"I couldn't download the file (HTTP {exc.status}); try again.", view=None)
            return
        finally:
            raw.unlink(missing_ok=True)     # the raw upload never outlives the parse
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
        self.clear_items()
        for i, identity in enumerate(self.parsed.identities[:20]):
            button = discord.ui.Button(label=identity.label()[:80], custom_id=f"twin:identity:{i}",
                                       style=discord.ButtonStyle.primary if identity.export_owner else discord.ButtonStyle.secondary)
            button.callback = self._chooser(identity.id)
            self.add_item(button)
        await interaction.edit_original_response(
            content=f"Read `{self.attachment.filename}` as **{self.parsed.kind}** (your upload is already deleted). "
                    "Which of these is you?", view=self)

    def _chooser(self, identity_id: str):
        async def choose(interaction: discord.Interaction) -> None:
            from trainer.twin import TwinError
            from trainer.twin.uploads import report_text, save_upload

            self.stop()
            await interaction.response.defer()
            bot = self.cog.bot
            try:
                report = await save_upload(bot.db, self.twin.persona, self.twin.owner_name, self.parsed, identity_id)
            except TwinError as exc:
                await interaction.edit_original_response(content=f"Nothing was imported: {exc}"[:2000], view=None)
                return
            finally:
                self.parsed = None
            await twin_store.set_owner_ids(bot.db, self.twin.persona, [*self.twin.owner_ids, identity_id])
            log.info("user %s imported a %s export into twin %s: %d messages", interaction.user.id, report["kind"],
                     self.twin.persona, report["messages"])
            await interaction.edit_original_response(content=report_text(self.cog.label(self.twin.persona), report)[:2000], view=None)
        return choose


class TwinCog(commands.GroupCog, group_name="twin", group_description="Your digital twin: a persona that writes like you"):
    def __init__(self, bot: "PersonaBot"):
        self.bot = bot
        self._build_lock = asyncio.Lock()
        self._tasks: set[asyncio.Task] = set()
        super().__init__()

    async def cog_unload(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def label(self, name: str) -> str:
        spec = self.bot.personas.get(name)
        return spec.display_name if spec else name

    async def _owned(self, interaction: discord.Interaction, name: str, *, dm: bool = True) -> twin_store.Twin | None:
        """The twin, when the caller owns it (and is in a DM where `dm`); else answers why not."""
        twin = await twin_store.get_twin(self.bot.db, name)
        if twin is None:
            await interaction.response.send_message(f"There is no twin called `{name}`.", ephemeral=True)
            return None
        if not twin_store.is_owner(twin, str(interaction.user.id)):
            log.info("user %s refused on twin %s: not the owner", interaction.user.id, name)
            await interaction.response.send_message(NOT_OWNER, ephemeral=True)
            return None
        if dm and not _in_dm(interaction):
            await interaction.response.send_message("Use this in a DM with me: your data stays between us.", ephemeral=True)
            return None
        return twin

    @app_commands.command(name="create")
    @app_commands.describe(name="Your twin's name (lower case, e.g. sam)", owner_name="Your name as the twin shows it, e.g. Sam")
    async def create(self, interaction: discord.Interaction, name: str, owner_name: str) -> None:
        """Create your digital twin (in a DM with me)."""
        from trainer.twin import TwinError
        from trainer.twin.create import create_twin

        if not _in_dm(interaction):
            await interaction.response.send_message("Use this in a DM with me: your data stays between us.", ephemeral=True)
            return
        bot = self.bot
        if name in bot.personas:
            await interaction.response.send_message(f"A persona called `{name}` already exists; choose another name.")
            return
        try:
            spec = await create_twin(bot.db, bot.settings, name, owner_name=owner_name, discord_owner_id=str(interaction.user.id),
                                     model=bot.settings.core.twin_model)
        except TwinError as exc:
            await interaction.response.send_message(str(exc)[:2000])
            return
        bot.add_persona(spec)
        log.info("user %s created twin %s", interaction.user.id, name)
        await interaction.response.send_message(
            f"Created **{spec.display_name}** (`{name}`). Next: `/twin import twin:{name}` with your export attached "
            f"(a Twitter/X archive, a Discord data package, WhatsApp, Telegram, Facebook or Instagram), then `/twin build`.")

    @app_commands.command(name="import")
    @app_commands.describe(twin="Your twin", file="Your export: the .zip your service gave you, or a file from it",
                           kind="What kind of export it is (default: I detect it)")
    @app_commands.autocomplete(twin=twin_autocomplete)
    async def import_(self, interaction: discord.Interaction, twin: str, file: discord.Attachment, kind: KINDS | None = None) -> None:
        """Import your own export into your twin (asks you to confirm it is your data)."""
        from trainer.twin import TwinError
        from trainer.twin.uploads import check_upload

        found = await self._owned(interaction, twin)
        if found is None:
            return
        try:
            check_upload(file.filename, file.size, int(self.bot.settings.core.twin_upload_max_mb * 2**20))
        except TwinError as exc:
            await interaction.response.send_message(str(exc)[:2000])
            return
        await interaction.response.send_message(
            f"Before I read `{file.filename}`: is this **your own** data? Import only exports of your own account. "
            "Other people's names and contact details in it are pseudonymised or redacted, and the upload is deleted "
            "right after reading.", view=ImportFlow(self, found, file, kind, interaction.user.id))

    @app_commands.command(name="build")
    @app_commands.describe(twin="Your twin", max_steps="Stop training after this many steps (a quick first try)")
    @app_commands.autocomplete(twin=twin_autocomplete)
    async def build(self, interaction: discord.Interaction, twin: str, max_steps: app_commands.Range[int, 1, 100000] | None = None) -> None:
        """Train your twin on what you imported: dataset, training, evaluation. I DM you progress and the result."""
        found = await self._owned(interaction, twin)
        if found is None:
            return
        queued = self._build_lock.locked()
        await interaction.response.send_message(
            f"Queued: {'another build runs first; ' if queued else ''}I'll post progress and the result here.")
        task = asyncio.create_task(self._run_build(interaction.channel, twin, max_steps), name=f"twin-build-{twin}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_build(self, channel, twin: str, max_steps: int | None) -> None:
        from trainer.twin import TwinError
        from trainer.twin.build import build_twin

        bot = self.bot
        async with self._build_lock:
            status = await channel.send(f"Building {self.label(twin)}: reading your data…")
            last = [0.0]
            pending: dict = {}

            def progress(stage: str, detail: str, done, total) -> None:
                pending["text"] = f"Building {self.label(twin)}: {stage} {detail}" + (f" ({done}/{total})" if total else "")

            async def pump():
                while True:
                    await asyncio.sleep(PROGRESS_EDIT_S)
                    text = pending.pop("text", None)
                    if text and time.monotonic() - last[0] >= PROGRESS_EDIT_S:
                        last[0] = time.monotonic()
                        try:
                            await status.edit(content=text[:2000])
                        except discord.HTTPException:
                            pass
            pumper = asyncio.create_task(pump())
            try:
                spec = bot.personas[twin]
                result = await build_twin(bot.db, bot.settings, spec, max_steps=max_steps, progress=progress)
                text = result.text()
            except TwinError as exc:
                text = f"The build stopped: {exc}"
            except Exception as exc:   # a failed build is reported to its owner, never silent
                log.exception("twin build %s failed", twin)
                text = f"The build failed ({type(exc).__name__}); the admins can find it in the logs."
            finally:
                pumper.cancel()
            for start in range(0, len(text), 1900):
                await channel.send(text[start:start + 1900])

    @app_commands.command(name="chat")
    @app_commands.describe(twin="Your twin (leave empty to talk to the default persona again)")
    @app_commands.autocomplete(twin=twin_autocomplete)
    async def chat(self, interaction: discord.Interaction, twin: str | None = None) -> None:
        """Talk with your twin here in our DM."""
        bot = self.bot
        channel_id = str(interaction.channel_id)
        if twin is None:
            await channel_store.unbind_channel(bot.db, channel_id)
            bot.directory.unbind(channel_id)
            await interaction.response.send_message("Back to the default persona here.")
            return
        found = await self._owned(interaction, twin)
        if found is None:
            return
        binding = await channel_store.bind_channel(bot.db, channel_id, twin, mode="all", set_by=str(interaction.user.id))
        bot.directory.bind(binding)
        await interaction.response.send_message(f"You're now talking with **{self.label(twin)}** here: just write. "
                                                "`/twin chat` without a twin switches back.")

    @app_commands.command(name="share")
    @app_commands.describe(twin="Your twin")
    @app_commands.autocomplete(twin=twin_autocomplete)
    @app_commands.guild_only()
    async def share(self, interaction: discord.Interaction, twin: str) -> None:
        """Let members talk to your twin in this channel (only where the admins allowed twins)."""
        found = await self._owned(interaction, twin, dm=False)
        if found is None:
            return
        try:
            await twin_store.share(self.bot.db, twin, str(interaction.channel_id), str(interaction.guild_id))
        except twin_store.TwinAccessError as exc:
            await interaction.response.send_message(f"I can't share {self.label(twin)} here: {exc}.", ephemeral=True)
            return
        await interaction.response.send_message(
            f"**{self.label(twin)}** is shared in this channel: talk to it with `/chat persona:{twin}`. "
            "Its replies are marked as an AI twin.")

    @app_commands.command(name="unshare")
    @app_commands.describe(twin="Your twin")
    @app_commands.autocomplete(twin=twin_autocomplete)
    async def unshare(self, interaction: discord.Interaction, twin: str) -> None:
        """Stop sharing your twin in this channel (in a DM: everywhere)."""
        found = await self._owned(interaction, twin, dm=False)
        if found is None:
            return
        n = await twin_store.unshare(self.bot.db, twin, None if _in_dm(interaction) else str(interaction.channel_id))
        await interaction.response.send_message(f"{self.label(twin)} is no longer shared ({n} channel(s)).", ephemeral=True)

    @app_commands.command(name="insights")
    @app_commands.describe(twin="Your twin")
    @app_commands.autocomplete(twin=twin_autocomplete)
    async def insights(self, interaction: discord.Interaction, twin: str) -> None:
        """What your twin learned from: your words by year, top words and emoji, lengths, and its replies beside yours."""
        import tempfile

        from trainer.twin.insights import summary_text, twin_insights, write_png

        found = await self._owned(interaction, twin)
        if found is None:
            return
        await interaction.response.defer(thinking=True)
        data = await twin_insights(self.bot.db, self.bot.settings, self.bot.personas[twin], examples=3)
        with tempfile.TemporaryDirectory() as tmp:
            png = (await asyncio.to_thread(write_png, data, Path(tmp) / f"{twin}-insights.png")).read_bytes()
        await interaction.followup.send(summary_text(data)[:1900], file=discord.File(io.BytesIO(png), filename=f"{twin}-insights.png"))

    @app_commands.command(name="delete")
    @app_commands.describe(twin="Your twin")
    @app_commands.autocomplete(twin=twin_autocomplete)
    async def delete_(self, interaction: discord.Interaction, twin: str) -> None:
        """Delete your twin and everything made from your data (asks first)."""
        found = await self._owned(interaction, twin)
        if found is None:
            return
        await interaction.response.send_message(
            f"This deletes **{self.label(twin)}**: its persona, your imported messages, datasets, trained models and "
            "every stored row, for good. Continue?",
            view=ConfirmDelete(interaction.user.id, label="Delete my twin and its data", refusal=NOT_OWNER,
                               delete=lambda: self._delete_report(twin)))

    async def _delete_report(self, twin: str) -> str:
        report = await self.delete(twin)
        return (f"Deleted {twin}: {sum(report['rows'].values())} stored rows and {len(report['removed'])} "
                "folders/files; no copy of its words is left.")

    async def delete_member_twins(self, member_id: str) -> list[str]:
        """/privacy forget: every twin the member controls is deleted like /twin delete."""
        names = [t.persona for t in await twin_store.list_twins(self.bot.db, member_id)]
        for name in names:
            await self.delete(name)
        return names

    async def delete(self, twin: str) -> dict:
        from trainer.twin.delete import delete_twin

        bot = self.bot
        report = await delete_twin(bot.db, bot.settings, twin)
        bot.retire_persona(twin)
        log.info("twin %s deleted: %d rows", twin, sum(report["rows"].values()))
        return report
