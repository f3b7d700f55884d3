"""Every real export sample in ../shared/fixtures (and the TutorChatbot data) through the importers:
no crash, a clear error for the wrong kind, and plausible counts. Skipped when ../shared is absent."""
from __future__ import annotations

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
