"""`personabot curate ...`: review logged persona replies in the terminal.

Sub-commands: `review` (a keyboard walk), `list`, `approve`/`reject`/`correct` (by id, for scripts),
`export`/`import` (JSONL edited offline) and `auto` (bulk approval by rule). Only approved and
corrected replies become training data; a correction keeps the original for audit. Every decision
is recorded with the curator's name (`--as`, default `cli:<login>`). The queue is
`bot.store.curation`; nothing here imports discord.
"""
from __future__ import annotations

import getpass
import os
import re
import sys
from pathlib import Path

import typer
from rich.markup import escape

from bot.cli.common import JSON_OPTION, console, err_console, fail, print_json, run_async, settings_from

curate_app = typer.Typer(
    help="Review logged persona replies: approve, reject or correct them (only those become training data).",
    no_args_is_help=True,
)

STATUS_HELP = "pending, approved, rejected, corrected or all."
KEYS = r"\[a]pprove  \[r]eject  \[e]dit (correct)  \[s]kip  \[q]uit"
_PLAIN_KEYS = "[a]pprove  [r]eject  [e]dit (correct)  [s]kip  [q]uit"


def _curator(name: str | None) -> str:
    if name:
        return name if name.startswith("cli:") else f"cli:{name}"
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:   # no login name (containers): still record that it came from the terminal
        return "cli:terminal"


def _status(value: str | None, default: str | None = "pending") -> str | None:
    from bot.store.curation import STATUSES

    if value is None:
        return default
    if value == "all":
        return None
    if value not in STATUSES:
        raise fail(f"--status must be one of {', '.join(STATUSES)} or all, got {value!r}", 2)
    return value


def _filter(**kwargs):
    from bot.store.curation import QueueFilter

    try:
        return QueueFilter(**kwargs)
    except ValueError as exc:
        raise fail(str(exc), 2)


def _personas(ctx: typer.Context) -> dict:
    """Persona specs for context budgets and checks; a persona that fails to load just goes without."""
    from bot.persona import load_personas

    try:
        return load_personas(settings_from(ctx).core.persona_dirs())
    except Exception as exc:   # a broken persona file must not stop curation of the others
        err_console.print(f"[yellow]warning:[/] personas not loaded ({escape(str(exc))}); checks are skipped", highlight=False)
        return {}


def _open(ctx: typer.Context):
    from bot.store import open_db

    return open_db(settings_from(ctx).core.db_path)


def _show(item, personas: dict, position: str) -> None:
    from bot.curation.render import plain_lines, signals_line, when

    spec = personas.get(item.persona)
    name = spec.display_name if spec else item.persona
    console.rule(escape(f"item {item.id} · {name} · {item.conversation_key} · {when(item)} · {position}"))
    for speaker, text in plain_lines(item, persona=name):
        console.print(f"[bold]{escape(speaker)}:[/] {escape(text)}", highlight=False)
    console.print(f"[dim]{escape(signals_line(item))}[/]", highlight=False)


def _read_key() -> str | None:
    """One key: a single key press on a terminal, else the first letter of the next stdin line (None at its end)."""
    console.print(KEYS + " ? ", end="", highlight=False)
    if sys.stdin.isatty():
        import click

        try:
            key = click.getchar()
        except (KeyboardInterrupt, EOFError):   # Ctrl-C / Ctrl-D: quit, keeping what was decided
            console.print()
            return None
        console.print(escape(key), highlight=False)
        return key.lower()
    line = sys.stdin.readline()
    if not line:
        console.print()
        return None
    console.print(escape(line.strip()), highlight=False)
    return (line.strip()[:1] or " ").lower()


def _correction(original: str) -> str | None:
    """The corrected reply: from $EDITOR when set, else one line typed (or piped). None: left as it was."""
    editor = os.environ.get("EDITOR")
    if editor:
        import click

        try:
            edited = click.edit(original, editor=editor, extension=".txt", require_save=False)
        except click.ClickException as exc:     # the editor could not start or failed
            err_console.print(f"[red]{escape(exc.format_message())}[/]", highlight=False)
            return None
        text = (edited or "").strip()
    else:
        console.print("corrected reply (one line; empty keeps it pending): ", end="")
        line = sys.stdin.readline()
        text = line.strip()
    return text if text and text != original.strip() else None


@curate_app.command("review")
def review(
    ctx: typer.Context,
    persona: str = typer.Option(..., "--persona", "-p", help="Persona whose replies to review."),
    channel: str = typer.Option(None, "--channel", help="Only this channel or thread id (threads of a channel count as it)."),
    guild: str = typer.Option(None, "--guild", help="Only this guild id."),
    curator: str = typer.Option(None, "--as", help="Curator name recorded with each decision (default: your login)."),
) -> None:
    """Walk through pending replies, one key per decision.

    Most useful first (👎, then 👍, then newest). Keys: \\[a]pprove,
    \\[r]eject, \\[e]dit (correct: opens $EDITOR when set, else asks for one line), \\[s]kip, \\[q]uit.
    Keys can be piped on stdin, one per line: `printf 'a\\nr\\nq\\n' | personabot curate review -p tim`."""
    from bot.store import curation

    who = _curator(curator)
    personas = _personas(ctx)
    if persona not in personas:
        from bot.cli.common import load_persona_or_exit

        load_persona_or_exit(ctx, persona)   # names the known personas, or the spec's error
    flt = _filter(persona=persona, status="pending", channel=channel, guild=guild)

    async def go():
        done = {"approved": 0, "rejected": 0, "corrected": 0, "skipped": 0}
        async with _open(ctx) as db:
            skipped = 0
            while True:
                items = await curation.list_items(db, flt, personas=personas, limit=1, offset=skipped)
                if not items:
                    console.print("No more pending replies." if not skipped else f"End of the queue ({skipped} skipped).")
                    break
                item = items[0]
                left = (await curation.counts(db, persona, flt))["pending"]
                _show(item, personas, f"{left} pending")
                while True:
                    key = _read_key()
                    if key in (None, "q"):
                        return done
                    if key in ("a", "r"):
                        status = "approved" if key == "a" else "rejected"
                        await curation.curate(db, item.id, status=status, curator=who, via="terminal")
                        done[status] += 1
                        break
                    if key == "e":
                        fixed = _correction(item.reply)
                        if fixed is None:
                            console.print("No correction given; the reply stays pending.")
                            continue
                        await curation.curate(db, item.id, status="corrected", curator=who, correction=fixed, via="terminal")
                        done["corrected"] += 1
                        break
                    if key == "s":
                        skipped += 1
                        done["skipped"] += 1
                        break
                    console.print(f"Unknown key {escape(key)!r}; use one of: {KEYS}", highlight=False)
        return done

    done = run_async(go())
    console.print("Done: " + ", ".join(f"{n} {k}" for k, n in done.items()), highlight=False)


@curate_app.command("list")
def list_cmd(
    ctx: typer.Context,
    persona: str = typer.Option(None, "--persona", "-p", help="Only this persona."),
    status: str = typer.Option(None, "--status", help=f"Only this status: {STATUS_HELP} (default pending)."),
    channel: str = typer.Option(None, "--channel", help="Only this channel or thread id."),
    guild: str = typer.Option(None, "--guild", help="Only this guild id."),
    since: str = typer.Option(None, "--since", help="Logged on or after this date (2026-12-01) or time."),
    until: str = typer.Option(None, "--until", help="Logged on or before this date or time."),
    limit: int = typer.Option(20, "--limit", min=1, help="How many items to show."),
    as_json: bool = JSON_OPTION,
) -> None:
    """List items in review order (👎 first, then 👍, then newest) with counts by status."""
    from bot.curation.render import signals_line
    from bot.store import curation

    personas = _personas(ctx)
    flt = _filter(persona=persona, status=_status(status), channel=channel, guild=guild, since=since, until=until)

    async def go():
        async with _open(ctx) as db:
            return await curation.list_items(db, flt, personas=personas, limit=limit), await curation.counts(db, persona, flt)

    items, counts = run_async(go())
    if as_json:
        print_json({"counts": counts, "items": [i.to_dict() for i in items]})
        return
    console.print("counts: " + ", ".join(f"{k} {v}" for k, v in counts.items()), highlight=False)
    for item in items:
        asked = item.context[-1].text if item.context else ""
        console.print(f"[bold]{item.id}[/] {escape(item.persona)} {item.status:<9} {escape(repr(asked[:50]))} → "
                      f"{escape(repr(item.reply[:70]))}  [dim]{escape(signals_line(item))}[/]", highlight=False)
    if not items:
        console.print("No items match.")


def _decide_many(ctx: typer.Context, ids: list[int], status: str, curator: str | None, as_json: bool,
                 correction: str | None = None) -> None:
    from bot.store import curation

    who = _curator(curator)

    async def go():
        async with _open(ctx) as db:
            return [(i, await curation.curate(db, i, status=status, curator=who, correction=correction, via="terminal")) for i in ids]

    result = run_async(go())
    if as_json:
        print_json([{"id": i, "status": status, "found": ok} for i, ok in result])
    else:
        for i, ok in result:
            console.print(f"item {i}: {status}" if ok else f"[red]item {i}: no such item (or its member opted out)[/]", highlight=False)
    if not all(ok for _, ok in result):
        raise typer.Exit(1)


@curate_app.command("approve")
def approve(ctx: typer.Context, ids: list[int] = typer.Argument(..., help="Item ids (see `curate list`)."),
            curator: str = typer.Option(None, "--as", help="Curator name recorded with the decision."),
            as_json: bool = JSON_OPTION) -> None:
    """Approve items by id: they become training data."""
    _decide_many(ctx, ids, "approved", curator, as_json)


@curate_app.command("reject")
def reject(ctx: typer.Context, ids: list[int] = typer.Argument(..., help="Item ids (see `curate list`)."),
           curator: str = typer.Option(None, "--as", help="Curator name recorded with the decision."),
           as_json: bool = JSON_OPTION) -> None:
    """Reject items by id: they never train."""
    _decide_many(ctx, ids, "rejected", curator, as_json)


@curate_app.command("correct")
def correct(ctx: typer.Context, item_id: int = typer.Argument(..., help="Item id (see `curate list`)."),
            text: str = typer.Option(..., "--text", help="The corrected reply; it trains instead of the original."),
            curator: str = typer.Option(None, "--as", help="Curator name recorded with the decision."),
            as_json: bool = JSON_OPTION) -> None:
    """Correct an item: the corrected text trains, the original is kept for audit."""
    if not text.strip():
        raise fail("--text must not be empty", 2)
    _decide_many(ctx, [item_id], "corrected", curator, as_json, correction=text)


@curate_app.command("export")
def export(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="JSONL file to write (one item per line)."),
    persona: str = typer.Option(None, "--persona", "-p", help="Only this persona."),
    status: str = typer.Option(None, "--status", help=f"Only this status: {STATUS_HELP} (default pending)."),
    channel: str = typer.Option(None, "--channel", help="Only this channel or thread id."),
    guild: str = typer.Option(None, "--guild", help="Only this guild id."),
    since: str = typer.Option(None, "--since", help="Logged on or after this date or time."),
    until: str = typer.Option(None, "--until", help="Logged on or before this date or time."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Write items to FILE.jsonl for offline review.

    Edit each line's "status" (approved, rejected,
    corrected, pending) and "correction", then `personabot curate import FILE.jsonl`."""
    import json

    from bot.curation.transfer import export_record
    from bot.store import curation

    personas = _personas(ctx)
    flt = _filter(persona=persona, status=_status(status), channel=channel, guild=guild, since=since, until=until)

    async def go():
        out, offset = [], 0
        async with _open(ctx) as db:
            while True:
                page = await curation.list_items(db, flt, personas=personas, limit=500, offset=offset)
                out += page
                offset += len(page)
                if len(page) < 500:
                    return out

    items = run_async(go())
    file.parent.mkdir(parents=True, exist_ok=True)
    tmp = file.with_name(file.name + ".partial")
    with tmp.open("w", encoding="utf-8") as fh:
        for item in items:
            fh.write(json.dumps(export_record(item), ensure_ascii=False) + "\n")
    tmp.replace(file)
    if as_json:
        print_json({"file": str(file), "items": len(items)})
    else:
        console.print(f"Wrote {len(items)} item(s) to {escape(str(file))}.", highlight=False)


@curate_app.command("import")
def import_cmd(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="An edited `curate export` file."),
    curator: str = typer.Option(None, "--as", help="Curator name recorded with each decision."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Apply the decisions in an edited export.

    Reports what changed; a bad line is named as file:line: reason
    (the good lines are still applied, and the exit code is 1)."""
    from bot.curation.transfer import parse_lines
    from bot.store import curation

    if not file.is_file():
        raise fail(f"{file}: no such file", 2)
    try:
        text = file.read_text(encoding="utf-8-sig")   # an editor's byte-order mark is not a bad line
    except UnicodeDecodeError as exc:
        raise fail(f"{file}: not UTF-8 text ({exc.reason} at byte {exc.start})", 2)
    decisions, errors = parse_lines(text.splitlines(), file)
    who = _curator(curator)

    async def go():
        changed, unchanged = [], 0
        async with _open(ctx) as db:
            for d in decisions:
                item = await curation.get_item(db, d.id)
                if item is None:
                    errors.append(f"{file}:{d.line}: item {d.id}: no such item (or its member opted out)")
                    continue
                if item.status == d.status and (d.status != "corrected" or item.correction == d.correction):
                    unchanged += 1
                    continue
                await curation.curate(db, d.id, status=d.status, curator=who, correction=d.correction, via="import")
                changed.append({"id": d.id, "from": item.status, "to": d.status})
        return changed, unchanged

    changed, unchanged = run_async(go())
    errors.sort(key=lambda e: int(m.group(1)) if (m := re.search(r":(\d+): ", e)) else 0)
    if as_json:
        print_json({"changed": changed, "unchanged": unchanged, "errors": errors})
    else:
        for c in changed:
            console.print(f"item {c['id']}: {c['from']} → {c['to']}", highlight=False)
        console.print(f"{len(changed)} changed, {unchanged} unchanged, {len(errors)} bad line(s).", highlight=False)
        for e in errors:
            err_console.print(f"[red]{escape(e)}[/]", highlight=False, soft_wrap=True)
    if errors:
        raise typer.Exit(1)


@curate_app.command("auto")
def auto(
    ctx: typer.Context,
    persona: str = typer.Option(..., "--persona", "-p", help="Persona whose pending items to decide."),
    rule: str = typer.Option(..., "--rule", help="thumbs-up (👍 and no 👎), no-thumbs-down, or all."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print what would be approved; change nothing."),
    curator: str = typer.Option(None, "--as", help="Curator name recorded with each decision."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Approve pending items in bulk by rule.

    Items a check flags (backend error, label leak, runaway
    length) are held back for a person, and nothing is ever rejected automatically."""
    from bot.curation.rules import RULES, plan
    from bot.store import curation

    if rule not in RULES:
        raise fail(f"--rule must be one of {', '.join(RULES)}, got {rule!r}", 2)
    personas = _personas(ctx)
    who = _curator(curator)
    flt = _filter(persona=persona, status="pending")

    async def go():
        items, offset = [], 0
        async with _open(ctx) as db:
            while True:
                page = await curation.list_items(db, flt, personas=personas, limit=500, offset=offset)
                items += page
                offset += len(page)
                if len(page) < 500:
                    break
            approve_items, held = plan(items, rule)
            if not dry_run:
                for item in approve_items:
                    await curation.curate(db, item.id, status="approved", curator=who, via="auto")
        return items, approve_items, held

    items, approved, held = run_async(go())
    verb = "would approve" if dry_run else "approved"
    if as_json:
        print_json({"rule": rule, "dry_run": dry_run, "pending": len(items), "approved": [i.id for i in approved],
                    "held_back": [{"id": i.id, "flags": i.signals.flags} for i in held]})
        return
    for item in approved:
        console.print(f"{verb} item {item.id}: {escape(repr(item.reply[:70]))}", highlight=False)
    for item in held:
        console.print(f"held back item {item.id}: {escape(', '.join(item.signals.flags))}", highlight=False)
    console.print(f"{persona}: {len(items)} pending; {verb} {len(approved)} by rule {rule}; held back {len(held)}; "
                  f"{len(items) - len(approved) - len(held)} left for review.", highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(curate_app, name="curate")
