"""Fitting conversations into the model's context: split by turns, never truncate inside one.

`make_windows(turns, system_tokens, turn_tokens, max_tokens)` returns lists of turn indices. Each
window starts on a user turn, ends on an assistant turn, and fits `max_tokens` with the system
prompt. A new window repeats the previous exchange as context when it fits; that repeated
assistant turn gets weight 0 in the example so no reply is trained on twice. An exchange that
cannot fit on its own is left out and counted by the caller (len(turns) minus what was used).
"""
from __future__ import annotations


def make_windows(n_turns: int, system_tokens: int, turn_tokens: list[int], max_tokens: int) -> tuple[list[tuple[int, int, bool]], int]:
    """[(start, end_exclusive, first_pair_is_context)], and the number of exchanges too long to fit."""
    pairs = [(i, turn_tokens[i] + turn_tokens[i + 1]) for i in range(0, n_turns - 1, 2)]
    if sum(t for _, t in pairs) + system_tokens <= max_tokens:
        return ([(0, n_turns, False)] if pairs else []), 0
    windows: list[tuple[int, int, bool]] = []
    too_long = 0
    k = 0
    context: int | None = None          # index into pairs of the exchange to repeat as context
    while k < len(pairs):
        start_k = k
        used = system_tokens
        with_context = False
        if context is not None and used + pairs[context][1] + pairs[k][1] <= max_tokens:
            used += pairs[context][1]
            with_context = True
        if used + pairs[k][1] > max_tokens:
            if with_context:
                with_context, used = False, system_tokens
            if used + pairs[k][1] > max_tokens:
                too_long += 1
                k += 1
                context = None
                continue
        while k < len(pairs) and used + pairs[k][1] <= max_tokens:
            used += pairs[k][1]
            k += 1
        first = pairs[context][0] if with_context else pairs[start_k][0]
        end = pairs[k - 1][0] + 2
        windows.append((first, end, with_context))
        context = k - 1
    return windows, too_long
