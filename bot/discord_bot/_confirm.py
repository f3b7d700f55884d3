"""A Delete / Cancel confirmation that only one member can press (`/twin delete`, `/persona delete`).

`ConfirmDelete(user_id, label=..., refusal=..., delete=...)`: "Delete" runs `delete()` (which returns
the line to show) and replaces the prompt with it; "Cancel" says nothing was deleted. Anyone else
pressing either gets `refusal`, privately. An exception of `expected` types is shown as
"Nothing was deleted: …"; others propagate (and are logged by discord.py).
"""
from __future__ import annotations

from typing import Awaitable, Callable

import discord


class ConfirmDelete(discord.ui.View):
    def __init__(self, user_id: int, *, label: str, refusal: str, delete: Callable[[], Awaitable[str]],
                 expected: tuple[type[Exception], ...] = (), timeout: float = 120):
        super().__init__(timeout=timeout)
        self.user_id, self.refusal, self._delete, self._expected = user_id, refusal, delete, expected
        self.confirm.label = label

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        if interaction.user.id != self.user_id:
            await interaction.response.send_message(self.refusal, ephemeral=True)
            return False
        return True

    @discord.ui.button(label="Delete", style=discord.ButtonStyle.danger)
    async def confirm(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        self.stop()
        await interaction.response.defer()
        try:
            text = await self._delete()
        except self._expected as exc:
            text = f"Nothing was deleted: {exc}"
        await interaction.edit_original_response(content=text[:2000], view=None)

    @discord.ui.button(label="Cancel", style=discord.ButtonStyle.secondary)
    async def cancel(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        self.stop()
        await interaction.response.edit_message(content="Nothing was deleted.", view=None)
