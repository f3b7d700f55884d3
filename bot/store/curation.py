"""The curation review queue: logged persona replies, their context and signals, and the decisions on them.

An item is one stored persona reply (an assistant row of `messages`) with the turns that led to it,
as many as fit the persona's context budget. Its signals: 👍/👎 counts, the reply's length, the
backend error if any, where it happened (conversation key, guild), and whether the probes' pure
checks would flag it (`bot.engine.checks`: label leak, runaway length).

- Status: pending, approved, rejected or corrected. `curate` is the one write path for decisions:
  it sets the current state on the message (who, when; a correction keeps `content` as the
  original) and appends the decision to `curation_decisions`, the audit trail.
- Order: items with 👎 first, then 👍, then the newest. Filters: persona, channel (a thread opened
  with /chat counts as its parent channel's too), guild, status and date range (`QueueFilter`).
- Guilds: a queue seen from one guild (`QueueFilter.in_guild`) holds only that guild's items, except
  for personas with `[curation] shared = true`; `training_scope` says which guilds' items may train
  a persona.
- Consent: an item exists only while the member it answered is opted in. Opting out takes it out of
  the queue (and out of the next dataset) at once; forgetting deletes it (messages cascade).

Only approved and corrected items become training data (`trainer.dataset.collect`). Discord-free;
used by `/curate` and `personabot curate`. Privacy: a curator's decisions are exported and, on
forget, un-named (`export_user`/`delete_user`); a member's items go with their messages.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from typing import Mapping

import aiosqlite

from bot.engine.checks import leaked_label, looks_runaway
from bot.engine.tokens import estimate_tokens
from bot.persona.spec import PersonaSpec
from bot.store.consent import OPTED_IN
from bot.store.db import transaction, utcnow

STATUSES = ("pending", "approved", "rejected", "corrected")
TRAINED = ("approved", "corrected")
VIA = ("discord", "terminal", "import", "auto")
DEFAULT_BUDGET = 1536
_CONTEXT_ROWS = 60          # rows read back per item before the token budget trims them
SESSION_GAP_S = 2 * 3600    # as `dataset build`'s default: a longer silence starts another conversation


def _parse_time(value: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if value else None
    except ValueError:
        return None


@dataclass(frozen=True)
class ContextTurn:
    role: str               # "member" or "persona"
    speaker: str            # display name, never an id
    text: str


@dataclass(frozen=True)
class Signals:
    thumbs_up: int
    thumbs_down: int
    length: int             # characters of the reply as logged
    error: str | None       # backend error type, if the reply is one
    label_leak: str | None  # the speaker label the reply leaks ("User:"), if any
    runaway: bool           # as long as the persona's max_tokens allows: probably cut off

    @property
    def flags(self) -> list[str]:
        out = []
        if self.error:
            out.append(f"backend error: {self.error}")
        if self.label_leak:
            out.append(f"label leak: {self.label_leak!r}")
        if self.runaway:
            out.append("runaway length")
        return out


@dataclass(frozen=True)
class ReviewItem:
    id: int
    persona: str
    conversation_key: str
    guild_id: str | None
    created_at: str
    reply: str              # the original, always
    correction: str | None
    status: str
    curated_by: str | None
    curated_at: str | None
    model: str | None
    context: tuple[ContextTurn, ...]
    signals: Signals

    @property
    def channel_id(self) -> str | None:
        """The Discord channel or thread id, for conversations logged from Discord."""
        kind, _, rest = self.conversation_key.partition(":")
        return rest if kind == "discord" and rest.isdigit() else None

    @property
    def final_reply(self) -> str:
        """What trains: the correction where there is one."""
        return self.correction if self.status == "corrected" and self.correction is not None else self.reply

    def to_dict(self) -> dict:
        out = asdict(self)
        out["context"] = [asdict(t) for t in self.context]
        out["signals"] = {**asdict(self.signals), "flags": self.signals.flags}
        return out


@dataclass(frozen=True)
class QueueFilter:
    """Which items a listing shows. `status=None` means every status."""

    persona: str | None = None
    personas: tuple[str, ...] | None = None     # only these personas (e.g. those a curator may curate)
    status: str | None = "pending"
    channel: str | None = None                  # channel or thread id, or a conversation key
    guild: str | None = None                    # exactly this guild's items
    since: str | None = None                    # ISO date or time, inclusive
    until: str | None = None                    # ISO date (the whole day) or time, inclusive
    in_guild: str | None = None                 # the queue as seen from this guild (isolation)
    shared: tuple[str, ...] = ()                # personas curated across guilds ([curation] shared)
    dm_personas: tuple[str, ...] = ()           # personas whose DM items this guild's queue shows
    ids: tuple[int, ...] | None = None

    def __post_init__(self):
        if self.status is not None and self.status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}, got {self.status!r}")
        for name in ("since", "until"):
            value = getattr(self, name)
            if value is not None:
                try:
                    datetime.fromisoformat(value)
                except ValueError:
                    raise ValueError(f"{name} must be an ISO date such as 2026-12-01, got {value!r}") from None


@dataclass(frozen=True)
class Scope:
    """Whose items may train a persona: `guilds=None` is every guild; DMs and the terminal have no guild."""

    guilds: frozenset[str] | None = None
    include_unguilded: bool = True
    note: str | None = None         # why the scope is narrower than the persona's items, when it is

    def to_dict(self) -> dict:
        return {"guilds": None if self.guilds is None else sorted(self.guilds),
                "include_unguilded": self.include_unguilded, "note": self.note}


_FROM = (
    "FROM messages a JOIN conversations c ON c.id = a.conversation_id "
    # The consent rule: an item exists only while the member it answered is opted in.
    "JOIN consent k ON k.user_id = a.author_id AND k.status = '" + OPTED_IN + "'"
)
_ITEMS = " WHERE a.role = 'assistant'"
_BASE = _FROM + _ITEMS
_FEEDBACK = "COALESCE(fb.up, 0) AS up, COALESCE(fb.down, 0) AS down"
# Feedback is small beside messages: aggregate it once and join, rather than count per row.
_FEEDBACK_JOIN = (" LEFT JOIN (SELECT message_id, SUM(value = 1) AS up, SUM(value = -1) AS down FROM feedback "
                  "GROUP BY message_id) fb ON fb.message_id = a.id")


def _until_bound(value: str) -> str:
    """An inclusive upper bound compared as text: a bare date means the whole day."""
    if len(value) == 10:
        return (date.fromisoformat(value) + timedelta(days=1)).isoformat()
    return value


def _where(f: QueueFilter) -> tuple[str, list]:
    sql, args = "", []
    if f.status is not None:
        sql += " AND a.curation_status = ?"
        args.append(f.status)
    if f.persona:
        sql += " AND c.persona = ?"
        args.append(f.persona)
    if f.personas is not None:
        sql += f" AND c.persona IN ({','.join('?' * len(f.personas))})" if f.personas else " AND 0"
        args += list(f.personas)
    if f.channel:
        key = f.channel if ":" in f.channel else f"discord:{f.channel}"
        sql += (" AND (c.key = ? OR c.key IN (SELECT 'discord:' || t.thread_id FROM chat_threads t "
                "WHERE 'discord:' || t.parent_channel_id = ?))")
        args += [key, key]
    if f.guild:
        sql += " AND c.guild_id = ?"
        args.append(f.guild)
    if f.since:
        sql += " AND a.created_at >= ?"
        args.append(f.since)
    if f.until:
        bound = _until_bound(f.until)
        sql += " AND a.created_at < ?" if len(f.until) == 10 else " AND a.created_at <= ?"
        args.append(bound)
    if f.in_guild is not None:
        shared = ",".join("?" * len(f.shared)) or "NULL"
        dms = ",".join("?" * len(f.dm_personas)) or "NULL"
        sql += (f" AND (c.guild_id = ? OR c.persona IN ({shared}) "
                f"OR (c.guild_id IS NULL AND c.persona IN ({dms})))")
        args += [f.in_guild, *f.shared, *f.dm_personas]
    if f.ids is not None:
        sql += f" AND a.id IN ({','.join('?' * len(f.ids)) or 'NULL'})"
        args += list(f.ids)
    return sql, args


def scope_condition(scope: Scope | None) -> tuple[str, list]:
    """SQL condition on the conversation (alias `c`) for items within `scope`: ("1", []) for every guild."""
    if scope is None or scope.guilds is None:
        return "1", []
    marks = ",".join("?" * len(scope.guilds)) or "NULL"
    unguilded = " OR c.guild_id IS NULL" if scope.include_unguilded else ""
    return f"(c.guild_id IN ({marks}){unguilded})", sorted(scope.guilds)


async def list_items(db: aiosqlite.Connection, filters: QueueFilter = QueueFilter(), *,
                     personas: Mapping[str, PersonaSpec] | None = None, limit: int = 20, offset: int = 0) -> list[ReviewItem]:
    """Items in review order (👎 first, then 👍, then newest), with context and signals.

    `personas` supplies each persona's budget, labels and max_tokens for the context and the checks;
    without a spec the default budget applies and the checks that need one are skipped.
    """
    where, args = _where(filters)
    sql = (f"SELECT a.id, c.persona, c.key, c.guild_id, a.created_at, a.content, a.corrected_content, a.curation_status, "
           f"a.curated_by, a.curated_at, a.model, a.error, a.conversation_id, a.reply_to, {_FEEDBACK} "
           f"{_FROM}{_FEEDBACK_JOIN}{_ITEMS}{where} "
           "ORDER BY (down > 0) DESC, (up > 0) DESC, a.id DESC LIMIT ? OFFSET ?")
    async with db.execute(sql, [*args, limit, offset]) as cur:
        rows = await cur.fetchall()
    items = []
    for r in rows:
        spec = (personas or {}).get(r["persona"])
        context = await _context(db, r["conversation_id"], r["id"], r["reply_to"], spec)
        reply = r["content"]
        signals = Signals(
            thumbs_up=r["up"], thumbs_down=r["down"], length=len(reply), error=r["error"],
            label_leak=leaked_label(reply, spec) if spec else None,
            runaway=looks_runaway(reply, spec.sampling.max_tokens) if spec else False,
        )
        items.append(ReviewItem(r["id"], r["persona"], r["key"], r["guild_id"], r["created_at"], reply,
                                r["corrected_content"], r["curation_status"], r["curated_by"], r["curated_at"],
                                r["model"], context, signals))
    return items


async def get_item(db: aiosqlite.Connection, item_id: int, *, personas: Mapping[str, PersonaSpec] | None = None) -> ReviewItem | None:
    """One item by id, whatever its status; None when it does not exist or its member is no longer opted in."""
    found = await list_items(db, QueueFilter(status=None, ids=(item_id,)), personas=personas, limit=1)
    return found[0] if found else None


async def _context(db: aiosqlite.Connection, conversation_id: int, reply_id: int, reply_to: int | None,
                   spec: PersonaSpec | None) -> tuple[ContextTurn, ...]:
    """The turns before the reply, oldest first, as many as fit the persona's budget (at least the one
    it answered), back to the last silence longer than `SESSION_GAP_S` (the dataset's session gap).

    Turns of members who are not opted in now are left out: a curator sees only consented words.
    """
    persona_name = spec.display_name if spec else "persona"
    budget = (spec.context_budget if spec else DEFAULT_BUDGET) - (estimate_tokens([{"content": spec.system_prompt}]) if spec else 0)
    async with db.execute(
        "SELECT m.id, m.role, m.content, m.corrected_content, m.curation_status, m.created_at, mem.display_name "
        "FROM messages m LEFT JOIN members mem ON mem.user_id = m.author_id "
        "JOIN consent k ON k.user_id = m.author_id AND k.status = ? "
        "WHERE m.conversation_id = ? AND m.id < ? ORDER BY m.id DESC LIMIT ?",
        (OPTED_IN, conversation_id, reply_id, _CONTEXT_ROWS),
    ) as cur:
        rows = await cur.fetchall()
    turns: list[ContextTurn] = []
    used = 0
    later: datetime | None = None
    for r in rows:
        at = _parse_time(r["created_at"])
        if turns and later is not None and at is not None and (later - at).total_seconds() > SESSION_GAP_S:
            break       # an earlier conversation in the same channel, not what led to this reply
        later = at
        if r["role"] == "assistant":
            text = r["corrected_content"] if r["curation_status"] == "corrected" and r["corrected_content"] else r["content"]
            turn = ContextTurn("persona", persona_name, text)
        else:
            turn = ContextTurn("member", r["display_name"] or "a member", r["content"])
        used += estimate_tokens([{"content": turn.text}])
        if turns and used > budget and r["id"] != reply_to:
            break
        turns.append(turn)
    turns.reverse()
    return tuple(turns)


async def curate(db: aiosqlite.Connection, message_id: int, *, status: str, curator: str,
                 correction: str | None = None, via: str = "terminal") -> bool:
    """Decide on an item: the one write path for curation. False when there is no such item (or its member opted out).

    `corrected` needs the corrected text; the original stays in `content` for audit. Every decision
    is appended to `curation_decisions` with who and when.
    """
    if status not in STATUSES:
        raise ValueError(f"unknown curation status {status!r} (expected one of {', '.join(STATUSES)})")
    if via not in VIA:
        raise ValueError(f"unknown decision channel {via!r}")
    if status == "corrected" and not (correction and correction.strip()):
        raise ValueError("a correction needs the corrected reply text")
    fixed = correction.strip() if status == "corrected" and correction else None
    now = utcnow()
    async with transaction(db):
        cur = await db.execute(
            "UPDATE messages SET curation_status = ?, corrected_content = ?, curated_by = ?, curated_at = ? "
            "WHERE id = ? AND role = 'assistant' AND author_id IN (SELECT user_id FROM consent WHERE status = ?)",
            (status, fixed, curator, now, message_id, OPTED_IN),
        )
        if cur.rowcount != 1:
            return False
        await db.execute("INSERT INTO curation_decisions(message_id, status, correction, curator, via, at) VALUES (?, ?, ?, ?, ?, ?)",
                         (message_id, status, fixed, curator, via, now))
    return True


async def decisions(db: aiosqlite.Connection, message_id: int) -> list[dict]:
    """The audit trail of one item, oldest first."""
    async with db.execute("SELECT status, correction, curator, via, at FROM curation_decisions WHERE message_id = ? ORDER BY id",
                          (message_id,)) as cur:
        return [dict(r) for r in await cur.fetchall()]


async def counts(db: aiosqlite.Connection, persona: str | None = None, filters: QueueFilter | None = None) -> dict[str, int]:
    """Items by status (consented members only), for one persona or all, within `filters` (its status is ignored)."""
    base = filters or QueueFilter()
    f = QueueFilter(**{**base.__dict__, "status": None, "persona": persona or base.persona})
    where, args = _where(f)
    async with db.execute(f"SELECT a.curation_status, COUNT(*) {_BASE}{where} GROUP BY a.curation_status", args) as cur:
        found = dict(await cur.fetchall())
    return {s: found.get(s, 0) for s in STATUSES}


async def count_approved(db: aiosqlite.Connection, persona: str, since: str | None, until: str | None = None,
                         scope: Scope | None = None) -> int:
    """Approved or corrected items of `persona` curated in (since, until], within `scope`: what a new run would add."""
    sql = f"SELECT COUNT(*) {_BASE} AND c.persona = ? AND a.curation_status IN ('approved', 'corrected')"
    args: list = [persona]
    if until is not None:
        sql += " AND a.curated_at <= ?"
        args.append(until)
    if since is not None:
        sql += " AND a.curated_at > ?"
        args.append(since)
    extra, more = scope_condition(scope)
    async with db.execute(f"{sql} AND {extra}", args + more) as cur:
        (n,) = await cur.fetchone()
    return int(n)


async def last_training_cutoff(db: aiosqlite.Connection, persona: str) -> str | None:
    """The data cut-off of the persona's last training run that trained (0009 `training_runs`)."""
    async with db.execute("SELECT MAX(data_cutoff) FROM training_runs WHERE persona = ? AND status IN ('promoted', 'awaiting', 'rejected')",
                          (persona,)) as cur:
        (cutoff,) = await cur.fetchone()
    return cutoff


async def training_scope(db: aiosqlite.Connection, spec: PersonaSpec) -> Scope:
    """Which guilds' items may train `spec`.

    Shared personas: every guild. Otherwise the guilds the persona is bound to by channel bindings;
    a persona with no binding belongs to the one guild its replies come from. Replies from several
    guilds and no binding are ambiguous, so none of them train it (the note says how to fix that).
    DMs and terminal chats belong to no guild and always count.
    """
    if spec.curation.shared:
        return Scope(None)
    async with db.execute("SELECT DISTINCT guild_id FROM channel_bindings WHERE persona = ? AND guild_id IS NOT NULL",
                          (spec.name,)) as cur:
        bound = {r[0] for r in await cur.fetchall()}
    if bound:
        return Scope(frozenset(bound))
    async with db.execute("SELECT DISTINCT guild_id FROM conversations WHERE persona = ? AND guild_id IS NOT NULL",
                          (spec.name,)) as cur:
        seen = {r[0] for r in await cur.fetchall()}
    if len(seen) <= 1:
        return Scope(frozenset(seen))
    return Scope(frozenset(), note=f"{spec.name} has replies from {len(seen)} guilds and no channel binding: "
                                   "bind it in its guild (/persona set) or set [curation] shared = true")


async def export_user(db: aiosqlite.Connection, user_id: str) -> dict:
    """Decisions the member made as a curator (their replies' own curation state is in `exchanges`)."""
    async with db.execute("SELECT message_id, status, correction, via, at FROM curation_decisions WHERE curator = ? ORDER BY id",
                          (user_id,)) as cur:
        made = [dict(r) for r in await cur.fetchall()]
    async with db.execute(
        "SELECT d.message_id, d.status, d.correction, d.via, d.at FROM curation_decisions d JOIN messages m ON m.id = d.message_id "
        "WHERE m.author_id = ? ORDER BY d.id", (user_id,)) as cur:
        about = [dict(r) for r in await cur.fetchall()]
    return {"decisions_made": made, "decisions_on_replies_to_you": about}


async def delete_user(db: aiosqlite.Connection, user_id: str) -> int:
    """Un-name the member's decisions as a curator (the decisions stay: they are about others' replies).

    Decisions on replies to the member go with those replies (messages cascade to curation_decisions).
    """
    a = await db.execute("UPDATE curation_decisions SET curator = NULL WHERE curator = ?", (user_id,))
    b = await db.execute("UPDATE messages SET curated_by = NULL WHERE curated_by = ?", (user_id,))
    return a.rowcount + b.rowcount
