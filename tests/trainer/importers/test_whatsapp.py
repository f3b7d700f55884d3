"""Golden tests for the WhatsApp importer: one small invented export per locale style."""
from __future__ import annotations

import zipfile
from datetime import datetime

import pytest

from trainer.importers import ImportFormatError, ImportOptions, get_importer

LRM, NNBSP = "\u200e", "\u202f"

LOCALES = {
    # iOS German: brackets, dd.mm.yy, seconds, LRM media line, system line.
    "ios_de": (
        f"[03.02.24, 18:05:09] Lena Kraus: Hallo!\n"
        f"{LRM}[03.02.24, 18:05:30] Lena Kraus: {LRM}Bild weggelassen\n"
        f"[03.02.24, 18:06:01] Ben Ott: Na, wie geht's?\nZweite Zeile\n"
        f"[14.02.24, 09:00:00] Lena Kraus: {LRM}Nachrichten und Anrufe sind Ende-zu-Ende-verschlüsselt.\n",
        "dmy", datetime(2024, 2, 3, 18, 5, 9), 4),
    # Android US: m/d/yy, 12h with U+202F before PM, dash separator.
    "android_us": (
        f"1/15/23, 9:05{NNBSP}PM - Ray Cole: hey\n"
        f"1/15/23, 9:07{NNBSP}PM - Ivy Moss: <Media omitted>\n"
        f"1/16/23, 12:01{NNBSP}AM - Ray Cole: night\n",
        "mdy", datetime(2023, 1, 15, 21, 5), 3),
    # Android UK 24h, 4-digit year, day-first only inferable from day > 12.
    "android_uk": (
        "13/04/2022, 23:59 - Ava Hart: last one\n14/04/2022, 00:01 - Ola Nord: ok\n",
        "dmy", datetime(2022, 4, 13, 23, 59), 2),
    # Spanish Android with "p. m." meridiem.
    "android_es": (
        "25/12/2021, 08:15 p. m. - Luz Mar: ¡Feliz Navidad! 🎄\n25/12/2021, 08:16 p. m. - Teo Gil: <Multimedia omitido>\n",
        "dmy", datetime(2021, 12, 25, 20, 15), 2),
    # Year-first (CJK/Hungarian order).
    "ymd": (
        "2020/06/10, 15:55 - Kai Sato: こんにちは\n2020/06/10, 15:56 - Mio Abe: hi\n",
        "ymd", datetime(2020, 6, 10, 15, 55), 2),
    # EN DASH separator, seconds, lowercase pm.
    "en_dash": (
        "09/17/19, 4:30:10 pm \u2013 Dan Ray: dash\n09/18/19, 8:00:00 am \u2013 Dan Ray: again\n",
        "mdy", datetime(2019, 9, 17, 16, 30, 10), 2),
}


def _write(tmp_path, text, name="WhatsApp Chat with Test.txt", encoding="utf-8"):
    p = tmp_path / name
    p.write_bytes(text.encode(encoding))
    return p


@pytest.mark.parametrize("locale", sorted(LOCALES))
def test_locale_golden(tmp_path, locale):
    text, _order, first_ts, n = LOCALES[locale]
    r = get_importer("whatsapp").parse(_write(tmp_path, text), ImportOptions())
    assert len(r.messages) == n
    assert r.messages[0].timestamp == first_ts
    assert [m.seq for m in r.messages] == list(range(n))
    assert not r.problems


def test_ios_details(tmp_path):
    r = get_importer("whatsapp").parse(_write(tmp_path, LOCALES["ios_de"][0]), ImportOptions(owner=("Ben Ott",)))
    kinds = [m.kind for m in r.messages]
    assert kinds == ["text", "media", "text", "system"]
    assert r.messages[1].text == "<media:image>"
    assert r.messages[2].text == "Na, wie geht's?\nZweite Zeile"       # continuation line merged
    assert r.merged == 1
    assert r.owner_ids == {"Ben Ott"}


def test_media_placeholders_localised(tmp_path):
    r = get_importer("whatsapp").parse(_write(tmp_path, LOCALES["android_es"][0]), ImportOptions())
    assert r.messages[1].kind == "media"
    assert r.messages[0].text == "¡Feliz Navidad! 🎄"


def test_ambiguous_dates_inferred_from_chronology_and_override(tmp_path):
    # All days/months <= 12: month-first keeps the chat in order (1/2 -> 1/3 -> 2/1 ...).
    text = "".join(f"{m}/{d}/21, 10:00 - A B: x{m}{d}\n" for m, d in [(1, 2), (1, 3), (1, 5), (2, 1), (3, 1)])
    path = _write(tmp_path, text)
    r = get_importer("whatsapp").parse(path, ImportOptions())
    assert [m.timestamp.month for m in r.messages] == [1, 1, 1, 2, 3]
    forced = get_importer("whatsapp").parse(path, ImportOptions(date_order="dmy"))
    assert [m.timestamp.month for m in forced.messages] == [2, 3, 5, 1, 1]


def test_day_first_when_first_field_exceeds_12(tmp_path):
    text = "05/03/21, 10:00 - A B: one\n25/03/21, 10:00 - A B: two\n"
    r = get_importer("whatsapp").parse(_write(tmp_path, text), ImportOptions())
    assert r.messages[0].timestamp.date().isoformat() == "2021-03-05"


def test_owner_is_exact_never_substring_in_group(tmp_path):
    text = ("1/2/21, 10:00 - Ann: hi all\n1/2/21, 10:01 - Anna Berg: hey Ann\n"
            "1/2/21, 10:02 - Joanna: yo\n1/2/21, 10:03 - Ann: 🎉\n")
    path = _write(tmp_path, text)
    r = get_importer("whatsapp").parse(path, ImportOptions(owner=("ann",)))
    assert r.owner_ids == {"Ann"}
    none = get_importer("whatsapp").parse(path, ImportOptions(owner=("Jo",)))
    assert none.owner_ids == set() and any("matches no participant" in p.reason for p in none.problems)


def test_zip_utf16_bom_and_crlf(tmp_path):
    text = LOCALES["android_uk"][0].replace("\n", "\r\n")
    z = tmp_path / "WhatsApp Chat - Test.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("_chat.txt", "\ufeff".encode("utf-16-le") + text.encode("utf-16-le"))
        zf.writestr("00000001-PHOTO.jpg", b"\xff\xd8")
    r = get_importer("whatsapp").parse(z, ImportOptions())
    assert [m.text for m in r.messages] == ["last one", "ok"]


def test_bad_header_reported_with_line_and_rest_kept(tmp_path):
    text = "1/23/23, 3:19 AM - A: fine\n1/23/23, 3:22_AM - B: broken\n1/24/23, 3:22 AM - A: fine too\n"
    r = get_importer("whatsapp").parse(_write(tmp_path, text), ImportOptions())
    assert [m.text for m in r.messages] == ["fine", "fine too"]
    assert r.skipped == {"bad_timestamp": 1}
    assert str(r.problems[0]).endswith("line 2: unrecognised timestamp in '1/23/23, 3:22_AM - B: broken'")


def test_wrong_kind_is_one_line_error(tmp_path):
    p = _write(tmp_path, '{"messages": []}', name="result.json")
    with pytest.raises(ImportFormatError) as exc:
        get_importer("whatsapp").parse(p, ImportOptions())
    assert "\n" not in str(exc.value) and "WhatsApp" in str(exc.value)


def test_fast_android_scan_reads_every_line_as_the_general_one():
    """The Android fast path (`_SIMPLE_HEADER_SENDER_LINES`: header, sender and body in one regex)
    gives the same entries, continuations and problems as `_HEADER` + `_SENDER` line by line."""
    import random

    from trainer.importers.base import ParseResult
    from trainer.importers.whatsapp import WhatsAppImporter

    rng = random.Random(11)
    senders = ["Ana Reis", "Ana: Paula", "~ Ana", f"{LRM}Bob", "Bob's", 'Group "x', "+44 7911 123456", "a" * 120, "Bob 12", ""]
    bodies = ["hello", "12:30 meet", ": hi", "", " ", "<Media omitted>", f"{LRM}image omitted", "a:b", "x: 5", "/x", "ok:", f"{LRM}"]
    for _ in range(200):
        lines = []
        for _ in range(rng.randint(1, 30)):
            head = f"{rng.randint(1, 31):02d}/{rng.randint(1, 12):02d}/{rng.choice(['2023', '23'])}, {rng.randint(0, 23):02d}:{rng.randint(0, 59):02d} - "
            r = rng.random()
            if r < 0.7:
                lines.append(head + rng.choice(senders) + rng.choice([": ", ":", ":x", ":5", " - "]) + rng.choice(bodies))
            elif r < 0.8:
                lines.append(head + rng.choice(bodies))
            elif r < 0.9:
                lines.append(rng.choice(bodies) + " more")
            else:
                lines.append(rng.choice([f"[01.02.23, 10:11:12] Ana: hi", "1/2/23 10:1", f"{LRM}{head}Ana: hi", ""]))
        text = "\n".join(lines) + rng.choice(["", "\n"])
        fast, general = ParseResult(), ParseResult()
        assert WhatsAppImporter._scan(text, "f", fast, fast=True) == WhatsAppImporter._scan(text, "f", general, fast=False)
        assert fast.problems == general.problems and fast.merged == general.merged
