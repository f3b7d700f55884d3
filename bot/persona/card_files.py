"""Character cards on disk: import a card as a persona folder, export a persona as a card (no Discord).

`import_card(content, filename, dirs=..., dest_root=..., name=None)` reads a card (PNG or JSON, or a
personabot bundle zip holding a card and its `adapter/` folder), refuses a name any persona folder
already has, and writes the persona folder under `dest_root` (the member personas folder) whole or
not at all:

- `persona.toml`: the mapped fields (`card_mapping.persona_from_card`), validated by the loader
  before the folder appears;
- `card.json`: the card exactly as read, unknown keys and extensions included: export starts from
  it, and the loader reads the lorebook from it;
- `avatar.png`: a PNG card's image without its card chunks (the persona's webhook avatar);
- seeds from the card's example dialogues: `templates/card.txt` (synthetic generation),
  `probes.toml` (behaviour probes), plus generic `topics.toml` and `profiles.toml` so that
  `personabot synth` works at once; `examples.txt` keeps the dialogues as read.

`provenance(db, spec)` gathers what `data.extensions.personabot` says of a persona (backend and
base model, active version and the sha256 of its adapter weights, dataset version and manifest
hash, consent scope); `export_card(spec, provenance, fmt)` returns the card's bytes (`png`: V2
`chara` + V3 `ccv3` chunks on the avatar or a generated placeholder; `json`), and
`export_bundle(...)` a zip of the card and the adapter folder. Weights never go into a card.
"""
from __future__ import annotations

import hashlib
import io
import json
import re
import shutil
import tempfile
import tomllib
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Callable, Sequence

from pydantic import ValidationError

from bot.persona import card_png, macros
from bot.persona.card_mapping import char_name, card_from_persona, display_name_for, parse_examples, persona_from_card
from bot.persona.cards import V1, V2, V3, Card, CardError, as_spec, card_json, read_card, write_card_png
from bot.persona.loader import PersonaError, find_persona_folder, load_persona, persona_folders
from bot.persona.spec import PersonaSpec, check_persona_name

MAX_BUNDLE_BYTES = 1024**3           # an adapter zip, uncompressed
_SLUG = re.compile(r"[^a-z0-9]+")

TOPICS = """# Generic topics for synthetic chats with an imported character; replace them with your own.
general = [
  "meeting {char} for the first time",
  "asking {char} about their day",
  "asking {char} for advice on a small problem",
  "telling {char} some good news",
  "a disagreement with {char} about something trivial",
  "asking {char} about their past",
  "planning something together with {char}",
  "saying goodbye to {char} for the night",
]
"""

PROFILES = """# Who talks to an imported character in synthetic chats; `text` completes "The user is …".
[[profile]]
id = "newcomer"
text = "someone meeting the character for the first time, curious and a little shy"

[[profile]]
id = "regular"
text = "a friendly regular who writes short, casual messages"

[[profile]]
id = "sceptic"
text = "a sceptical person who asks pointed questions"
"""


@dataclass
class ImportResult:
    name: str
    folder: Path
    spec: PersonaSpec
    card: Card
    examples: int = 0
    warnings: list[str] = field(default_factory=list)


def slug_for(display_name: str) -> str:
    """A persona name from a character name: 'Seraphina the Wise' → 'seraphina-the-wise'."""
    slug = _SLUG.sub("-", display_name.lower()).strip("-")[:40].strip("-")
    return slug if slug[:1].isalpha() else f"card-{slug}".strip("-")


def _braces_safe(text: str) -> str:
    """Card text inside a synthetic template: macros become slots, other braces can't be taken for slots."""
    text = re.sub(r"\{\{\s*user\s*\}\}", "\0U", re.sub(r"\{\{\s*char\s*\}\}", "\0P", text, flags=re.I), flags=re.I)
    return text.replace("{", "(").replace("}", ")").replace("\0P", "{persona}").replace("\0U", "{user}")


def _seed_template(card: Card, dialogues: list[list[dict]], char: str) -> str:
    about = card.text("description").strip()[:1500]
    lines = ["# Chats in the voice of an imported character card, seeded with its example dialogues.",
             "# tags: general",
             "Write a chat between {persona} and a user.", ""]
    if about:
        lines += [f"About {{persona}}: {_braces_safe(macros.resolve(about, char='{{char}}'))}", ""]
    if dialogues:
        lines.append("Example exchanges showing how {persona} talks:")
        for dialogue in dialogues[:5]:
            for m in dialogue:
                label = "{persona}" if m["role"] == "assistant" else "{user}"
                text = _braces_safe(m["content"].replace(char, "{{char}}")).replace("\n", " ")
                lines.append(f"{label}: {text}")
            lines.append("")
    lines += ["The user is {user_profile}. They are chatting about {topic}.", "",
              'Format: 8 to 14 messages, alternating, each on its own line starting with "{user}:" or "{persona}:". '
              "{persona} stays in character and sends the last message. Write only the chat."]
    return "\n".join(lines) + "\n"


def _probes(dialogues: list[list[dict]]) -> str:
    import tomli_w

    probes = []
    for i, dialogue in enumerate(dialogues[:10], 1):
        # The conversation up to the first member turn that the example answers.
        for at, m in enumerate(dialogue):
            if m["role"] == "user" and at + 1 < len(dialogue) and dialogue[at + 1]["role"] == "assistant":
                turns = dialogue[: at + 1]
                while turns and turns[0]["role"] == "assistant":
                    turns = turns[1:]
                probes.append({"name": f"example-{i}", "conversation": turns,
                               "must_not_contain": ["as an AI", "language model"], "expect_silence": False})
                break
    if not probes:
        probes.append({"name": "answers-a-hello", "prompt": "Hello! Who are you?",
                       "must_not_contain": ["as an AI", "language model"], "expect_silence": False})
    header = ("# Behaviour probes seeded from the card's example dialogues (format: trainer/evaluate/probes.py).\n"
              "# Each also checks that the reply ends by itself and leaks no speaker label.\n\n")
    return header + tomli_w.dumps({"defaults": {"temperature": 0.0, "seed": 0}, "probe": probes})


def _read_bundle(content: bytes, filename: str) -> tuple[bytes, str, dict[str, bytes]]:
    """A personabot bundle zip → (card bytes, card file name, adapter files by relative path)."""
    where = Path(filename).name
    try:
        archive = zipfile.ZipFile(io.BytesIO(content))
    except zipfile.BadZipFile as exc:
        raise CardError(f"{where}: not a valid zip file ({exc})") from None
    with archive:
        infos = [i for i in archive.infolist() if not i.is_dir()]
        if sum(i.file_size for i in infos) > MAX_BUNDLE_BYTES:
            raise CardError(f"{where}: the zip unpacks to more than {MAX_BUNDLE_BYTES // 2**30} GB")
        cards = [i for i in infos if i.filename in ("card.png", "card.json")]
        if not cards:
            raise CardError(f"{where}: the zip holds no card.png or card.json at its top level")
        adapter: dict[str, bytes] = {}
        for info in infos:
            path = PurePosixPath(info.filename)
            if path.parts[:1] != ("adapter",):
                continue
            if path.is_absolute() or ".." in path.parts or len(path.parts) < 2:
                raise CardError(f"{where}: unsafe path in the zip: {info.filename!r}")
            adapter["/".join(path.parts[1:])] = archive.read(info)
        return archive.read(cards[0]), cards[0].filename, adapter


def _display_names(dirs: Sequence[Path]) -> dict[str, PersonaSpec]:
    """Display name (lower case) → persona, of every persona folder that loads."""
    taken = {}
    for folder in persona_folders(list(dirs)).values():
        try:
            spec = load_persona(folder)
        except PersonaError:
            continue
        taken[spec.display_name.lower()] = spec
    return taken


def import_card(content: bytes, filename: str, *, dirs: Sequence[Path], dest_root: Path,
                name: str | None = None, model: dict | None = None, display_name: str | None = None) -> ImportResult:
    """Create a persona folder under `dest_root` from a card; `dirs` are every persona folder root.

    `model` (`{"backend": ..., "model": ...}`, either key optional) chooses what serves the persona;
    default: what a personabot card says it ran on, else the embedded local model. `display_name`
    replaces the card's name in Discord; two personas may not share one (replies are told apart by it).
    """
    adapter_files: dict[str, bytes] = {}
    if content.startswith(b"PK\x03\x04"):
        content, inner, adapter_files = _read_bundle(content, filename)
        filename = f"{Path(filename).name}:{inner}"
    card = read_card(content, filename)
    char = char_name(card)
    name = name or slug_for(card.name)
    try:
        check_persona_name(name)
    except ValueError as exc:
        raise CardError(f"--name {name!r}: {exc}") from None
    existing = find_persona_folder(list(dirs), name)
    if existing is not None or (dest_root / name).exists():
        raise CardError(f"a persona called {name!r} already exists ({existing or dest_root / name}); "
                        "choose another name with --name")
    dialogues = parse_examples(card.text("mes_example"), char)
    fields = persona_from_card(card, name=name, imported_from=Path(filename).name, has_avatar=card.image is not None)
    if display_name:
        fields["display_name"] = display_name_for(display_name)
    clash = _display_names(dirs).get(fields["display_name"].lower())
    if clash is not None and clash.name == name:
        # A concurrent import of the same card installed it since the check above.
        raise CardError(f"a persona called {name!r} already exists; choose another name with --name")
    if clash is not None:
        raise CardError(f"persona {clash.name!r} is already called {clash.display_name!r} in Discord; "
                        "choose another display name (--display-name)")
    if adapter_files:
        # The bundled adapter is a folder on this machine: the local backend serves it (vLLM would
        # need it on its own server); the options below may still say otherwise.
        fields["model"] = {**(fields.get("model") or {}), "backend": "local",
                           "adapter": str((dest_root / name / "adapter").resolve())}
    if model:
        fields["model"] = {**(fields.get("model") or {}), **{k: v for k, v in model.items() if v}}
    def fill(tmp: Path) -> None:
        if adapter_files:
            for rel, data in adapter_files.items():
                (tmp / "adapter" / rel).parent.mkdir(parents=True, exist_ok=True)
                (tmp / "adapter" / rel).write_bytes(data)
        _write_files(tmp, card, fields, dialogues, char)

    spec = install_persona_folder(dest_root, name, fill)
    warnings = list(card.warnings)
    if any(word in spec.display_name.lower() for word in ("discord", "clyde")):
        warnings.append(f"Discord refuses webhook names containing 'discord' or 'clyde', so {spec.display_name!r} "
                        "cannot post through a webhook; change display_name in persona.toml")
    if spec.display_name != card.name:
        warnings.append(f"the name became one line of at most 80 characters: {spec.display_name!r}")
    if not card.text("first_mes").strip():
        warnings.append("the card has no first message: /chat threads open without a greeting")
    return ImportResult(name, dest_root / name, spec, card, len(dialogues), warnings)


def install_persona_folder(dest_root: Path, name: str, fill: Callable[[Path], None], *,
                           error: type[Exception] = CardError, name_hint: str = "--name") -> PersonaSpec:
    """Write the member persona folder `dest_root/name` whole or not at all: `fill(tmp)` writes the
    files into a hidden temporary folder beside it, the spec is validated, and one rename makes it
    appear. Any failure removes the temporary folder; a name taken meanwhile raises `error`."""
    dest_root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".partial", dir=dest_root))
    try:
        fill(tmp)
        _validate(tmp, name, error)
        try:
            tmp.rename(dest_root / name)   # atomic; fails if a concurrent import took the name meanwhile
        except OSError:
            raise error(f"a persona called {name!r} already exists ({dest_root / name}); "
                        f"choose another name with {name_hint}") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return load_persona(dest_root / name)


def _write_files(folder: Path, card: Card, fields: dict, dialogues: list[list[dict]], char: str) -> None:
    import tomli_w

    toml_fields = {k: v for k, v in fields.items() if k != "name"}
    header = (f"# Imported from the character card {fields['card']['imported_from']!r} by `personabot persona import`.\n"
              "# Every key is documented in bot/persona/spec.py; the card itself is kept verbatim in card.json.\n")
    try:
        toml = tomli_w.dumps(toml_fields, multiline_strings=True)
    except (TypeError, ValueError) as exc:   # e.g. a null inside a personabot card's settings
        raise CardError(f"the card's personabot settings cannot be written as persona.toml: {exc}") from None
    (folder / "persona.toml").write_text(header + toml, encoding="utf-8")
    (folder / "card.json").write_bytes(card_json(card.raw))
    if card.image is not None:
        (folder / "avatar.png").write_bytes(card.image)
    if card.text("mes_example").strip():
        (folder / "examples.txt").write_text(macros.resolve(card.text("mes_example"), char=char), encoding="utf-8")
    (folder / "templates").mkdir()
    (folder / "templates" / "card.txt").write_text(_seed_template(card, dialogues, char), encoding="utf-8")
    (folder / "topics.toml").write_text(TOPICS.replace("{char}", json.dumps(char)[1:-1]), encoding="utf-8")
    (folder / "profiles.toml").write_text(PROFILES, encoding="utf-8")
    (folder / "probes.toml").write_text(_probes(dialogues), encoding="utf-8")


def _validate(tmp: Path, name: str, error: type[Exception] = CardError) -> PersonaSpec:
    """Load the spec written in `tmp` as if it were the folder `name` (the loader checks the name)."""
    raw = tomllib.loads((tmp / "persona.toml").read_text(encoding="utf-8"))
    raw["name"] = name
    try:
        return PersonaSpec.model_validate(raw)
    except ValidationError as exc:
        from bot.persona.loader import _describe   # the loader's wording: field path, what was expected

        raise error("\n".join(f"persona {name!r}: {_describe(e)}" for e in exc.errors())) from None


# -- export -------------------------------------------------------------------------------------


def adapter_sha256(path: str | Path | None) -> str | None:
    """sha256 of the adapter weights: the file itself, or a folder's adapter_model.safetensors (.bin)."""
    if not path:
        return None
    path = Path(path)
    if path.is_dir():
        path = next((path / n for n in ("adapter_model.safetensors", "adapter_model.bin") if (path / n).is_file()), path)
    if not path.is_file():
        return None
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def consent_scope(members: int | None) -> str:
    if members is None:
        return "not fine-tuned by personabot: the base model with this card's prompt, trained on no one's messages"
    return f"trained on consented logs from {members} members, synthetic data and the owner's exports"


async def provenance(db, spec: PersonaSpec, *, model_override=None) -> dict:
    """`data.extensions.personabot` of a persona: model, active version, dataset, consent scope."""
    from bot.store import registry

    model = model_override or spec.model
    version = await registry.active_version(db, spec.name) if db is not None else None
    out: dict = {"exported_by": "personabot", "exported_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                 "model": {"backend": (version.backend if version else model.backend),
                           "base_model": (version.base_model if version else model.model)},
                 "active_version": None, "dataset": None}
    members = None
    if version is not None:
        out["active_version"] = {"name": version.name, "adapter_sha256": adapter_sha256(version.adapter_path),
                                 **({"remote_model": version.remote_model} if version.remote_model else {})}
        from trainer.dataset.versions import dataset_provenance   # a plain query; no training code loads

        dataset = await dataset_provenance(db, spec.name, version.dataset_version)
        if dataset is not None:
            members = dataset.pop("members")
            out["dataset"] = dataset
        else:
            members = 0
    elif model.adapter:
        out["active_version"] = {"name": Path(model.adapter).name, "adapter_sha256": adapter_sha256(model.adapter)}
    out["consent"] = consent_scope(members)
    return out


def stored_card(spec: PersonaSpec) -> dict | None:
    if spec.card is None or spec.folder is None:
        return None
    path = spec.folder / spec.card.file
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PersonaError(f"{path}: missing (persona.toml's [card] names it)") from None


def avatar_png(spec: PersonaSpec) -> bytes:
    if spec.avatar_file and spec.folder is not None:
        path = spec.folder / spec.avatar_file
        data = path.read_bytes()
        try:
            list(card_png.iter_chunks(data))
        except card_png.PngError as exc:
            raise PersonaError(f"{path}: avatar_file must be a PNG: {exc}") from None
        return data
    return card_png.placeholder_png(spec.name)


def card_object(spec: PersonaSpec, prov: dict) -> dict:
    examples = ""
    if spec.folder is not None and spec.card is None and (spec.folder / "examples.txt").is_file():
        examples = (spec.folder / "examples.txt").read_text(encoding="utf-8")
    return card_from_persona(spec, stored_card(spec), prov, examples=examples)


def export_card(spec: PersonaSpec, prov: dict, fmt: str = "png") -> bytes:
    obj = card_object(spec, prov)
    if fmt == "json":
        # A V2 card stays V2 in JSON (its spec field is part of what it came with).
        original = spec.card.spec if spec.card else V3
        return card_json(as_spec(obj, V2 if original == V2 else V3))
    if fmt != "png":
        raise ValueError(f"unknown card format {fmt!r} (expected png or json)")
    return write_card_png(obj, avatar_png(spec))


def adapter_folder(spec: PersonaSpec, prov: dict, version_adapter: str | None) -> Path:
    for candidate in (version_adapter, spec.model.adapter):
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    raise CardError(f"persona {spec.name!r} has no adapter folder on this machine to bundle "
                    "(no active local/vLLM version with an adapter, and no [model].adapter folder)")


def export_bundle(spec: PersonaSpec, prov: dict, adapter: Path) -> bytes:
    """A zip: `card.png` and `adapter/…` (the LoRA folder, without training checkpoints)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("card.png", export_card(spec, prov, "png"))
        for path in sorted(adapter.rglob("*")):
            rel = path.relative_to(adapter)
            if path.is_file() and not rel.parts[0].startswith("checkpoint-"):
                archive.write(path, f"adapter/{rel.as_posix()}")
    return buf.getvalue()


__all__ = ["ImportResult", "import_card", "export_card", "export_bundle", "provenance", "adapter_folder", "slug_for",
           "consent_scope", "adapter_sha256", "CardError", "V1"]
