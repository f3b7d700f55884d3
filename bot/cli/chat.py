"""`personabot chat`: talk to a persona in the terminal, streamed token by token.

Reads lines from stdin, so it works interactively and piped
(`printf 'hello\\n/quit\\n' | personabot chat --persona tim`). Commands: `/persona NAME`, `/reset`,
`/quit`. Nothing typed here is stored: the terminal has no consent flow, so it never logs.
"""
from __future__ import annotations

import sys
from typing import TextIO

import typer

from bot.cli.common import err_console, run_async, settings_from

HELP = "Commands: /persona NAME (switch), /reset (forget this conversation), /quit (exit)."


async def chat_loop(settings, persona_name: str, *, stdin: TextIO, stdout: TextIO, pool=None, seed: int | None = None) -> int:
    """Run the REPL until /quit or end of input. Returns the process exit code."""
    from bot.backends.base import BackendError
    from bot.backends.pool import BackendPool
    from bot.engine import ChatEngine, Turn
    from bot.persona import PersonaError, load_personas, macros

    try:
        personas = load_personas(settings.core.persona_dirs())
    except PersonaError as exc:
        err_console.print(f"[red]{exc}[/]")
        return 1
    if persona_name not in personas:
        err_console.print(f"[red]unknown persona {persona_name!r}[/] (known: {', '.join(personas) or 'none'})")
        return 1
    own_pool = pool is None
    pool = pool or BackendPool(settings)
    if own_pool:
        await _apply_active_versions(settings, pool, personas)
    engine = ChatEngine(pool.for_persona, other_persona_labels=[p.display_name for p in personas.values()])
    persona = personas[persona_name]
    history: list[Turn] = []
    interactive = stdin.isatty()

    def prompt() -> None:
        if interactive:
            stdout.write("you> ")
            stdout.flush()

    def greet() -> None:
        """A card's first message opens the conversation, as `/chat` does in Discord: shown, and in the history."""
        if persona.greeting.strip():
            text = macros.resolve(persona.greeting, char=persona.display_name, user=persona.user_label).strip()
            stdout.write(f"{persona.display_name}> {text}\n")
            history.append(Turn("persona", persona.display_name, text, from_persona=True))

    if interactive:
        stdout.write(f"Chatting with {persona.display_name}. {HELP}\n")
    try:
        # Load the model before the first prompt so a fetch/convert shows progress up front.
        try:
            pool.for_persona(persona)
        except BackendError as exc:
            err_console.print(f"[red]cannot start the {persona.model.backend} backend:[/] {exc}")
            return 1
        greet()
        prompt()
        for raw in iter(stdin.readline, ""):
            line = raw.rstrip("\r\n")
            if not line.strip():
                prompt()
                continue
            if line.startswith("/"):
                cmd, _, arg = line.partition(" ")
                if cmd == "/quit":
                    break
                if cmd == "/reset":
                    history.clear()
                    stdout.write("(conversation reset)\n")
                    greet()
                elif cmd == "/persona":
                    name = arg.strip()
                    if name not in personas:
                        stdout.write(f"(unknown persona {name!r}; known: {', '.join(personas)})\n")
                    else:
                        persona = personas[name]
                        history.clear()
                        stdout.write(f"(now chatting with {persona.display_name})\n")
                        greet()
                else:
                    stdout.write(f"(unknown command {cmd}) {HELP}\n")
                prompt()
                continue
            history.append(Turn("cli:you", persona.user_label, line))
            stdout.write(f"{persona.display_name}> ")
            stdout.flush()
            stream = engine.respond(persona, history, seed=seed)
            async for delta in stream:
                stdout.write(delta)
                stdout.flush()
            reply = stream.reply
            stdout.write("(silent)\n" if reply.silent else "\n")
            stdout.flush()
            if reply.error:
                err_console.print(f"[yellow]backend error:[/] {reply.error}")
            elif not reply.silent:
                history.append(Turn("persona", persona.display_name, reply.text, from_persona=True))
            prompt()
    finally:
        if own_pool:
            await pool.aclose()
    return 0


async def _apply_active_versions(settings, pool, personas) -> None:
    """Route personas to their promoted registry versions, as the Discord bot does at start-up."""
    from bot.serving.model_sync import ModelSync
    from bot.store import open_db

    async with open_db(settings.core.db_path) as db:
        sync = ModelSync(db, pool, personas)
        try:
            for result in await sync.start():
                if result.error:
                    err_console.print(f"[yellow]persona {result.persona}: keeping its spec model:[/] {result.error}")
        finally:
            await sync.aclose()


def run_terminal_chat(settings, persona_name: str | None = None) -> int:
    """Entry used by `chat` and by `run` when no Discord token is configured."""
    return run_async(chat_loop(settings, persona_name or settings.core.default_persona, stdin=sys.stdin, stdout=sys.stdout))


def chat(
    ctx: typer.Context,
    persona: str = typer.Option(None, "--persona", "-p", help="Persona to talk to (default: PERSONABOT_DEFAULT_PERSONA, 'tim')."),
) -> None:
    """Chat with a persona in the terminal; replies stream token by token.

    Type /persona NAME to switch, /reset to start over, /quit to leave. Piped input works too:
    printf 'hello\\n/quit\\n' | personabot chat --persona tim
    """
    code = run_terminal_chat(settings_from(ctx), persona)
    if code:
        raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    app.command("chat")(chat)
