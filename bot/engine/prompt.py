"""Prompt assembly: the persona's system prompt, then as much recent history as the budget allows.

The same rendering is used for training (`trainer` imports `render_turns`), so serving and
training see conversations formatted identically: persona turns are `assistant`, everyone else is
`user`; in a conversation with several members each user turn is prefixed with the speaker's name
("Ana: ..."), exactly as group-chat datasets are built; consecutive turns of one role are merged.
"""
from __future__ import annotations

from typing import Callable, Sequence

from bot.engine.tokens import MESSAGE_OVERHEAD, estimate_text_tokens, estimate_tokens
from bot.engine.types import Turn

TokenCounter = Callable[[list[dict]], int]

__all__ = ["TokenCounter", "build_messages", "estimate_tokens", "render_turns"]


def render_turns(turns: Sequence[Turn]) -> list[dict]:
    """Turns → chat messages (without the system prompt)."""
    humans = {t.author_id for t in turns if not t.from_persona}
    group = len(humans) > 1
    messages: list[dict] = []
    last: dict | None = None
    for turn in turns:
        if turn.from_persona:
            role, content = "assistant", turn.content
        else:
            role = "user"
            content = f"{turn.author_name}: {turn.content}" if group else turn.content
        if last is not None and last["role"] == role:
            # Two messages in a row from one side read as one turn to the model.
            last["content"] += "\n" + content
        else:
            last = {"role": role, "content": content}
            messages.append(last)
    return messages


# The user line before a conversation the persona opened (SillyTavern's "new chat" marker).
NEW_CHAT = "[Start a new chat]"


def build_messages(
    system_prompt: str,
    history: Sequence[Turn],
    budget: int,
    count_tokens: TokenCounter | None = None,
    post_history: str | None = None,
) -> tuple[list[dict], int]:
    """Messages for the model and how many history turns were kept.

    `post_history` (a card's post-history instructions) is a last system message after the
    history; like the system prompt it is always sent and counted in the budget.

    Oldest turns are dropped first until system prompt + history fit in `budget` tokens, counted
    with `count_tokens` (the model's own tokenizer) when given. The newest turn is always kept; if
    it alone is over budget its beginning is cut, since the end of a message is what gets answered.
    The kept history always starts with a user turn: an opening persona turn left over from
    trimming is dropped (its question is gone), but a conversation that the persona opened itself (a
    card's greeting) keeps that opening after a `NEW_CHAT` user line, so the model sees what it said
    first and chat templates that require user/assistant alternation still accept the prompt.
    """
    count = count_tokens or estimate_tokens
    system = {"role": "system", "content": system_prompt}
    tail = [{"role": "system", "content": post_history}] if post_history else []
    turns = list(history)

    # Start from a cheap estimate so the exact counter runs a few times, not once per turn.
    keep = 0
    spent = estimate_tokens([system, *tail])
    for turn in reversed(turns):
        spent += MESSAGE_OVERHEAD + estimate_text_tokens(turn.content)
        if spent > budget * 1.5 and keep > 0:
            break
        keep += 1
    kept = turns[len(turns) - keep :]

    def assemble(ts: list[Turn]) -> list[dict]:
        rendered = render_turns(ts)
        if rendered and rendered[0]["role"] == "assistant":
            if len(ts) == len(turns):   # the whole conversation: the persona spoke first
                rendered.insert(0, {"role": "user", "content": NEW_CHAT})
            else:
                rendered.pop(0)
        return [system, *rendered, *tail]

    messages = assemble(kept)
    tokens = count(messages)
    while len(kept) > 1 and tokens > budget:
        kept = kept[1:]
        messages = assemble(kept)
        tokens = count(messages)

    if len(messages) > 1 + len(tail) and tokens > budget:
        last = messages[-1 - len(tail)]
        room = budget - count([system, {"role": last["role"], "content": ""}, *tail])
        text = last["content"]
        # Cut from the front in proportion, then tighten; tokens ≈ characters / 4 is only a start.
        cut = max(0, len(text) - max(room, 1) * 4)
        while cut < len(text) and count([system, {"role": last["role"], "content": text[cut:]}, *tail]) > budget:
            cut += max(1, (len(text) - cut) // 8)
        last["content"] = text[cut:]
    return messages, len(kept)
