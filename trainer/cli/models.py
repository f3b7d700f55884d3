"""`personabot model list|promote|rollback|review`: the model registry from the terminal.

`model review` is the human promotion review (`trainer.review`) with keys: blind reply pairs,
a vote per pair, then promote (after votes on at least half the pairs) or keep the current version.

Promotion and rollback switch the registry; a running bot follows within seconds (its model sync
polls the registry), with no restart. On vLLM the new adapter is loaded first, and the old one is
unloaded after a grace period, which this command waits for unless `--no-wait`.
"""
from __future__ import annotations

import typer

from bot.cli.common import JSON_OPTION, console, err_console, fail, load_persona_or_exit, print_json, run_async, settings_from

model_app = typer.Typer(help="List, promote and roll back a persona's fine-tuned versions.", no_args_is_help=True)


def _status(v) -> str:
    return f"{v.status} (tainted)" if v.tainted else v.status


def _row(v, human=None, promoted_by=None) -> dict:
    gate = v.metrics.get("eval") or {}
    judge = gate.get("judge") or {}
    return {"name": v.name, "persona": v.persona, "status": v.status, "tainted": v.tainted,
            "tainted_reason": v.tainted_reason, "status_reason": v.status_reason, "backend": v.backend,
            "base_model": v.base_model, "served_model": v.served_model, "adapter_path": v.adapter_path,
            "remote_model": v.remote_model, "dataset_version": v.dataset_version, "hyperparams": v.hyperparams,
            "val_loss": v.metrics.get("val_loss"), "gate": None if not gate else
            {"passed": gate.get("passed"), "reasons": gate.get("reasons"), "losses": gate.get("losses")},
            "probes": _probes(gate), "judge_win_rate": judge.get("win_rate"), "human_win_rate": human,
            "promoted_by": promoted_by, "created_at": v.created_at, "promoted_at": v.promoted_at}


def _probes(gate: dict) -> str | None:
    if "probes" not in gate:
        return None
    return f"{gate.get('probes_passed', 0)}/{len(gate['probes'])}"


def _rate(value) -> str:
    return "" if value is None else f"{value:.2f}"


@model_app.command("list")
def list_(
    ctx: typer.Context,
    persona: str = typer.Option(None, "--persona", "-p", help="Only this persona's versions."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Every version: status (candidate, active, retired, failed; tainted when trained on forgotten data), gate result,
    held-out loss, probes, the judge's and the human reviewers' win rates, who promoted it, and its data."""
    from rich.table import Table

    from bot.store import open_db, registry

    settings = settings_from(ctx)

    async def go():
        from bot.store import reviews

        async with open_db(settings.core.db_path) as db:
            return (await registry.list_versions(db, persona), await reviews.human_win_rates(db, persona),
                    await registry.promoted_by(db, persona))

    versions, human, promoters = run_async(go())
    if as_json:
        print_json({"versions": [_row(v, human.get(v.name), promoters.get(v.name)) for v in versions]})
        return
    if not versions:
        console.print("No model versions yet." + (f" Train one with `personabot train --persona {persona}`." if persona else ""))
        return
    table = Table(title="Model versions")
    # Narrow terminals fold the notes first: name and status stay whole. `served as` is in --json.
    for col in ("name", "status", "gate", "loss", "judge", "human", "promoted by", "dataset", "note"):
        table.add_column(col, min_width={"name": 7, "status": 16}.get(col), overflow="fold")
    for v in versions:
        gate = v.metrics.get("eval")
        verdict = "" if not gate else ("passed" if gate.get("passed") else "rejected")
        loss = v.metrics.get("val_loss")
        if loss is None and gate:
            loss = (gate.get("losses") or {}).get("candidate")
        style = "bold green" if v.status == "active" else ("red" if v.tainted or v.status == "failed" else None)
        probes = _probes(gate or {})
        table.add_row(v.name, _status(v), f"{verdict} {probes}" if verdict and probes else verdict,
                      "" if loss is None else f"{loss:.3f}", _rate(((gate or {}).get("judge") or {}).get("win_rate")),
                      _rate(human.get(v.name)), promoters.get(v.name, ""), v.dataset_version or "",
                      v.tainted_reason or v.status_reason or "", style=style)
    console.print(table)


def _wait_and_unload(settings, spec, result, grace: float, db_path) -> None:
    from bot.store import open_db
    from trainer.promote import unload_after_grace

    if not result.unload_pending:
        return
    err_console.print(f"Unloading {result.unload_pending} from vLLM in {grace:g}s, once replies still streaming from it "
                      "have finished (Ctrl-C leaves it loaded; unload it later with `model promote` or a vLLM restart).")

    async def go():
        async with open_db(db_path) as db:
            return await unload_after_grace(settings, spec, result.unload_pending, grace, db=db)

    try:
        if run_async(go()):
            console.print(f"Unloaded {result.unload_pending}.")
    except KeyboardInterrupt:
        err_console.print(f"{result.unload_pending} stays loaded on vLLM.")


GRACE_OPTION = typer.Option(120.0, "--grace", min=0, help="Seconds the old vLLM adapter stays loaded after the switch.")
NO_WAIT_OPTION = typer.Option(False, "--no-wait", help="Do not wait to unload the old vLLM adapter (it stays loaded).")


@model_app.command("promote")
def promote_cmd(
    ctx: typer.Context,
    persona: str = typer.Option(..., "--persona", "-p", help="Persona to promote a version of."),
    version: str = typer.Option(None, "--version", "-v", help="Version name (tim-v3) or number; default: the newest candidate that passed the gate."),
    force: bool = typer.Option(False, "--force", help="Promote even if it has not passed the gate or is tainted."),
    grace: float = GRACE_OPTION,
    no_wait: bool = NO_WAIT_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Make a version the persona's active one; the running bot hot-swaps to it without a restart."""
    from trainer.promote import promote

    _switch(ctx, persona, lambda db, settings, spec: promote(db, settings, spec, version, force=force, by=_me()),
            grace, no_wait, as_json)


def _me() -> str:
    import getpass

    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # no user name in this environment (a container without a passwd entry)
        return "cli:unknown"


@model_app.command("review")
def review_cmd(
    ctx: typer.Context,
    persona: str = typer.Option(..., "--persona", "-p", help="Persona whose candidate to review."),
    version: str = typer.Option(None, "--version", "-v", help="Candidate to review; default: the open review, else the newest candidate that passed the gate."),
    as_: str = typer.Option(None, "--as", help="Your name in the votes (default: your login name)."),
    grace: float = GRACE_OPTION,
    no_wait: bool = NO_WAIT_OPTION,
) -> None:
    """Compare the candidate's replies with the current version's, blind ("Reply 1 / Reply 2" in a random
    order): vote 1, 2 or s (same) per pair, then p (promote; after votes on at least half the pairs) or k (keep)."""
    from bot.store import open_db, reviews
    from trainer.promote import PromotionResult
    from trainer.review import ReviewError, finish_review, start_review

    spec = load_persona_or_exit(ctx, persona)
    settings = settings_from(ctx)
    voter = f"cli:{as_}" if as_ else _me()

    async def begin():
        async with open_db(settings.core.db_path) as db:
            return await start_review(db, spec, version, requested_by=voter)

    try:
        review = run_async(begin())
    except ReviewError as exc:
        raise fail(str(exc))
    console.print(f"[bold]Review of a new {spec.display_name} version[/] ({len(review.pairs)} pairs; "
                  f"which reply is new is hidden)\n{review.gate}", highlight=False)
    for i, pair in enumerate(review.pairs):
        one, two = pair.shown()
        console.print(f"\n[bold]Pair {i + 1}/{len(review.pairs)}[/]", highlight=False)
        for m in pair.messages[-4:]:
            who = spec.display_name if m["role"] == "assistant" else spec.user_label
            console.print(f"  [dim]{who}:[/] {_escape(m['content'])}", highlight=False)
        console.print(f"  [cyan]Reply 1:[/] {_escape(one) or '(nothing)'}", highlight=False)
        console.print(f"  [magenta]Reply 2:[/] {_escape(two) or '(nothing)'}", highlight=False)
        key = _ask("1 is better, 2 is better, s(ame), n(ext) or q(uit)", {"1", "2", "s", "n", "q"})
        if key == "q":
            break
        if key == "n":
            continue

        async def cast(pair_index=i, shown="same" if key == "s" else key):
            async with open_db(settings.core.db_path) as db:
                await reviews.vote(db, review.id, pair_index, voter, shown, via="terminal")

        run_async(cast())

    async def counted():
        async with open_db(settings.core.db_path) as db:
            return await reviews.tally(db, review.id)

    tally = run_async(counted())
    rate = "n/a" if tally.human_win_rate is None else f"{tally.human_win_rate:.2f}"
    console.print(f"\nVotes: {tally.votes} on {tally.pairs_voted} of {len(review.pairs)} pairs; "
                  f"the new version's human win rate: {rate}.")
    choices = {"k", "l"} | ({"p"} if tally.can_decide else set())
    prompt = ("p(romote), k(eep current) or l(ater)" if tally.can_decide else
              f"k(eep current) or l(ater) (promote needs votes on {tally.needed} pairs)")
    action = _ask(prompt, choices)
    if action == "l":
        console.print("The review stays open; run this command again to continue.")
        return

    async def finish():
        async with open_db(settings.core.db_path) as db:
            return await finish_review(db, settings, spec, review.id, "promote" if action == "p" else "keep", voter)

    try:
        line = run_async(finish())
    except ReviewError as exc:
        raise fail(str(exc))
    console.print(line)
    if action == "p" and not no_wait:
        _wait_and_unload(settings, spec, PromotionResult(spec.name, review.candidate, None, "promoted",
                                                         _old_adapter(spec, review)), grace, settings.core.db_path)


def _old_adapter(spec, review) -> str | None:
    """The vLLM adapter the promotion replaced (the review's baseline, when it was a version)."""
    if spec.model.backend != "vllm" or review.baseline.startswith("the base model"):
        return None
    return review.baseline


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def _ask(prompt: str, allowed: set[str]) -> str:
    while True:
        answer = typer.prompt(prompt).strip().lower()[:1]
        if answer in allowed:
            return answer
        err_console.print(f"Type one of: {', '.join(sorted(allowed))}")


@model_app.command("rollback")
def rollback_cmd(
    ctx: typer.Context,
    persona: str = typer.Option(..., "--persona", "-p", help="Persona to roll back."),
    to: str = typer.Option(None, "--to", help="Version to go back to; default: the one that served before (the spec's model if none)."),
    force: bool = typer.Option(False, "--force", help="Allow rolling back to a tainted version."),
    grace: float = GRACE_OPTION,
    no_wait: bool = NO_WAIT_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Go back to the previous version in one command; the running bot switches without a restart."""
    from trainer.promote import rollback

    _switch(ctx, persona, lambda db, settings, spec: rollback(db, settings, spec, to, force=force), grace, no_wait, as_json)


def _switch(ctx: typer.Context, persona: str, action, grace: float, no_wait: bool, as_json: bool) -> None:
    """Run a promotion or rollback, report it, then unload the old vLLM adapter after the grace period."""
    from bot.store import open_db
    from trainer.promote import PromotionError

    spec = load_persona_or_exit(ctx, persona)
    settings = settings_from(ctx)

    async def go():
        async with open_db(settings.core.db_path) as db:
            return await action(db, settings, spec)

    try:
        result = run_async(go())
    except PromotionError as exc:
        raise fail(str(exc))
    if as_json:
        print_json({"persona": result.persona, "active": result.version, "previous": result.previous,
                    "unload_pending": result.unload_pending})
    else:
        console.print(result.summary())
    if not no_wait:
        _wait_and_unload(settings, spec, result, grace, settings.core.db_path)


def register(app: typer.Typer) -> None:
    app.add_typer(model_app, name="model")
