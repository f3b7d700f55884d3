"""Style augmentation: make the user's side of a synthetic conversation look like real chat.

Writers produce tidy, fully punctuated user messages; real members type in lower case, skip
punctuation and make typos. Training only on tidy input makes a persona brittle against real
input, so `augment_turns` roughens user turns (never the persona's: those are what the model
learns to write). Contract: pure and deterministic for a given seed; the rates come from the
persona's `[synthetic.style]` section; URLs, numbers and code-ish tokens are left alone.
"""
from __future__ import annotations

import random
import re
from dataclasses import replace

from bot.persona.synthetic import StyleSpec
from trainer.synth.parse import USER, Turn

_NEIGHBOURS = {
    "q": "wa", "w": "qes", "e": "wrd", "r": "etf", "t": "ryg", "y": "tuh", "u": "yij", "i": "uok", "o": "ipl", "p": "ol",
    "a": "qsz", "s": "adwx", "d": "sfec", "f": "dgrv", "g": "fhtb", "h": "gjyn", "j": "hkum", "k": "jli", "l": "kop",
    "z": "asx", "x": "zsdc", "c": "xdfv", "v": "cfgb", "b": "vghn", "n": "bhjm", "m": "njk",
}
_PLAIN_WORD = re.compile(r"^[A-Za-z]{3,}$")


def _typo(word: str, rng: random.Random) -> str:
    i = rng.randrange(len(word))
    op = rng.choice(("swap", "drop", "double", "neighbour"))
    if op == "swap" and i < len(word) - 1:
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]
    if op == "drop":
        return word[:i] + word[i + 1:]
    if op == "double":
        return word[:i] + word[i] + word[i:]
    near = _NEIGHBOURS.get(word[i].lower())
    if near:
        c = rng.choice(near)
        return word[:i] + (c.upper() if word[i].isupper() else c) + word[i + 1:]
    return word[:i] + word[i] + word[i:]


def augment_text(text: str, style: StyleSpec, rng: random.Random) -> str:
    """One user message, roughened. Each decision draws from `rng` in a fixed order."""
    lower = rng.random() < style.lowercase
    drop_apostrophes = rng.random() < style.apostrophe_drop
    out = []
    for token in re.split(r"(\s+)", text):
        if not token or token.isspace() or "://" in token or any(ch.isdigit() for ch in token):
            out.append(token)
            continue
        core = token
        # Peel punctuation off the ends so typos land on letters.
        lead = len(core) - len(core.lstrip("\"'([{*_"))
        trail = len(core) - len(core.rstrip(".,;:!?\"')]}*_"))
        head, word, tail = core[:lead], core[lead:len(core) - trail], core[len(core) - trail:]
        if _PLAIN_WORD.match(word) and not word.isupper() and rng.random() < style.typo_rate:
            word = _typo(word, rng)
        if drop_apostrophes and ("'" in word or "\u2019" in word):
            word = word.replace("'", "").replace("\u2019", "")
        tail = "".join(ch for ch in tail if ch not in ".,;:" or rng.random() >= style.punctuation_drop)
        out.append(head + word + tail)
    result = "".join(out)
    if lower:
        result = result.lower()
    return result


def augment_turns(turns: list[Turn], style: StyleSpec, seed: int) -> list[Turn]:
    """User turns roughened per `style` (unchanged when style is off); persona turns untouched."""
    if not style.enabled:
        return list(turns)
    rng = random.Random(f"synth-style:{seed}")
    return [replace(t, text=augment_text(t.text, style, rng)) if t.role == USER and t.text else t for t in turns]
