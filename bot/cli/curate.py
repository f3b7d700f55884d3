"""`personabot curate`: review stored persona replies in the terminal (approve, reject, correct).

Only approved or corrected replies become training data; a correction keeps the original.
"""
from __future__ import annotations

import typer

from bot.cli.common import console, fail, print_json, run_async, settings_from


def curate(
    ctx: typer.Context,
    persona: str = typer.Option(None, "--persona", "-p", help="Only this persona's replies."),
    list_only: bool = typer.Option(False, "--list", help="List pending replies and exit."),
    approve: list[int] = typer.Option([], "--approve", help="Approve reply ID (repeatable)."),
    reject: list[int] = typer.Option([], "--reject", help="Reject reply ID (repeatable)."),
    correct: int = typer.Option(None, "--correct", help="Correct reply ID; give the new text with --text."),
    text: str = typer.Option(None, "--text", help="Corrected reply text for --correct."),
    limit: int = typer.Option(20, "--limit", help="How many pending replies to show."),
    curator: str = typer.Option("cli", "--as", help="Curator name recorded with each decision."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Review stored replies. With no action options, walks through pending replies interactively:
    [a]pprove, [r]eject, [c]orrect, [s]kip, [q]uit."""
    from bot.store import open_db
    from bot.store import curation

    settings = settings_from(ctx)
    if correct is not None and not text:
        raise fail("--correct needs the corrected reply with --text")

    async def act(db):
        done = []
        for mid in approve:
            done.append((mid, "approved", await curation.curate(db, mid, status="approved", curator=curator)))
        for mid in reject:
            done.append((mid, "rejected", await curation.curate(db, mid, status="rejected", curator=curator)))
        if correct is not None:
            done.append((correct, "corrected",
                         await curation.curate(db, correct, status="corrected", curator=curator, correction=text)))
        return done

    async def go():
        async with open_db(settings.core.db_path) as db:
            if approve or reject or correct is not None:
                return "acted", await act(db)
            pending = await curation.list_replies(db, persona=persona, limit=limit)
            if list_only or as_json:
                return "listed", (pending, await curation.counts(db, persona))
            for item in pending:
                console.rule(f"reply {item.message_id} · {item.persona} · {item.created_at}")
                console.print(f"[bold]member:[/] {item.prompt}", highlight=False)
                console.print(f"[bold]{item.persona}:[/] {item.reply}", highlight=False)
                choice = typer.prompt("[a]pprove [r]eject [c]orrect [s]kip [q]uit", default="s")
                if choice.startswith("q"):
                    break
                if choice.startswith("a"):
                    await curation.curate(db, item.message_id, status="approved", curator=curator)
                elif choice.startswith("r"):
                    await curation.curate(db, item.message_id, status="rejected", curator=curator)
                elif choice.startswith("c"):
                    fixed = typer.prompt("corrected reply")
                    await curation.curate(db, item.message_id, status="corrected", curator=curator, correction=fixed)
            return "walked", await curation.counts(db, persona)

    kind, result = run_async(go())
    if kind == "acted":
        missing = [mid for mid, _, ok in result if not ok]
        if as_json:
            print_json([{"id": mid, "status": st, "found": ok} for mid, st, ok in result])
        else:
            for mid, st, ok in result:
                console.print(f"reply {mid}: {st}" if ok else f"[red]reply {mid}: no such reply[/]")
        if missing:
            raise typer.Exit(1)
    elif kind == "listed":
        pending, counts = result
        if as_json:
            print_json({"counts": counts, "pending": [p.__dict__ for p in pending]})
        else:
            console.print(f"counts: {counts}")
            for p in pending:
                console.print(f"[bold]{p.message_id}[/] {p.persona}: {p.prompt[:60]!r} → {p.reply[:80]!r}", highlight=False)
    else:
        console.print(f"counts: {result}")


def register(app: typer.Typer) -> None:
    app.command("curate")(curate)
