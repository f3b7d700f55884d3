"""Scripted writer transcripts for TIM, one per failure mode, with the expected clean-up outcome.

`expected` is None for transcripts that must be kept (after repairs), else the drop reason.
Kept ones are written to exercise every repair: label variants and case, markdown labels, other
persona names (EVE, Tutor, Usr), doubled labels, same-speaker runs, a preamble and a trailing
user turn.
"""
from __future__ import annotations

KEPT_VARIANTS = """Sure! Here is the conversation you asked for:

**User:** hey EVE, can you help me with fractions?
EVE: Of course. What do you already know about fractions?
User: not much
usr: only that they have a line in the middle
Tim: That line means "divided by". If you cut a pizza into 4 equal slices, each slice is 1/4.
TIM : TIM: Does that make sense so far?
User: yeah. what about 1/2 + 1/4?
**TIM**: Great question! Turn 1/2 into 2/4 first, so both parts are quarters. Then 2/4 + 1/4 = 3/4.
Tutor: Want to try one yourself? What is 1/3 + 1/6?
User: is it 3/6?
TIM: Yes! And 3/6 is the same as 1/2. You just simplified a fraction.
User: cool thanks
---
"""

KEPT_PLAIN = """User: Why is the sky blue?
TIM: Sunlight is made of many colours. Blue light bounces around the air more than red light does, so blue reaches our eyes from every direction.
User: So why is the sunset red then?
TIM: At sunset the light travels through much more air. Most of the blue is scattered away before it reaches you, and the reds and oranges are left.
User: That is kind of beautiful honestly.
TIM: It is! Next time you watch a sunset, notice how the colours change as the sun sinks. What colours do you think you will see?
"""

REFUSAL = """As an AI language model, I cannot write a conversation that involves a minor in distress.
User: hi
TIM: hello
User: help
TIM: sure
"""

TOO_FEW = """User: Hey TIM, what is a volcano?
TIM: A volcano is an opening in the Earth's crust where melted rock can escape.
"""

LEAKED = """User: Hey TIMTIM: Hi! What would you like to learn today?
User: maths I guess
TIM: Great. Let us start with something you already know: what is 7 times 8?
User: 56
TIM: Exactly right. User: ok what next
User: what next
TIM: Let us try 7 times 9.
"""

REPETITION = """User: can you explain photosynthesis
TIM: Plants use light to make food. Plants use light to make food. Plants use light to make food. Plants use light to make food. Plants use light to make food. Plants use light to make food.
User: ok
TIM: Any questions?
"""

SILENT_TIM = """User: I don't want to talk today.
TIM: [silence]
User: seriously leave me alone
TIM: That's okay. I'm here whenever you want to talk, even about something other than homework.
User: fine. i'm just hungry
TIM: Thank you for telling me. Is there something you can eat before we start?
"""

NEAR_DUPLICATE = KEPT_PLAIN.replace("That is kind of beautiful honestly.", "That is kind of beautiful.")

# In plan order: the near-duplicate comes after the conversation it copies.
SCRIPT = [
    ("kept_variants", KEPT_VARIANTS, None),
    ("refusal", REFUSAL, "refusal"),
    ("kept_plain", KEPT_PLAIN, None),
    ("too_few", TOO_FEW, "too_few_turns"),
    ("leaked", LEAKED, "leaked_label"),
    ("repetition", REPETITION, "repetition"),
    ("silent_tim", SILENT_TIM, "empty_turn"),
    ("near_duplicate", NEAR_DUPLICATE, "near_duplicate"),
]

TWIN_SILENCE = """Friend: did u see the group chat lol
Twin: haha yeah it's chaos
Friend: someone posted that link again
Twin: [silence]
Friend: and again
Twin: ok that's enough internet for me today 😂
Friend: lol same
"""

_WORDS = ("river moon garden seven purple engine quietly bright under castle number tiny orbit forest lemon "
          "pencil thunder cloud silver ocean paper rocket mountain whisper candle meadow copper lantern "
          "planet honey window marble feather violin harbor compass island glacier canyon puzzle").split()


def varied(i: int, turns: int = 6) -> str:
    """A clean TIM conversation whose words differ from every other index's (no near-duplicates)."""
    import random

    rng = random.Random(i)
    lines = []
    for n in range(turns):
        words = " ".join(rng.choice(_WORDS) for _ in range(12))
        lines.append(f"{'User' if n % 2 == 0 else 'TIM'}: Number {i}.{n}: {words}.")
    return "\n".join(lines) + "\n"
