"""`personabot dataset build|validate|list`: build versioned training datasets and check JSONL files."""
from __future__ import annotations

from pathlib import Path

import typer

from bot.cli.common import JSON_OPTION, console, err_console, load_persona_or_exit, print_json, run_async, settings_from

dataset_app = typer.Typer(help="Build, validate and list training datasets.", no_args_is_help=True)


def _fail(message: str, code: int = 1) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, markup=True, soft_wrap=True)
    return typer.Exit(code)


@dataset_app.command("build")
def build(
    ctx: typer.Context,
    persona: str = typer.Option(..., "--persona", "-p", help="Persona whose sources and approved logs are combined."),
    session_gap: float = typer.Option(120.0, "--session-gap", help="Minutes of silence that start a new session."),
    val_fraction: float = typer.Option(0.1, "--val-fraction", help="Share of the newest sessions held out for validation."),
    media: str = typer.Option("placeholder", "--media", help="Media with a caption: 'placeholder' keeps the caption behind an [image]-style token, 'drop' keeps the caption alone. Media-only messages are always left out (counted as dropped_media_only)."),
    links: str = typer.Option("placeholder", "--links", help="Link-only messages: 'placeholder' ([link]) or 'drop'."),
    max_chars: int = typer.Option(2000, "--max-chars", help="Cap on one message's length (cut at a word boundary)."),
    max_tokens: int = typer.Option(None, "--max-tokens", help="Longest example in tokens (default: the persona's training.max_length); longer conversations are split between turns."),
    near_dup: float = typer.Option(0.85, "--near-dup", help="Jaccard similarity at which two examples count as near-duplicates."),
    no_dedup: bool = typer.Option(False, "--no-dedup", help="Keep duplicates (not recommended)."),
    no_curated: bool = typer.Option(False, "--no-curated", help="Leave approved curated logs out."),
    no_prompted_posts: bool = typer.Option(False, "--no-prompted-posts", help="Leave posts-only sessions (tweets, a Discord data package, Facebook/Instagram posts) out instead of pairing each post with a neutral prompt made from its keywords."),
    fmt: str = typer.Option("openai", "--format", help="'openai' (train/val JSONL) or 'hf' (also a Hugging Face dataset and an Axolotl snippet)."),
    tokenizer: Path = typer.Option(None, "--tokenizer", help="Folder of a Hugging Face tokenizer for token counts (default: the persona's model when available locally, else an estimate)."),
    region: str = typer.Option(None, "--region", help="Phone region (GB, DE, US...) for finding national-format phone numbers in every source, overriding each source's own (from `import --region` or the export's hints). Approved logs use it too."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Combine a persona's imports, synthetic conversations and approved logs into a new dataset version."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from bot.store import open_db
    from trainer.dataset.build import BuildError, BuildOptions, build_dataset
    from trainer.dataset.phones import normalise_region
    from trainer.dataset.tokens import load_tokenizer

    if fmt not in ("openai", "hf"):
        raise _fail("--format must be 'openai' or 'hf'", 2)
    spec = load_persona_or_exit(ctx, persona)
    settings = settings_from(ctx)
    try:
        tok = load_tokenizer(spec.model.model, override=tokenizer, models_dir=settings.core.models_dir)
        options = BuildOptions(session_gap_s=session_gap * 60, val_fraction=val_fraction, media=media, links=links,
                               max_message_chars=max_chars, max_tokens=max_tokens, dedup=not no_dedup, near_dup_threshold=near_dup,
                               include_curated=not no_curated, hf=fmt == "hf", region=normalise_region(region),
                               prompted_posts=not no_prompted_posts)
    except (FileNotFoundError, ValueError) as exc:
        raise _fail(str(exc), 2)

    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeElapsedColumn(), console=err_console, disable=as_json, transient=True) as bar:
        tasks: dict[str, int] = {}

        def progress(step: str, done: int, total: int) -> None:
            if step not in tasks:
                tasks[step] = bar.add_task(step, total=max(total, 1))
            bar.update(tasks[step], completed=done, total=max(total, 1))

        async def go():
            async with open_db(settings.core.db_path) as db:
                return await build_dataset(db, persona=spec, data_dir=settings.core.data_dir, options=options,
                                           tokenizer=tok, progress=progress)

        try:
            result = run_async(go())
        except BuildError as exc:
            raise _fail(str(exc))
    m = result.manifest
    if as_json:
        print_json({"folder": str(result.folder), "dataset_id": result.dataset_id, **m})
        return
    c = m["counts"]
    console.print(f"Built {persona} v{result.version} in {result.folder}: {c['train_examples']} train / {c['val_examples']} val examples "
                  f"from {c['messages_read']} messages ({c['sessions_kept']}/{c['sessions']} sessions kept): "
                  f"{c['examples_from_conversations']} from conversations, {c['examples_from_posts']} from posts.", highlight=False)
    by = (m.get("curated") or {}).get("by_status")
    if by:
        console.print(f"Curated replies: {by['approved']} approved, {by['corrected']} corrected (trained); left out "
                      f"{by['pending']} pending, {by['rejected']} rejected, {by['out_of_scope']} from other guilds, "
                      f"{by['not_opted_in']} no longer opted in.", highlight=False)
    console.print("Dropped: " + (", ".join(f"{k} {v}" for k, v in m["dropped"].items()) or "nothing"), highlight=False)
    console.print("PII replaced: " + ", ".join(f"{k} {v}" for k, v in m["pii"].items()), highlight=False)
    v = m["validation"]
    console.print(f"Tokens ({v['tokenizer']}): mean {v['distributions']['tokens']['mean']}, max {v['distributions']['tokens']['max']}; "
                  f"~{v['estimate']['billed_tokens']} tokens for {v['estimate']['epochs']} epochs. Report: {result.folder / 'report.md'}", highlight=False)


@dataset_app.command("validate")
def validate(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="A chat-format JSONL file ({\"messages\": [...]} per line)."),
    persona: str = typer.Option(None, "--persona", "-p", help="Use this persona's model tokenizer and max length."),
    max_tokens: int = typer.Option(None, "--max-tokens", help="Token limit per example (default: the persona's, else 4096)."),
    tokenizer: Path = typer.Option(None, "--tokenizer", help="Folder of a Hugging Face tokenizer (default: estimate, ~4 chars per token)."),
    allow_silence: bool = typer.Option(False, "--allow-silence", help="Accept empty assistant messages (deliberate silence)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Check a JSONL file like the OpenAI cookbook does (plus alternation and last turn); exit 1 on errors."""
    from trainer.dataset.tokens import TokenCounter, load_tokenizer
    from trainer.dataset.validate import Validator, validate_file

    if not file.is_file():
        raise _fail(f"{file}: no such file", 2)
    limit = max_tokens or 4096
    model = ""
    if persona:
        spec = load_persona_or_exit(ctx, persona)
        limit = max_tokens or spec.training.max_length
        model = spec.model.model
        allow_silence = allow_silence or spec.may_stay_silent
    try:
        tok = load_tokenizer(model, override=tokenizer, models_dir=settings_from(ctx).core.models_dir) if (model or tokenizer) else None
    except FileNotFoundError as exc:
        raise _fail(str(exc), 2)
    report = validate_file(file, Validator(counter=TokenCounter(tok), max_tokens=limit, allow_silence=allow_silence))
    if as_json:
        print_json({"file": str(file), **report})
    else:
        d = report["distributions"]
        console.print(f"{file}: {report['examples']} examples, {'no errors' if report['ok'] else 'ERRORS'}", highlight=False)
        for key, n in report["errors"].items():
            console.print(f"  {key}: {n}", highlight=False)
        for line in report["error_lines"][:20]:
            console.print(f"  [yellow]{line}[/]", highlight=False)
        for name in ("messages", "tokens", "assistant_tokens"):
            s = d[name]
            console.print(f"  {name} per example: min {s['min']}, mean {s['mean']}, median {s['median']}, p95 {s['p95']}, max {s['max']}", highlight=False)
        e = report["estimate"]
        console.print(f"  tokenizer: {report['tokenizer']}; over {limit} tokens: {report['over_max_tokens']}; "
                      f"~{e['billed_tokens']} tokens for {e['epochs']} epochs", highlight=False)
    if not report["ok"]:
        raise typer.Exit(1)


@dataset_app.command("list")
def list_versions_cmd(ctx: typer.Context, persona: str = typer.Option(None, "--persona", "-p", help="Only this persona."),
                      as_json: bool = JSON_OPTION) -> None:
    """List built dataset versions (status 'stale' once data in them had to be forgotten)."""
    from bot.store import open_db
    from trainer.dataset.versions import list_versions

    settings = settings_from(ctx)

    async def go():
        async with open_db(settings.core.db_path) as db:
            return await list_versions(db, persona)

    rows = run_async(go())
    if as_json:
        print_json(rows)
        return
    for r in rows:
        console.print(f"{r['persona']} v{r['version']} [{r['status']}] {r['created_at']} {r['path']}", highlight=False)
    if not rows:
        console.print("No dataset versions yet.")


def register(app: typer.Typer) -> None:
    app.add_typer(dataset_app, name="dataset")
