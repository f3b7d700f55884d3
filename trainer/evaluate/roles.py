"""Role confusion: was a reply written as the member instead of as the persona?

A fine-tune trained on transcripts can learn to continue the *member's* side: asking the member
for help with the persona's own task, or answering as if the persona were the learner. The check
is independent of any judge and runs offline on the base model:

- `turn_logprob(model, tokenizer, messages, text, role)`: the mean per-token log-likelihood of
  `text` appended to `messages` as a turn of `role`, rendered with the model's own chat template
  (only the text's own tokens count, so long and short replies compare).
- `role_score(...)`: how much more likely the reply is as the member's (user) turn than as the
  persona's (assistant) turn, after the persona's system prompt and the last `CONTEXT_TURNS`
  turns of context. A
  reply in the persona's voice scores low; a line in the member's voice scores high.
- `RoleChecker.flag(persona, cases)`: which replies score above `threshold`. The default
  threshold was calibrated on labelled TutorChatbot exchanges; `tests/trainer/evaluate/
  test_roles_real.py` measures it on other exchanges and prints the rates it reaches.

Torch is imported inside the functions that need it.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Sequence

#: Flag a reply when it is this much more likely (nats per token) as a member's turn than as the persona's.
#: Calibrated on 50 TutorChatbot exchanges with SmolLM2-135M-Instruct (TIM's real reply against the
#: student's next line in the same context): 0.07 flagged 90% of the students' lines and 10% of TIM's.
DEFAULT_THRESHOLD = 0.07
#: Turns of preceding context the reply is scored after (more adds cost, and did not separate better).
CONTEXT_TURNS = 4


def turn_logprob(model, tokenizer, messages: Sequence[dict], text: str, *, role: str) -> float:
    """Mean log-probability per token of `text` as a `role` turn after `messages` (chat template)."""
    import torch

    if not text.strip():
        return 0.0
    rendered = tokenizer.apply_chat_template([*messages, {"role": role, "content": text}], tokenize=False)
    start = rendered.rfind(text)
    end = start + len(text)
    enc = tokenizer(rendered, return_offsets_mapping=True, add_special_tokens=False)
    ids = enc["input_ids"]
    # The text's own tokens: those whose span starts inside it (the first may merge a leading space).
    positions = [i for i, (a, b) in enumerate(enc["offset_mapping"]) if b > a and start <= a < end and i > 0]
    if not positions:
        return 0.0
    device = next(model.parameters()).device
    with torch.no_grad():
        logits = model(torch.tensor([ids], device=device), use_cache=False).logits[0].float()
    logprobs = torch.log_softmax(logits[:-1], dim=-1)
    targets = torch.tensor([ids[i] for i in positions], device=device)
    picked = logprobs[torch.tensor([i - 1 for i in positions], device=device), targets]
    return float(picked.mean())


def role_score(model, tokenizer, system_prompt: str, context: Sequence[dict], reply: str) -> float:
    """log p(reply as the member's turn) − log p(reply as the persona's turn), per token."""
    messages = [{"role": "system", "content": system_prompt}, *list(context)[-CONTEXT_TURNS:]]
    as_member = turn_logprob(model, tokenizer, messages, reply, role="user")
    as_persona = turn_logprob(model, tokenizer, messages, reply, role="assistant")
    return as_member - as_persona


@dataclass
class RoleChecker:
    """Flags replies written as the member, with a loaded base model (see the module docstring)."""

    model: object
    tokenizer: object
    threshold: float = DEFAULT_THRESHOLD

    def scores(self, system_prompt: str, cases: Sequence[tuple[Sequence[dict], str]]) -> list[float]:
        return [role_score(self.model, self.tokenizer, system_prompt, context, reply) for context, reply in cases]

    async def flag(self, persona, cases: Sequence[tuple[Sequence[dict], str]]) -> list[bool]:
        scores = await asyncio.to_thread(self.scores, persona.offline_system_prompt, cases)
        return [s > self.threshold for s in scores]
