"""Character card ↔ persona: the field mapping, both ways (pure; files are `card_files.py`'s job).

Import (`persona_from_card`), onto `persona.toml`:

- `name` → `display_name` (and `{{char}}`: V3's `nickname` when set, else `name`);
- the system prompt, assembled in this template (blocks separated by a blank line, empty ones
  left out):

      {main}            the card's `system_prompt`, with `{{original}}` replaced by DEFAULT_MAIN;
                        DEFAULT_MAIN when the card has none (the V2 spec: the card's system prompt
                        replaces the frontend's own, which `{{original}}` stands for)
      {description}
      {char}'s personality: {personality}
      Scenario: {scenario}

- `post_history_instructions` → sent after the conversation on every reply (`{{original}}` is
  empty: personabot has no default of its own);
- `first_mes` → `greeting`, posted by `/chat`; `mes_example` → example dialogues
  (`parse_examples`), the seeds of synthetic generation and of behaviour probes;
- `alternate_greetings`, `creator_notes`, `tags`, `character_version`, `creator` → `[card]`;
- `{{char}}` is resolved here; `{{user}}` is kept and resolved at serving time.

A card exported by personabot carries `data.extensions.personabot.persona`, the persona's own
settings; when the card's standard fields still hash to what was exported (`fields_sha256`), import
restores those settings exactly, so export → import gives the same persona. A card edited
elsewhere since is mapped like any other card.

Export (`card_from_persona`): a persona imported from a card starts from its verbatim `card.json`
(every field and extension it came with), a native persona from its spec; both get
`data.extensions.personabot` (provenance, built by the caller) and the result is a V3 object.
"""
from __future__ import annotations

import copy
import hashlib
import json
import re
from datetime import datetime, timezone

from bot.persona import macros
from bot.persona.cards import V1, V3, Card, SPEC_VERSIONS

DEFAULT_MAIN = ("You are {{char}}. Write {{char}}'s next reply in this chat with {{user}}. "
                "Stay in character, speak only as {{char}}, and never write {{user}}'s part.")
_ORIGINAL = re.compile(r"\{\{\s*original\s*\}\}", re.IGNORECASE)
_START = re.compile(r"^\s*<START>\s*$", re.IGNORECASE)
_STANDARD_FIELDS = ("name", "description", "personality", "scenario", "first_mes", "mes_example", "system_prompt",
                    "post_history_instructions")
# Persona settings carried in data.extensions.personabot.persona (the model is provenance, not settings).
PORTABLE_FIELDS = ("display_name", "description", "avatar_url", "system_prompt", "user_label", "aliases", "context_budget",
                   "may_stay_silent", "error_reply", "empty_reply", "greeting", "post_history_instructions", "sampling")
EXTENSION = "personabot"


MAX_DISPLAY_NAME = 80     # Discord's limit on a webhook's username


def display_name_for(name: str) -> str:
    """A card's name as a Discord display name: one line, at most 80 characters."""
    return " ".join(name.split())[:MAX_DISPLAY_NAME].strip()


def char_name(card: Card) -> str:
    return (card.text("nickname").strip() if card.spec == V3 else "") or card.name


def assemble_system_prompt(card: Card, char: str) -> str:
    main = card.text("system_prompt").strip()
    main = _ORIGINAL.sub(lambda _: DEFAULT_MAIN, main) if main else DEFAULT_MAIN
    blocks = [main, card.text("description").strip()]
    if card.text("personality").strip():
        blocks.append(f"{{{{char}}}}'s personality: {card.text('personality').strip()}")
    if card.text("scenario").strip():
        blocks.append(f"Scenario: {card.text('scenario').strip()}")
    return macros.resolve("\n\n".join(b for b in blocks if b), char=char)


def post_history(card: Card, char: str) -> str:
    return macros.resolve(_ORIGINAL.sub("", card.text("post_history_instructions")).strip(), char=char)


def parse_examples(mes_example: str, char: str) -> list[list[dict]]:
    """`mes_example` → dialogues of {"role": "user"|"assistant", "content"}; `<START>` separates them.

    Lines start with `{{user}}:` or `{{char}}:` (or the character's name); a line without a label
    continues the previous message. Text before the first label of a dialogue is not a message.
    """
    dialogues: list[list[dict]] = []
    current: list[dict] = []
    char_label = re.compile(r"^\s*(?:\{\{\s*char\s*\}\}|<BOT>|" + re.escape(char) + r")\s*:\s?", re.IGNORECASE)
    user_label = re.compile(r"^\s*(?:\{\{\s*user\s*\}\}|<USER>)\s*:\s?", re.IGNORECASE)
    for line in mes_example.replace("\r\n", "\n").split("\n"):
        if _START.match(line):
            if current:
                dialogues.append(current)
            current = []
            continue
        for role, label in (("assistant", char_label), ("user", user_label)):
            m = label.match(line)
            if m:
                current.append({"role": role, "content": macros.resolve(line[m.end():], char=char)})
                break
        else:
            if current and line.strip():
                current[-1]["content"] += "\n" + macros.resolve(line, char=char)
    if current:
        dialogues.append(current)
    return [[{**m, "content": m["content"].strip()} for m in d if m["content"].strip()] for d in dialogues if d]


def fields_sha256(data: dict) -> str:
    """Identity of a card's standard fields: tells whether a card was edited since personabot exported it."""
    picked = {k: data.get(k) or "" for k in _STANDARD_FIELDS}
    return hashlib.sha256(json.dumps(picked, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()


def _exported_settings(card: Card) -> dict | None:
    ext = (card.data.get("extensions") or {}).get(EXTENSION)
    if not isinstance(ext, dict) or not isinstance(ext.get("persona"), dict):
        return None
    return ext["persona"] if ext.get("fields_sha256") == fields_sha256(card.data) else None


def persona_from_card(card: Card, *, name: str, imported_from: str = "", has_avatar: bool = False) -> dict:
    """The `persona.toml` content (as a dict) for a card; `name` is the persona's folder name."""
    char = char_name(card)
    fields: dict = {
        "name": name,
        "display_name": display_name_for(card.name),
        "description": _one_line(card.text("creator_notes")) or _one_line(macros.resolve(card.text("description"), char=char)),
        "system_prompt": assemble_system_prompt(card, char),
        "greeting": macros.resolve(card.text("first_mes").strip(), char=char),
        "post_history_instructions": post_history(card, char),
        # V3's nickname is what {{char}} says in the texts: the model may label its turns with it.
        "aliases": [char] if char != card.name else [],
    }
    settings = _exported_settings(card)
    if settings is not None:
        fields.update({k: copy.deepcopy(v) for k, v in settings.items() if k in PORTABLE_FIELDS and v is not None})
        ext = card.data["extensions"][EXTENSION]
        model = ext.get("model") or {}
        if model.get("backend") and model.get("base_model"):
            fields["model"] = {"backend": model["backend"], "model": model["base_model"]}
    if has_avatar and not fields.get("avatar_url"):
        fields["avatar_file"] = "avatar.png"
    fields["card"] = {
        "file": "card.json", "spec": card.spec, "creator": card.text("creator"),
        "character_version": card.text("character_version"), "tags": card.strings("tags"),
        "creator_notes": card.text("creator_notes"),
        "alternate_greetings": [macros.resolve(g, char=char) for g in card.strings("alternate_greetings")],
        "imported_from": imported_from,
    }
    return {k: v for k, v in fields.items() if v not in ("", None, [])}


def _one_line(text: str, limit: int = 150) -> str:
    line = next((l.strip() for l in text.splitlines() if l.strip()), "")
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


# -- export -------------------------------------------------------------------------------------


def _portable(spec) -> dict:
    dumped = spec.model_dump(mode="json")
    return {k: dumped[k] for k in PORTABLE_FIELDS}


def _v3_from_stored(stored: dict) -> dict:
    """A stored card as a V3 object; a V1 card's flat fields move under `data` (none is lost)."""
    obj = copy.deepcopy(stored)
    if obj.get("spec") in (None, V1) and "data" not in obj:
        data = obj
        data.setdefault("extensions", {})
        obj = {"data": data}
    obj["spec"], obj["spec_version"] = V3, SPEC_VERSIONS[V3]
    return obj


def card_from_persona(spec, stored: dict | None, provenance: dict, *, examples: str = "") -> dict:
    """The V3 card object of a persona; `provenance` becomes `data.extensions.personabot`."""
    if stored is not None:
        obj = _v3_from_stored(stored)
        data = obj["data"]
        if not isinstance(data.get("extensions"), dict):
            data["extensions"] = {}
        # An admin may have edited persona.toml since the import: the card says what is served.
        original = Card(V3, obj)
        char = char_name(original)
        if spec.display_name != display_name_for(original.name):
            data["name"] = spec.display_name
        if spec.greeting != macros.resolve(original.text("first_mes").strip(), char=char):
            data["first_mes"] = spec.greeting
        if spec.system_prompt != assemble_system_prompt(original, char):
            data.update(system_prompt=spec.system_prompt, description="", personality="", scenario="")
        if spec.post_history_instructions != post_history(original, char):
            data["post_history_instructions"] = spec.post_history_instructions
    else:
        card = spec.card
        data = {
            "name": spec.display_name, "description": "", "personality": "", "scenario": "",
            "first_mes": spec.greeting, "mes_example": examples, "creator_notes": spec.description,
            "system_prompt": spec.system_prompt, "post_history_instructions": spec.post_history_instructions,
            "alternate_greetings": list(card.alternate_greetings) if card else [],
            "tags": list(card.tags) if card else [], "creator": card.creator if card else "",
            "character_version": (provenance.get("active_version") or {}).get("name") or "",
            "extensions": {}, "group_only_greetings": [],
            "creation_date": int(datetime.now(timezone.utc).timestamp()),
        }
        obj = {"spec": V3, "spec_version": SPEC_VERSIONS[V3], "data": data}
    ext = dict(provenance, persona=_portable(spec))
    ext["fields_sha256"] = fields_sha256(data)
    data["extensions"][EXTENSION] = ext
    return obj
