"""PNG chunks for character cards: read the `tEXt` chunks, write a card PNG, make a placeholder.

A Tavern card is an ordinary PNG with the character as base64 JSON in `tEXt` chunks (keyword
`chara` for V1/V2, `ccv3` for V3). Only the chunk layer is needed, so it is done here with `zlib`
and `struct` (PNG spec, ISO/IEC 15948): signature, then chunks of length (4 bytes, big-endian),
type (4), data, CRC-32 of type + data (4).

Contract: `text_chunks(data)` returns keyword → text of every `tEXt` chunk (first one wins a
keyword) and raises `PngError` naming the byte offset of a truncated or corrupt chunk;
`with_text_chunks(png, {keyword: text})` returns the PNG with any old chunks of those keywords
removed and the new ones inserted before `IEND`; `placeholder_png(seed)` draws a small
valid image (a colour derived from the seed) for personas without an avatar.
"""
from __future__ import annotations

import hashlib
import struct
import zlib

SIGNATURE = b"\x89PNG\r\n\x1a\n"


class PngError(ValueError):
    """Bytes that are not a readable PNG; the message says where it went wrong."""


def chunk(kind: bytes, data: bytes) -> bytes:
    """One chunk: length, type, data, CRC-32 over type + data."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def iter_chunks(data: bytes):
    """(type, data, offset) of each chunk, up to and including IEND; CRCs are checked."""
    if not data.startswith(SIGNATURE):
        raise PngError("not a PNG file (the first 8 bytes are not the PNG signature)")
    pos = len(SIGNATURE)
    while True:
        if pos + 8 > len(data):
            raise PngError(f"truncated PNG: chunk header at byte {pos} is incomplete (no IEND chunk)")
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        end = pos + 8 + length
        if end + 4 > len(data):
            raise PngError(f"truncated PNG: chunk {kind!r} at byte {pos} claims {length} bytes past the end of the file")
        body = data[pos + 8 : end]
        (crc,) = struct.unpack(">I", data[end : end + 4])
        if crc != zlib.crc32(kind + body) & 0xFFFFFFFF:
            raise PngError(f"corrupt PNG: chunk {kind!r} at byte {pos} has a wrong CRC")
        yield kind, body, pos
        pos = end + 4
        if kind == b"IEND":
            return


def _inflate(data: bytes, limit: int, where: str) -> bytes:
    """zlib data, refusing to expand past `limit` bytes (a compressed chunk can be a bomb)."""
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error as exc:
        raise PngError(f"corrupt PNG: {where}: bad compressed text ({exc})") from None
    if len(out) > limit:
        raise PngError(f"{where}: compressed text expands past {limit // 2**20} MB")
    return out


def text_chunks(data: bytes, *, max_text: int = 20 * 1024 * 1024) -> dict[str, str]:
    """keyword → text of every text chunk, first one wins a keyword.

    Cards use `tEXt` (Latin-1 per the PNG spec; card payloads are base64 ASCII); a few tools write
    the compressed `zTXt` or the international `iTXt`, which are read too.
    """
    found: dict[str, str] = {}
    for kind, body, pos in iter_chunks(data):
        if kind not in (b"tEXt", b"zTXt", b"iTXt"):
            continue
        where = f"{kind.decode()} chunk at byte {pos}"
        keyword, sep, rest = body.partition(b"\0")
        if not sep:
            raise PngError(f"corrupt PNG: {where} has no NUL after its keyword")
        if kind == b"tEXt":
            text = rest.decode("latin-1")
        elif kind == b"zTXt":
            text = _inflate(rest[1:], max_text, where).decode("latin-1")
        else:
            if len(rest) < 2:
                raise PngError(f"corrupt PNG: {where} is truncated")
            compressed, tail = rest[0], rest[2:]
            parts = tail.split(b"\0", 2)       # language tag, translated keyword, text
            if len(parts) != 3:
                raise PngError(f"corrupt PNG: {where} is truncated")
            raw = _inflate(parts[2], max_text, where) if compressed else parts[2]
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise PngError(f"corrupt PNG: {where} is not UTF-8") from None
        found.setdefault(keyword.decode("latin-1"), text)
    return found


def with_text_chunks(png: bytes, texts: dict[str, str], *, drop: tuple[str, ...] = ()) -> bytes:
    """The PNG with tEXt chunks of `texts`' keywords (and of `drop`) replaced by the new ones, before IEND."""
    replaced = {k.encode("latin-1") for k in (*texts, *drop)}
    out = [SIGNATURE]
    for kind, body, _ in iter_chunks(png):
        if kind in (b"tEXt", b"zTXt", b"iTXt") and body.partition(b"\0")[0] in replaced:
            continue
        if kind == b"IEND":
            for keyword, text in texts.items():
                out.append(chunk(b"tEXt", keyword.encode("latin-1") + b"\0" + text.encode("latin-1")))
        out.append(chunk(kind, body))
    return b"".join(out)


def strip_text_chunks(png: bytes, keywords: tuple[str, ...]) -> bytes:
    """The PNG without the tEXt chunks of these keywords (the image of a card, without the card)."""
    return with_text_chunks(png, {}, drop=keywords)


def placeholder_png(seed: str, size: int = 64) -> bytes:
    """A square RGB image in a colour derived from `seed`, with a lighter diagonal band."""
    digest = hashlib.sha256(seed.encode("utf-8")).digest()
    base = tuple(64 + b % 128 for b in digest[:3])
    light = tuple(min(255, c + 80) for c in base)
    rows = []
    for y in range(size):
        row = bytearray([0])  # filter type 0 (None) for every scanline
        for x in range(size):
            row += bytes(light if abs(x - y) < size // 8 else base)
        rows.append(bytes(row))
    ihdr = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)  # 8-bit RGB, no interlace
    return SIGNATURE + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"".join(rows), 9)) + chunk(b"IEND", b"")
