"""Character cards written byte by byte, independently of `bot.persona.card_png`.

`png_card({"chara": obj, "ccv3": obj})` lays out a PNG as the PNG spec and the card specs say:
the 8-byte signature, IHDR (1x1, 8-bit RGB), one IDAT (zlib of one scanline), a `tEXt` chunk per
card (`keyword NUL base64(JSON)`), IEND; every chunk is length (big-endian), type, data, CRC-32.
`read_png_chunks` parses a PNG the same way (checking every CRC), for tests of what the product
writes. `v1_card`, `v2_card`, `v3_card` build the JSON objects of a test character.
"""
from __future__ import annotations

import base64
import json
import struct
import zlib

SIGNATURE = bytes([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def tiny_image_chunks(rgb: tuple[int, int, int] = (200, 80, 40)) -> list[bytes]:
    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return [png_chunk(b"IHDR", ihdr), png_chunk(b"IDAT", zlib.compress(bytes([0, *rgb])))]


def text_chunk(keyword: str, obj) -> bytes:
    payload = obj if isinstance(obj, (bytes, str)) else base64.b64encode(json.dumps(obj).encode("utf-8"))
    if isinstance(payload, str):
        payload = payload.encode("latin-1")
    return png_chunk(b"tEXt", keyword.encode("latin-1") + b"\x00" + payload)


def png_card(cards: dict, *, rgb=(200, 80, 40)) -> bytes:
    """A PNG with one tEXt chunk per keyword (values: JSON objects, or raw str/bytes payloads)."""
    body = b"".join(tiny_image_chunks(rgb))
    body += b"".join(text_chunk(k, v) for k, v in cards.items())
    return SIGNATURE + body + png_chunk(b"IEND", b"")


def read_png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    assert data[:8] == SIGNATURE, "PNG signature"
    pos, out = 8, []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(kind + body) & 0xFFFFFFFF, f"bad CRC on {kind!r}"
        out.append((kind, body))
        pos += 12 + length
    assert pos == len(data) and out[-1][0] == b"IEND", "the file ends with IEND"
    return out


def text_payloads(data: bytes) -> dict[str, dict]:
    found = {}
    for kind, body in read_png_chunks(data):
        if kind == b"tEXt":
            keyword, _, payload = body.partition(b"\x00")
            found[keyword.decode()] = json.loads(base64.b64decode(payload))
    return found


BOOK = {
    "name": "Harbour lore", "scan_depth": 2, "token_budget": 200, "recursive_scanning": False, "extensions": {},
    "entries": [
        {"keys": ["lighthouse"], "content": "The lighthouse has been dark since the storm of '09.", "extensions": {},
         "enabled": True, "insertion_order": 10, "id": 1},
        {"keys": ["Kraken"], "content": "{{char}} fears the Kraken and never names it to {{user}}.", "extensions": {},
         "enabled": True, "insertion_order": 5, "case_sensitive": True, "id": 2},
        {"keys": ["harbour"], "content": "Always present: the harbour smells of tar.", "extensions": {},
         "enabled": True, "insertion_order": 1, "constant": True, "id": 3},
        {"keys": ["ship"], "secondary_keys": ["wreck"], "selective": True, "content": "The wreck of the Marigold lies north.",
         "extensions": {}, "enabled": True, "insertion_order": 20, "id": 4},
        {"keys": ["lighthouse"], "content": "Disabled entry.", "extensions": {}, "enabled": False, "insertion_order": 1, "id": 5},
    ],
}

FIELDS = {
    "name": "Captain Mara",
    "description": "{{char}} is a retired sea captain who runs the harbour tavern.",
    "personality": "gruff, warm, superstitious",
    "scenario": "{{user}} walks into {{char}}'s tavern on a stormy night.",
    "first_mes": "*{{char}} looks up from the bar.* Evening, {{user}}. Shut that door, the wind bites.",
    "mes_example": "<START>\n{{user}}: Any stories tonight?\n{{char}}: Always. Sit down.\nPull up a stool.\n"
                   "<START>\n{{user}}: What happened to your ship?\n{{char}}: The sea took her, as it takes everything.",
}


def v1_card() -> dict:
    return dict(FIELDS)


def v2_card(**extra) -> dict:
    data = {**FIELDS, "creator_notes": "A tavern keeper for harbour roleplay.", "system_prompt": "", "post_history_instructions": "",
            "alternate_greetings": ["*{{char}} waves.* Back again?"], "tags": ["sea", "tavern"], "creator": "tester",
            "character_version": "1.2", "extensions": {"talkativeness": "0.5", "some_tool": {"x": [1, 2]}},
            "character_book": BOOK}
    data.update(extra)
    return {"spec": "chara_card_v2", "spec_version": "2.0", "data": data}


def v3_card(**extra) -> dict:
    card = v2_card(**extra)
    card["spec"], card["spec_version"] = "chara_card_v3", "3.0"
    card["data"].update(nickname="Cap'n", group_only_greetings=[], assets=[{"type": "icon", "uri": "ccdefault:", "name": "main", "ext": "png"}],
                        creation_date=1700000000, source=["https://example.invalid/mara"])
    return card
