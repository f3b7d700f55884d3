"""Human promotion reviews: blind reply pairs, admins' votes, and the promote-or-keep decision.

Discord-free (the cog and the terminal both call it), and trainer-free: the caller promotes.

- `open_review(db, persona, candidate, baseline, pairs, ...)` stores a review of `candidate`
  with each pair's blind order drawn at random (`first`: which reply is shown as "Reply 1"). An
  older open review of the same persona is `superseded`: only the newest candidate waits.
- `vote(db, review_id, pair, voter, shown)` takes what the reviewer saw ("1", "2" or "same"),
  turns it into `candidate` / `baseline` / `same` with the stored order, and keeps one vote per
  voter and pair (a second click changes it), with the time.
- `tally(db, review_id)`: votes, pairs voted, and the human win rate (the candidate's share, ties
  half). `can_decide` is true once at least half the pairs (K/2) carry a vote.
- `decide(db, review_id, status, by)`: `promoted` or `kept`, once, by whom; `human_win_rate`
  reads the candidate's latest rate for `model list`.
- `unposted(db)` / `mark_posted(...)`: the queue the bot polls to post reviews the scheduler opened.
- Privacy: voters and deciders are members too: `export_user` lists their votes and decisions,
  `delete_user` un-names them (the votes stay, they are about model replies, not about the member),
  as well as the "by <id>" of the promotions they made (registry events). The pairs' contexts
  come from built datasets: `forget_pairs` (called by the trainer's forget hook) drops the pairs
  of reviews whose models were trained on a dataset that held a forgotten member's words, and
  the bot then deletes the pair messages it had posted (`to_withdraw`, `mark_withdrawn`).
"""
from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass, field

import aiosqlite

from bot.store.db import transaction, utcnow

SHOWN = {"1", "2", "same"}


@dataclass(frozen=True)
class ReviewPair:
    context: str                 # where the context came from: a probe name or "val-<line>"
    messages: list[dict]         # the conversation, ending with the member's turn
    candidate: str
    baseline: str
    first: str                   # "candidate" or "baseline": the one shown as "Reply 1"

    def shown(self) -> tuple[str, str]:
        """(Reply 1, Reply 2) in the blind order."""
        return (self.candidate, self.baseline) if self.first == "candidate" else (self.baseline, self.candidate)


@dataclass(frozen=True)
class Review:
    id: int
    persona: str
    candidate: str
    baseline: str
    pairs: list[ReviewPair]
    gate: str
    status: str
    requested_by: str | None
    channel_id: str | None = None
    message_id: str | None = None
    thread_id: str | None = None
    created_at: str = ""
    posted_at: str | None = None
    decided_by: str | None = None
    decided_at: str | None = None

    @property
    def needed_votes(self) -> int:
        """Pairs that must carry a vote before the candidate may be promoted: at least half."""
        return math.ceil(len(self.pairs) / 2)


@dataclass
class Tally:
    votes: int = 0
    pairs_voted: int = 0
    candidate: int = 0
    baseline: int = 0
    same: int = 0
    needed: int = 0
    by_pair: dict[int, dict[str, str]] = field(default_factory=dict)   # pair → voter → choice

    @property
    def human_win_rate(self) -> float | None:
        return None if not self.votes else (self.candidate + 0.5 * self.same) / self.votes

    @property
    def can_decide(self) -> bool:
        return self.pairs_voted >= self.needed


_COLUMNS = ("id, persona, candidate, baseline, pairs, gate, status, requested_by, channel_id, message_id, thread_id, "
            "created_at, posted_at, decided_by, decided_at")


def _row(row) -> Review:
    d = dict(row)
    d["pairs"] = [ReviewPair(**p) for p in json.loads(d["pairs"])]
    return Review(**d)


async def open_review(db: aiosqlite.Connection, *, persona: str, candidate: str, baseline: str, pairs: list[dict],
                      gate: str = "", requested_by: str | None = None, rng: random.Random | None = None) -> Review:
    """Store a new open review (see the module docstring); `pairs` are {context, messages, candidate, baseline}."""
    if not pairs:
        raise ValueError(f"no reply pairs to review for {candidate}: run the gate with a judge or samples first")
    rng = rng or random.SystemRandom()
    blind = [{"context": p["context"], "messages": p["messages"], "candidate": p["candidate"], "baseline": p["baseline"],
              "first": rng.choice(("candidate", "baseline"))} for p in pairs]
    async with transaction(db):
        await db.execute("UPDATE model_reviews SET status = 'superseded' WHERE persona = ? AND status = 'open'", (persona,))
        cur = await db.execute(
            "INSERT INTO model_reviews(persona, candidate, baseline, pairs, gate, requested_by, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)", (persona, candidate, baseline, json.dumps(blind), gate, requested_by, utcnow()))
        review_id = cur.lastrowid
    return await get_review(db, review_id)


async def get_review(db: aiosqlite.Connection, review_id: int) -> Review | None:
    async with db.execute(f"SELECT {_COLUMNS} FROM model_reviews WHERE id = ?", (review_id,)) as cur:
        row = await cur.fetchone()
    return _row(row) if row else None


async def current_review(db: aiosqlite.Connection, persona: str) -> Review | None:
    """The persona's open review, if one waits."""
    async with db.execute(f"SELECT {_COLUMNS} FROM model_reviews WHERE persona = ? AND status = 'open' ORDER BY id DESC LIMIT 1",
                          (persona,)) as cur:
        row = await cur.fetchone()
    return _row(row) if row else None


async def vote(db: aiosqlite.Connection, review_id: int, pair: int, voter: str, shown: str, *, via: str = "discord") -> str:
    """Record what `voter` chose for `pair` ("1", "2" or "same" as shown); returns the decoded choice."""
    if shown not in SHOWN:
        raise ValueError(f"a vote is '1', '2' or 'same', got {shown!r}")
    review = await get_review(db, review_id)
    if review is None or not 0 <= pair < len(review.pairs):
        raise LookupError(f"no pair {pair} in review {review_id}")
    if review.status != "open":
        raise LookupError(f"review {review_id} is closed ({review.status})")
    first = review.pairs[pair].first
    second = "baseline" if first == "candidate" else "candidate"
    choice = {"1": first, "2": second, "same": "same"}[shown]
    async with transaction(db):
        await db.execute("DELETE FROM review_votes WHERE review_id = ? AND pair = ? AND voter = ?", (review_id, pair, voter))
        await db.execute("INSERT INTO review_votes(review_id, pair, voter, choice, via, voted_at) VALUES (?, ?, ?, ?, ?, ?)",
                         (review_id, pair, voter, choice, via, utcnow()))
    return choice


async def tally(db: aiosqlite.Connection, review_id: int) -> Tally:
    review = await get_review(db, review_id)
    result = Tally(needed=review.needed_votes if review else 0)
    async with db.execute("SELECT pair, voter, choice FROM review_votes WHERE review_id = ? ORDER BY voted_at",
                          (review_id,)) as cur:
        for pair, voter, choice in await cur.fetchall():
            result.by_pair.setdefault(pair, {})[voter or "(forgotten)"] = choice
            result.votes += 1
            setattr(result, choice, getattr(result, choice) + 1)
    result.pairs_voted = len(result.by_pair)
    return result


async def decide(db: aiosqlite.Connection, review_id: int, status: str, by: str) -> bool:
    """Close an open review as `promoted` or `kept`; False when it was no longer open."""
    if status not in ("promoted", "kept"):
        raise ValueError("a review ends 'promoted' or 'kept'")
    cur = await db.execute("UPDATE model_reviews SET status = ?, decided_by = ?, decided_at = ? WHERE id = ? AND status = 'open'",
                           (status, by, utcnow(), review_id))
    await db.commit()
    return cur.rowcount == 1


async def human_win_rates(db: aiosqlite.Connection, persona: str | None = None) -> dict[str, float]:
    """Each reviewed version's human win rate (its newest review that has votes)."""
    sql = ("SELECT r.candidate, v.choice FROM review_votes v JOIN model_reviews r ON r.id = v.review_id "
           "WHERE r.id = (SELECT MAX(r2.id) FROM model_reviews r2 JOIN review_votes v2 ON v2.review_id = r2.id "
           "WHERE r2.candidate = r.candidate)")
    args: tuple = ()
    if persona:
        sql, args = sql + " AND r.persona = ?", (persona,)
    counts: dict[str, list[float]] = {}
    async with db.execute(sql, args) as cur:
        for candidate, choice in await cur.fetchall():
            counts.setdefault(candidate, []).append({"candidate": 1.0, "same": 0.5}.get(choice, 0.0))
    return {k: sum(v) / len(v) for k, v in counts.items()}


async def unposted(db: aiosqlite.Connection) -> list[Review]:
    """Open reviews nobody has posted yet (the scheduler opened them; the bot posts them)."""
    async with db.execute(f"SELECT {_COLUMNS} FROM model_reviews WHERE status = 'open' AND posted_at IS NULL ORDER BY id") as cur:
        return [_row(r) for r in await cur.fetchall()]


async def mark_posted(db: aiosqlite.Connection, review_id: int, *, channel_id: str | None, message_id: str | None = None,
                      thread_id: str | None = None) -> None:
    await db.execute("UPDATE model_reviews SET channel_id = ?, message_id = ?, thread_id = ?, posted_at = ? WHERE id = ?",
                     (channel_id, message_id, thread_id, utcnow(), review_id))
    await db.commit()


async def to_withdraw(db: aiosqlite.Connection) -> list[tuple[int, str, str | None]]:
    """(review id, thread id, header message's channel) of posted reviews that lost their pairs to a
    forget and are still in Discord: the bot deletes what it posted there."""
    async with db.execute("SELECT id, thread_id, channel_id FROM model_reviews WHERE pairs = '[]' AND thread_id IS NOT NULL "
                          "AND withdrawn_at IS NULL ORDER BY id") as cur:
        return [(r[0], r[1], r[2]) for r in await cur.fetchall()]


async def mark_withdrawn(db: aiosqlite.Connection, review_id: int) -> None:
    async with transaction(db):
        await db.execute("UPDATE model_reviews SET withdrawn_at = ? WHERE id = ?", (utcnow(), review_id))


async def forget_pairs(db: aiosqlite.Connection, models: list[str]) -> int:
    """Drop the reply pairs of every review that compares one of `models`: their contexts came from
    a dataset that held a forgotten member's words. An open review is superseded (nothing is left to
    judge); the votes and the decision stay. What the bot posted of it in Discord is withdrawn next
    (`to_withdraw`). Returns how many reviews lost their pairs."""
    if not models:
        return 0
    marks = ",".join("?" * len(models))
    async with transaction(db):   # joins forget_user's transaction when called from its hook
        cur = await db.execute(
            f"UPDATE model_reviews SET pairs = '[]', status = CASE status WHEN 'open' THEN 'superseded' ELSE status END "
            f"WHERE pairs != '[]' AND (candidate IN ({marks}) OR baseline IN ({marks}))", (*models, *models))
    return cur.rowcount


async def export_user(db: aiosqlite.Connection, user_id: str) -> dict:
    """The member's votes and promotion decisions as a reviewer."""
    async with db.execute("SELECT r.persona, r.candidate, v.pair, v.choice, v.via, v.voted_at FROM review_votes v "
                          "JOIN model_reviews r ON r.id = v.review_id WHERE v.voter = ? ORDER BY v.voted_at", (user_id,)) as cur:
        votes = [dict(r) for r in await cur.fetchall()]
    async with db.execute("SELECT persona, candidate, status, decided_at FROM model_reviews WHERE decided_by = ? OR requested_by = ? "
                          "ORDER BY id", (user_id, user_id)) as cur:
        decisions = [dict(r) for r in await cur.fetchall()]
    async with db.execute("SELECT persona, version, event, at FROM registry_events WHERE detail LIKE ? ORDER BY id",
                          (f"%by {user_id}%",)) as cur:
        promotions = [dict(r) for r in await cur.fetchall()]
    return {"votes": votes, "reviews_requested_or_decided": decisions, "promotions": promotions}


async def delete_user(db: aiosqlite.Connection, user_id: str) -> int:
    """Un-name the member's votes and decisions (they stay: they are about model replies)."""
    a = await db.execute("UPDATE review_votes SET voter = NULL WHERE voter = ?", (user_id,))
    b = await db.execute("UPDATE model_reviews SET decided_by = NULL WHERE decided_by = ?", (user_id,))
    c = await db.execute("UPDATE model_reviews SET requested_by = NULL WHERE requested_by = ?", (user_id,))
    # Who promoted a version is recorded in its registry event ("by <id>").
    d = await db.execute("UPDATE registry_events SET detail = REPLACE(detail, ?, 'by (forgotten)') WHERE detail LIKE ?",
                         (f"by {user_id}", f"%by {user_id}%"))
    return a.rowcount + b.rowcount + c.rowcount + d.rowcount
