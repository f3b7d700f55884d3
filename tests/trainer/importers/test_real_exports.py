"""Every real export sample in ../shared/fixtures (and the TutorChatbot data) through the importers:
no crash, a clear error for the wrong kind, and plausible counts. Skipped when ../shared is absent."""
from __future__ import annotations

import json
import re

from trainer.importers import ImportFormatError, ImportOptions, get_importer, importers

FOLDER_KINDS = {
    "whatsapp": ["whatsapp"],
    "telegram": ["telegram"],
    "discord": ["discord-exporter", "discord-package"],
    "twitter": ["twitter"],
    "facebook_instagram": ["facebook", "instagram"],
}
# Files that are, by design, not messages of the kind (see SOURCES.tsv).
EXPECTED_ERRORS = {"joeamroo__knowledgemaxxing__like.js"}


def test_every_fixture_imports_with_plausible_counts(shared_dir):
    fixtures = shared_dir / "fixtures"
    assert fixtures.is_dir(), f"{shared_dir} has no fixtures/ folder"
    seen = 0
    for folder, kinds in FOLDER_KINDS.items():
        for path in sorted((fixtures / folder).glob("*")):
            results = {}
            for kind in kinds:
                try:
                    results[kind] = get_importer(kind).parse(path, ImportOptions())
                except ImportFormatError as exc:
                    assert "\n" not in str(exc)
                    results[kind] = exc
            good = [r for r in results.values() if not isinstance(r, Exception)]
            if path.name in EXPECTED_ERRORS:
                assert not good
                continue
            assert good, f"{path.name}: no importer of {kinds} read it: {results}"
            seen += 1
            for r in good:
                lines = path.read_bytes().count(b"\n") + 1
                # Plausible: every message came from somewhere in the file, nothing invented in bulk.
                assert len(r.messages) <= max(lines, 200)
                assert all(m.sender_id for m in r.messages)
                assert all(p.file and p.location and p.reason for p in r.problems)
                if folder == "whatsapp":
                    assert len(r.messages) >= 3 and r.messages[0].timestamp is not None
    assert seen >= 25


def test_whatsapp_fixture_details(shared_dir):
    folder = shared_dir / "fixtures" / "whatsapp"
    assert folder.is_dir(), f"{shared_dir} has no fixtures/whatsapp folder"
    wa = get_importer("whatsapp")
    r = wa.parse(folder / "joweich__chat-miner__test_mmddyyyy_12hrs.txt", ImportOptions(owner=("John Doe",)))
    assert r.messages[2].timestamp.hour == 20          # 08:49 p. m.
    assert r.owner_ids == {"John Doe"}                   # not "John Doe 🤓" nor "John-John Doe"
    mixed = wa.parse(folder / "langchain-ai__langchain-community__whatsapp_chat.txt", ImportOptions())
    assert [m.timestamp.date().isoformat() for m in mixed.messages[:2]] == ["2023-05-05", "2021-11-08"]
    german = wa.parse(folder / "skowalak__whatsapp-to-sqlite__WhatsApp_Chat_mit_Jane_Doe.txt", ImportOptions())
    assert german.messages[0].kind == "system" and german.messages[3].text == "<media:video>\nDas hier meine ich"


def test_tutorchatbot_files_never_crash_any_importer(shared_dir):
    data = shared_dir / "data" / "tutorchatbot"
    assert data.is_dir(), f"{shared_dir} has no data/tutorchatbot folder"
    files = sorted(p for p in data.rglob("*") if p.is_file())[:40] + [data / "tim.jsonl"]
    for path in files:
        for kind in importers():
            if kind == "transcripts":
                continue
            try:
                get_importer(kind).parse(path, ImportOptions())
            except ImportFormatError as exc:
                assert "\n" not in str(exc)
    r = get_importer("jsonl").parse(data / "tim.jsonl", ImportOptions())
    assert not r.problems and len({m.conversation for m in r.messages}) == 656


# WhatsApp's own lines as they appear in the real samples (English and German), written out here
# independently of the importer's table.
WHATSAPP_LINES = re.compile(
    r"omitted|weggelassen|ausgeschlossen|Datei angehängt|<attached|end-to-end|Ende-zu-Ende|This message was deleted|"
    r"Nachricht wurde gelöscht|<This message was edited>|hat die Gruppe|hinzugefügt|entfernt\.|neue Telefonnummer|gewechselt\.|"
    r"created group|You were added|^POLL:|^OPTION:|security code|\.vcf|\.jpg|\.mp4|\.opus", re.I | re.M)


async def test_whatsapp_fixtures_build_without_whatsapp_lines(shared_dir, db, settings):
    """Every real WhatsApp sample through import and `dataset build`: none of WhatsApp's system or
    media lines reach the dataset, and members' words do."""
    from collections import Counter
    from pathlib import Path

    from bot.persona import load_persona
    from trainer.dataset.build import BuildOptions, build_dataset
    from trainer.dataset.ingest import import_export

    folder = shared_dir / "fixtures" / "whatsapp"
    paths = sorted(folder.glob("*"))
    assert len(paths) >= 10
    for path in paths:
        parsed = get_importer("whatsapp").parse(path, ImportOptions())
        texts = [m.text for m in parsed.messages if m.kind == "text"]
        assert not [t for t in texts if WHATSAPP_LINES.search(t)], path.name
        owner = Counter(m.sender_id for m in parsed.messages if m.kind != "system").most_common(1)[0][0]
        await import_export(db, persona="twin", kind="whatsapp", path=path, options=ImportOptions(owner=(owner,)))
    persona = load_persona(Path(__file__).resolve().parents[3] / "personas" / "twin")
    result = await build_dataset(db, persona=persona, data_dir=settings.core.data_dir, options=BuildOptions(val_fraction=0.1))
    out = "".join((result.folder / f).read_text(encoding="utf-8") for f in ("train.jsonl", "val.jsonl"))
    contents = "\n".join(m["content"] for line in out.splitlines() for m in json.loads(line)["messages"][1:])
    assert not WHATSAPP_LINES.findall(contents)
    assert "Das hier meine ich" in contents          # the caption sent with a video stays
    assert result.manifest["cleanup"]["dropped_media_only"] >= 100 and result.manifest["cleanup"]["dropped_system"] >= 30
