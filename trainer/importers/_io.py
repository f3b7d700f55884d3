"""Reading export files robustly: encodings, archives, JSON with located errors, mojibake repair.

Contract: `decode_bytes` never raises on bad bytes (BOM'd UTF-8, UTF-16 with or without BOM, cp1252 are
recognised; undecodable bytes become U+FFFD) — the parser then reports what it could not read.
`load_json` raises `ImportFormatError` with `file:line: reason` when the text is not JSON at all.
`Tree` hides whether an export was given as a folder, a zip or a single file.
"""
from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path, PurePosixPath

from trainer.importers.base import ImportFormatError

_BOMS = (
    (b"\xef\xbb\xbf", "utf-8"),
    (b"\xff\xfe", "utf-16-le"),
    (b"\xfe\xff", "utf-16-be"),
)


def decode_bytes(data: bytes) -> str:
    """Text of a file whatever its encoding; BOM removed, CRLF/CR normalised to LF."""
    text = None
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            text = data[len(bom):].decode(encoding, errors="replace")
            break
    if text is None:
        # UTF-16 without a BOM: every other byte of mostly-ASCII text is NUL.
        sample = data[:4000]
        if len(sample) >= 4 and sample.count(b"\0") > len(sample) // 4:
            even_nuls = sample[0::2].count(b"\0")
            odd_nuls = sample[1::2].count(b"\0")
            text = data.decode("utf-16-be" if even_nuls > odd_nuls else "utf-16-le", errors="replace")
        else:
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                # Old Windows exports are cp1252; bytes cp1252 leaves undefined fall back to replacement.
                text = data.decode("cp1252", errors="replace")
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


def looks_binary(text: str) -> bool:
    """True when decoded text is mostly control characters or replacement marks (not a text export)."""
    sample = text[:4000]
    if not sample:
        return False
    bad = sum(1 for c in sample if c == "\ufffd" or (ord(c) < 32 and c not in "\n\t"))
    return bad > len(sample) // 10


# Typical UTF-8-read-as-latin-1/cp1252 sequences: a lead byte char followed by a continuation-range char.
_MOJIBAKE = re.compile("[\u00c2-\u00f4][\u0080-\u00bf\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192\u02c6\u02dc\u2013-\u203a\u20ac\u2122]")


def fix_latin1_mojibake(text: str) -> str:
    """Facebook/Instagram write UTF-8 bytes as latin-1 code points; undo that exactly, else keep the text."""
    if text.isascii():
        return text
    try:
        return text.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return repair_mojibake(text)


def repair_mojibake(text: str) -> str:
    """Repair cp1252/latin-1 mojibake ("Ã©", "ðŸ§¤") when it is present; clean text is returned unchanged."""
    if text.isascii() or not _MOJIBAKE.search(text):
        return text
    import ftfy

    return ftfy.fix_encoding(text)


def load_json(text: str, file: str, expected: str):
    """Parse JSON or raise a one-line ImportFormatError that names the line and what was expected."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ImportFormatError(f"{file}:line {exc.lineno}: not valid JSON ({exc.msg}); expected {expected}") from None
    except RecursionError:
        raise ImportFormatError(f"{file}: JSON nested too deeply; expected {expected}") from None


class Tree:
    """Files of an export given as a folder, a .zip or one file, addressed by POSIX relative path."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._zip: zipfile.ZipFile | None = None
        if not self.path.exists():
            raise ImportFormatError(f"{self.path}: no such file or folder")
        if self.path.is_file() and zipfile.is_zipfile(self.path):
            try:
                self._zip = zipfile.ZipFile(self.path)
                self._names = [n for n in self._zip.namelist() if not n.endswith("/") and "__MACOSX" not in n]
            except (zipfile.BadZipFile, OSError, ValueError) as exc:
                raise ImportFormatError(f"{self.path}: unreadable zip archive ({exc})") from None
        elif self.path.is_dir():
            self._names = sorted(str(p.relative_to(self.path).as_posix()) for p in self.path.rglob("*") if p.is_file())
        else:
            self._names = [self.path.name]

    @property
    def is_single_file(self) -> bool:
        return self._zip is None and self.path.is_file()

    def names(self) -> list[str]:
        return list(self._names)

    def find(self, pattern: str) -> list[str]:
        """Relative names whose path matches a regex (searched, case-insensitive)."""
        rx = re.compile(pattern, re.IGNORECASE)
        return [n for n in self._names if rx.search(n)]

    def display(self, name: str) -> str:
        if self.is_single_file:
            return str(self.path)
        return f"{self.path}!{name}" if self._zip is not None else str(self.path / name)

    def read_bytes(self, name: str) -> bytes:
        if self._zip is not None:
            try:
                return self._zip.read(name)
            except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
                raise ImportFormatError(f"{self.display(name)}: unreadable zip member ({exc})") from None
        if self.is_single_file:
            return self.path.read_bytes()
        return (self.path / PurePosixPath(name)).read_bytes()

    def read_text(self, name: str) -> str:
        return decode_bytes(self.read_bytes(name))
