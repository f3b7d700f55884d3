"""Human promotion review: open a review of a gated candidate, and promote or keep after the votes.

Shared by the scheduler (a `[gate] promote = "review"` persona's passing candidate), the terminal
(`personabot model review`) and Discord (`/model review`, which imports this lazily):

- `start_review(db, persona, version=None, requested_by=...)`: the persona's open review, else a new
  one of `version` (default: the newest candidate that passed the gate) with `[gate] review_pairs`
  pairs taken from the reply pairs its gate run stored (`metrics["eval"]["samples"]`), the pairs
  where the two replies differ first, and those the judge decided before its ties.
- `finish_review(db, settings, persona, review_id, action, by)`: `keep` closes it and leaves the
  active version serving; `promote` needs votes on at least half the pairs (K/2), then promotes
  through `trainer.promote.promote` (which prepares serving and switches the registry), recording
  who promoted.

Errors are `ReviewError` with a message for the admin.
"""
from __future__ import annotations

import aiosqlite

from bot.persona.spec import PersonaSpec
from bot.settings import Settings
from bot.store import registry, reviews
from bot.store.registry import ModelVersion
from bot.store.reviews import Review


class ReviewError(RuntimeError):
    """A review that cannot start or finish; the message says why."""


def review_pairs(version: ModelVersion, k: int) -> list[dict]:
    """Up to `k` reply pairs from the version's last gate run: differing replies first, judged ones first."""
    gate = version.metrics.get("eval") or {}
    samples = [s for s in gate.get("samples") or [] if s.get("candidate", "").strip() or s.get("baseline", "").strip()]
    judged = {e["context"] for kind in ("wins", "losses") for e in ((gate.get("judge") or {}).get("examples") or {}).get(kind, [])}
    ranked = sorted(samples, key=lambda s: (s["candidate"].strip() == s["baseline"].strip(), s["context"] not in judged))
    return ranked[:k]


async def start_review(db: aiosqlite.Connection, persona: PersonaSpec, version: str | None = None, *,
                       requested_by: str | None = None) -> Review:
    """The persona's open review, or a new one (see the module docstring)."""
    from trainer.evaluate.gate import gate_passed
    from trainer.promote import newest_promotable

    current = await reviews.current_review(db, persona.name)
    if current is not None and (version is None or current.candidate == version):
        return current
    target = await registry.get_version(db, version) if version else await newest_promotable(db, persona.name)
    if target is None:
        raise ReviewError(f"{persona.name} has no candidate that passed the gate to review "
                          f"(run `personabot eval --persona {persona.name}`)")
    if target.persona != persona.name or target.status != "candidate" or not gate_passed(target):
        raise ReviewError(f"{target.name} is not a candidate that passed the gate ({target.status})")
    pairs = review_pairs(target, persona.gate.review_pairs)
    if not pairs:
        raise ReviewError(f"the gate run of {target.name} kept no reply pairs to compare: run "
                          f"`personabot eval --persona {persona.name} --version {target.name}` again")
    gate = target.metrics.get("eval") or {}
    return await reviews.open_review(db, persona=persona.name, candidate=target.name,
                                     baseline=gate.get("baseline") or "the active version", pairs=pairs,
                                     gate=gate_numbers(gate), requested_by=requested_by)


def gate_numbers(gate: dict) -> str:
    """The gate's numbers in a few lines, for the review message (no verdict: the reviewer is blind)."""
    losses = gate.get("losses") or {}
    lines = ["held-out loss: " + ", ".join(f"{k} {v:.4f}" for k, v in losses.items() if isinstance(v, (int, float)))]
    probes = gate.get("probes") or []
    lines.append(f"probes passed: {gate.get('probes_passed', 0)}/{len(probes)}")
    judge = gate.get("judge")
    if judge and judge.get("win_rate") is not None:
        lines.append(f"judge {judge['judge']}: win rate {judge['win_rate']:.2f} over {judge['pairs']} pairs "
                     f"({judge['wins']} wins, {judge['losses']} losses, {judge['ties']} ties)")
    roles = gate.get("role_confusion")
    if roles:
        lines.append(f"role confusion: new {roles['candidate']:.0%}, current {roles['baseline']:.0%}")
    return "\n".join(lines)


async def finish_review(db: aiosqlite.Connection, settings: Settings, persona: PersonaSpec, review_id: int, action: str,
                        by: str, *, on_switched=None, admin_factory=None) -> str:
    """Promote the candidate or keep the current version; returns a line for the admin."""
    from trainer.promote import PromotionError, promote

    review = await reviews.get_review(db, review_id)
    if review is None or review.persona != persona.name:
        raise ReviewError(f"no review {review_id} of {persona.name}")
    if review.status != "open":
        raise ReviewError(f"this review is already closed ({review.status})")
    tally = await reviews.tally(db, review_id)
    if action == "keep":
        await reviews.decide(db, review_id, "kept", by)
        await registry.record_event(db, persona.name, review.candidate, "review_kept", f"by {by}")
        return f"Kept the current version; {review.candidate} was not promoted."
    if action != "promote":
        raise ValueError("action is 'promote' or 'keep'")
    if not tally.can_decide:
        raise ReviewError(f"vote on at least {tally.needed} of the {len(review.pairs)} pairs before promoting "
                          f"({tally.pairs_voted} voted so far)")
    try:
        result = await promote(db, settings, persona, review.candidate, by=by, on_switched=on_switched,
                               admin_factory=admin_factory)
    except PromotionError as exc:
        raise ReviewError(str(exc)) from None
    await reviews.decide(db, review_id, "promoted", by)
    rate = tally.human_win_rate
    return result.summary() + ("" if rate is None else f" (human win rate {rate:.2f} over {tally.votes} votes)")
