"""`personabot trainer`: the scheduled trainer daemon (APScheduler; cron per persona).

Runs until interrupted. Each persona with `[schedule] enabled = true` retrains on its cron when
enough new approved examples arrived (or its active version is tainted): synth → build → train →
gate → promote. `--once` runs every enabled persona now, as if its cron fired, and exits;
`--force --persona NAME` retrains one persona now regardless of new data; `--status` shows the
schedule and recent runs. Results go to the log and, through the bot, to each admin channel.
"""
from __future__ import annotations

import logging

import typer

from bot.cli.common import JSON_OPTION, console, err_console, fail, print_json, run_async, settings_from

log = logging.getLogger(__name__)


def trainer(
    ctx: typer.Context,
    once: bool = typer.Option(False, "--once", help="Run every enabled persona's scheduled check now, then exit."),
    force: bool = typer.Option(False, "--force", help="Retrain --persona now, even without new examples, then exit."),
    persona: str = typer.Option(None, "--persona", "-p", help="With --force or --once: only this persona."),
    status: bool = typer.Option(False, "--status", help="Show next runs and recent runs, then exit."),
    keep_running: bool = typer.Option(False, "--keep-running", help="With no persona scheduled, stay up idle (and healthy) "
                                      "instead of exiting: for service managers that restart what exits (docker compose)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Run the scheduled trainer: retrain, gate and hot-swap personas on their \\[schedule] cron."""
    from bot.persona import PersonaError, load_personas

    settings = settings_from(ctx)
    try:
        personas = load_personas(settings.core.persona_dirs())
    except PersonaError as exc:
        raise fail(str(exc))
    if persona is not None and persona not in personas:
        raise fail(f"unknown persona {persona!r} (known: {', '.join(personas) or 'none'})")
    if force and persona is None:
        raise fail("--force needs --persona NAME", 2)
    if status:
        _status(settings, personas, as_json)
        return
    if force or once:
        outcomes = run_async(_run_now(settings, personas, persona, "force" if force else "schedule"))
        if as_json:
            print_json([vars(o) for o in outcomes])
        else:
            for o in outcomes:
                console.print(f"{o.persona}: {o.status} — {o.reason}", highlight=False)
            if not outcomes:
                console.print("No persona has [schedule] enabled = true.", markup=False)
        if any(o.status == "failed" for o in outcomes):
            raise typer.Exit(1)
        return
    enabled = [n for n, p in personas.items() if p.schedule.enabled]
    if not enabled and not keep_running:
        raise fail("no persona has [schedule] enabled = true; nothing to schedule")
    if not enabled:
        log.warning("no persona has [schedule] enabled = true: idle; restart the trainer after enabling one")
    try:
        run_async(_serve(settings, personas))
    except KeyboardInterrupt:
        err_console.print("Trainer stopped.")


async def _run_now(settings, personas, only, trigger):
    from bot.store import open_db
    from bot.store.backup import hold_database
    from trainer.schedule import TrainerDaemon

    with hold_database(settings.core.db_path):  # `db restore` refuses while this runs
        async with open_db(settings.core.db_path) as db:
            daemon = TrainerDaemon(db, settings, personas)
            if only is not None:
                outcomes = [await daemon.run_now(only, trigger)]
            else:
                outcomes = await daemon.run_once()
            await daemon.wait_idle()
            return outcomes


async def _serve(settings, personas):
    import asyncio
    import signal

    from bot.observability.metrics import TrainerMetrics
    from bot.observability.server import OpsServer, database_check
    from bot.store import open_db
    from bot.store.backup import hold_database
    from trainer.schedule import TrainerDaemon

    metrics = TrainerMetrics()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    with hold_database(settings.core.db_path):  # `db restore` refuses while this runs
        async with open_db(settings.core.db_path) as db:
            async with TrainerDaemon(db, settings, personas, metrics=metrics) as daemon:
                for name, when in sorted(daemon.next_runs().items()):
                    log.info("%s: next run %s (%s, UTC)", name, when, personas[name].schedule.cron)
                if settings.core.metrics_port is not None:
                    async def scheduler_check():
                        return None if not stop.is_set() else "shutting down"

                    server = OpsServer(metrics.registry, {"scheduler": scheduler_check, "database": database_check(db)},
                                       host=settings.core.metrics_host, port=settings.core.metrics_port)
                    async with server:
                        await stop.wait()
                else:
                    await stop.wait()
                # Leaving the block stops the daemon: a run in progress checkpoints and is recorded.
                log.info("stopping: runs in progress checkpoint first")
    log.info("trainer stopped")


def _status(settings, personas, as_json: bool) -> None:
    from datetime import datetime, timezone

    from bot.persona.schedule import cron_trigger
    from bot.store import open_db
    from trainer.schedule.runs import list_runs

    async def go():
        async with open_db(settings.core.db_path) as db:
            return await list_runs(db, limit=20)

    runs = run_async(go())
    now = datetime.now(timezone.utc)
    nexts = {n: str(cron_trigger(p.schedule.cron).get_next_fire_time(None, now))
             for n, p in personas.items() if p.schedule.enabled}
    if as_json:
        print_json({"next_runs": nexts, "runs": [vars(r) for r in runs]})
        return
    for name, when in nexts.items():
        console.print(f"{name}: next run {when}")
    for r in runs:
        console.print(f"#{r.id} {r.started_at[:16]} {r.persona} {r.trigger}: {r.status} — {r.reason or ''}", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("trainer")(trainer)
