"""Tavern character cards (V1, V2, V3): read, validate, write.

A card is a PNG with the character as base64 JSON in a `tEXt` chunk (`ccv3` for V3, read first as
SillyTavern does; `chara` for V1/V2; `zTXt`/`iTXt` are read too), or the same JSON as a plain file:

- V1: a flat object (`name`, `description`, `personality`, `scenario`, `first_mes`, `mes_example`;
  the older `char_name`, `char_persona`, `world_scenario`, `char_greeting`, `example_dialogue`);
- V2: `{"spec": "chara_card_v2", "spec_version": "2.0", "data": {...}}`;
- V3: `{"spec": "chara_card_v3", "spec_version": "3.0", "data": {...}}` (V2's fields plus `nickname`,
  `group_only_greetings`, `assets`, `source`, ...).

Contract: `read_card(content, filename)` returns a `Card` (the JSON object exactly as read, its
field dict and, for a PNG, the image without the card chunks) or raises `CardError` whose message
names the file and the field: a string over `MAX_STRING_CHARS`, more than `MAX_ALTERNATE_GREETINGS`
alternate greetings, a PNG over `MAX_PNG_BYTES`, invalid base64 or JSON, an unknown spec, a known
field of the wrong type, a malformed lorebook. Nothing is dropped: unknown keys stay in `raw`.
`card_json(obj)` and `write_card_png(obj, image)` write a card (the PNG with a V2 `chara` chunk and a
parallel V3 `ccv3` chunk, as SillyTavern writes them). CHARX (zip) cards are not read.
"""
from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from pathlib import Path

from bot.persona import card_png
from bot.persona.lorebook import Lorebook, LorebookError, parse_lorebook

MAX_STRING_CHARS = 20_000
MAX_ALTERNATE_GREETINGS = 200
MAX_PNG_BYTES = 20 * 1024 * 1024
MAX_JSON_BYTES = 20 * 1024 * 1024

V1, V2, V3 = "chara_card_v1", "chara_card_v2", "chara_card_v3"
SPEC_VERSIONS = {V2: "2.0", V3: "3.0"}
CARD_KEYWORDS = ("ccv3", "chara")   # read in this order

# Known fields and their JSON types; present ones are checked, missing ones default to empty.
_STRING_FIELDS = ("name", "description", "personality", "scenario", "first_mes", "mes_example", "creator_notes",
                  "system_prompt", "post_history_instructions", "creator", "character_version", "nickname",
                  "char_name", "char_persona", "world_scenario", "char_greeting", "example_dialogue")
_LIST_FIELDS = ("alternate_greetings", "tags", "group_only_greetings")


# Older V1 exports (Pygmalion/TavernAI era) name the same fields differently.
V1_ALIASES = {"name": "char_name", "description": "char_persona", "scenario": "world_scenario",
              "first_mes": "char_greeting", "mes_example": "example_dialogue"}


class CardError(ValueError):
    """A card that cannot be imported; the message names the file and the field."""


@dataclass
class Card:
    spec: str                     # V1, V2 or V3
    raw: dict                     # the JSON object exactly as read (unknown keys included)
    image: bytes | None = None    # a PNG card's image, without its card chunks
    source: str = "json"          # 'json', 'png:ccv3' or 'png:chara'
    warnings: list[str] = field(default_factory=list)

    @property
    def data(self) -> dict:
        """The character's fields: `data` for V2/V3, the object itself for V1."""
        return self.raw if self.spec == V1 else self.raw["data"]

    def text(self, key: str) -> str:
        value = self.data.get(key)
        if value is None and self.spec == V1:
            value = self.data.get(V1_ALIASES.get(key, ""))
        return value if isinstance(value, str) else ""

    def strings(self, key: str) -> list[str]:
        value = self.data.get(key)
        return list(value) if isinstance(value, list) else []

    @property
    def name(self) -> str:
        return self.text("name").strip()

    @property
    def lorebook(self) -> Lorebook | None:
        book = self.data.get("character_book")
        return parse_lorebook(book, "data.character_book") if isinstance(book, dict) else None


def _where(path: list) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(top level)"


def _check_strings(value, path: list, problems: list[str]) -> None:
    """Every string anywhere in the card is bounded (lorebook entries and extensions included)."""
    if isinstance(value, str):
        if len(value) > MAX_STRING_CHARS:
            problems.append(f"{_where(path)}: {len(value):,} characters (the limit is {MAX_STRING_CHARS:,})")
        elif not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as exc:   # JSON "\ud800" decodes to a lone surrogate
                problems.append(f"{_where(path)}: not valid Unicode (a lone surrogate at character {exc.start})")
    elif isinstance(value, dict):
        for k, v in value.items():
            _check_strings(v, [*path, k], problems)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check_strings(v, [*path, i], problems)


def validate(obj: object, where: str) -> Card:
    """A parsed JSON value → a `Card`, or `CardError` listing every problem by field."""
    if not isinstance(obj, dict):
        raise CardError(f"{where}: a card must be a JSON object (got {type(obj).__name__})")
    spec = obj.get("spec")
    if spec is None:
        if "data" in obj and isinstance(obj["data"], dict) and "name" in obj["data"]:
            raise CardError(f"{where}: spec: missing (the card has a 'data' object, so it should say "
                            f"'{V2}' or '{V3}')")
        kind, data, prefix = V1, obj, []
    elif spec in (V2, V3):
        kind, data, prefix = spec, obj.get("data"), ["data"]
        if not isinstance(data, dict):
            raise CardError(f"{where}: data: expected an object with the character's fields")
    else:
        raise CardError(f"{where}: spec: unknown card spec {spec!r} (expected '{V2}' or '{V3}', "
                        "or a V1 card without a spec)")
    problems: list[str] = []
    _check_strings(obj, [], problems)
    for key in _STRING_FIELDS:
        if data.get(key) is not None and not isinstance(data[key], str):
            problems.append(f"{_where([*prefix, key])}: expected a string (got {type(data[key]).__name__})")
    for key in _LIST_FIELDS:
        value = data.get(key)
        if value is not None and (not isinstance(value, list) or not all(isinstance(v, str) for v in value)):
            problems.append(f"{_where([*prefix, key])}: expected a list of strings")
    greetings = data.get("alternate_greetings")
    if isinstance(greetings, list) and len(greetings) > MAX_ALTERNATE_GREETINGS:
        problems.append(f"{_where([*prefix, 'alternate_greetings'])}: {len(greetings)} greetings "
                        f"(the limit is {MAX_ALTERNATE_GREETINGS})")
    if data.get("extensions") is not None and not isinstance(data["extensions"], dict):
        problems.append(f"{_where([*prefix, 'extensions'])}: expected an object")
    name = data.get("name")
    if name is None and kind == V1:
        name = data.get(V1_ALIASES["name"])
    if not isinstance(name, str) or not name.strip():
        problems.append(f"{_where([*prefix, 'name'])}: required: the character's name")
    if isinstance(data.get("character_book"), dict):
        try:
            parse_lorebook(data["character_book"], _where([*prefix, "character_book"]))
        except LorebookError as exc:
            problems.append(str(exc))
    elif data.get("character_book") is not None:
        problems.append(f"{_where([*prefix, 'character_book'])}: expected an object (the lorebook)")
    if problems:
        raise CardError("\n".join(f"{where}: {p}" for p in problems))
    return Card(kind, obj)


def _decode_chunk(text: str, keyword: str, where: str) -> object:
    compact = "".join(text.split())            # some writers wrap base64 in lines
    compact += "=" * (-len(compact) % 4)        # or drop its padding
    try:
        raw = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise CardError(f"{where}: tEXt chunk '{keyword}': not valid base64") from None
    try:
        return json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise CardError(f"{where}: tEXt chunk '{keyword}': not UTF-8 after base64 decoding (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise CardError(f"{where}: tEXt chunk '{keyword}': not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None


def read_card(content: bytes, filename: str = "card") -> Card:
    where = Path(filename).name or "card"
    try:
        return _read_card(content, where)
    except RecursionError:
        raise CardError(f"{where}: the card's JSON is nested too deeply") from None


def _read_card(content: bytes, where: str) -> Card:
    if content.startswith(card_png.SIGNATURE):
        if len(content) > MAX_PNG_BYTES:
            raise CardError(f"{where}: the PNG is {len(content) / 2**20:.1f} MB (the limit is {MAX_PNG_BYTES // 2**20} MB)")
        try:
            texts = card_png.text_chunks(content)
            image = card_png.strip_text_chunks(content, CARD_KEYWORDS)
        except card_png.PngError as exc:
            raise CardError(f"{where}: {exc}") from None
        present = [k for k in CARD_KEYWORDS if k in texts]
        if not present:
            raise CardError(f"{where}: this PNG holds no character card (no 'ccv3' or 'chara' tEXt chunk)")
        warnings = []
        for i, keyword in enumerate(present):
            try:
                card = validate(_decode_chunk(texts[keyword], keyword, where), f"{where} [{keyword}]")
            except CardError as exc:
                if i + 1 < len(present):   # SillyTavern falls back to 'chara' when 'ccv3' is unreadable
                    warnings.append(f"ignored the unreadable 'ccv3' chunk and read 'chara' instead: {exc}")
                    continue
                raise
            card.image, card.source, card.warnings = image, f"png:{keyword}", warnings
            return card
    if len(content) > MAX_JSON_BYTES:
        raise CardError(f"{where}: the file is {len(content) / 2**20:.1f} MB (the limit is {MAX_JSON_BYTES // 2**20} MB)")
    try:
        obj = json.loads(content.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise CardError(f"{where}: neither a PNG card nor UTF-8 JSON (byte {exc.start} is not UTF-8)") from None
    except json.JSONDecodeError as exc:
        raise CardError(f"{where}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None
    return validate(obj, where)


def card_json(obj: dict) -> bytes:
    return json.dumps(obj, ensure_ascii=False, indent=2).encode("utf-8") + b"\n"


def _b64(obj: dict) -> str:
    return base64.b64encode(json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")).decode("ascii")


def as_spec(obj: dict, spec: str) -> dict:
    """The same card under another spec (V2 ↔ V3): the `data` object is shared verbatim."""
    return {**obj, "spec": spec, "spec_version": SPEC_VERSIONS[spec]}


def write_card_png(v3: dict, image: bytes) -> bytes:
    """A PNG with the card twice: V2 in `chara` (for older readers) and V3 in `ccv3`."""
    return card_png.with_text_chunks(image, {"chara": _b64(as_spec(v3, V2)), "ccv3": _b64(as_spec(v3, V3))})
