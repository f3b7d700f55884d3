"""The pure curation parts: access rule, review text limits and ids, import parsing, auto rules."""
from bot.curation.access import curatable, may_curate
from bot.curation.render import discord_text
from bot.curation.rules import plan
from bot.curation.transfer import parse_lines
from bot.persona import load_personas
from bot.persona.spec import CurationSpec
from bot.store.curation import ContextTurn, ReviewItem, Signals
from tests.conftest import REPO


def item(reply="ok", context=(), up=0, down=0, error=None, status="pending", item_id=1):
    return ReviewItem(item_id, "tim", "discord:1", "g", "2026-12-01T10:00:00+00:00", reply, None, status, None, None, None,
                      tuple(context), Signals(up, down, len(reply), error, None, False))


def test_access_by_manage_server_or_role_name_or_id():
    personas = load_personas(REPO / "personas")
    tim = personas["tim"].model_copy(update={"curation": CurationSpec(curator_role="Tutors")})
    assert may_curate(tim, manage_guild=True, roles=[])
    assert may_curate(tim, manage_guild=False, roles=[("7", "tutors")])
    assert not may_curate(tim, manage_guild=False, roles=[("7", "Students")])
    by_id = tim.model_copy(update={"curation": CurationSpec(curator_role="7")})
    assert may_curate(by_id, manage_guild=False, roles=[("7", "whatever")])
    assert curatable({"tim": tim, "eve": personas["eve"]}, manage_guild=False, roles=[("1", "Tutors")]) == ["tim"]
    assert not may_curate(personas["eve"], manage_guild=False, roles=[("1", "")])   # no role configured


def test_review_text_fits_discord_and_shows_no_ids():
    context = [ContextTurn("member", "Ana", f"<@123456789012345678> message {i} " + "x" * 400) for i in range(20)]
    text = discord_text(item("<@!987654321098765432> " + "y" * 5000, context), persona="TIM", where="#general", pending=3)
    assert len(text) <= 1900
    assert "123456789012345678" not in text and "987654321098765432" not in text and "@someone" in text
    assert "message 19" in text and "message 0 " not in text          # the oldest context goes first
    assert "**TIM replied:**" in text and "…" in text


def test_parse_lines_names_each_bad_line():
    lines = ['{"id": 1, "status": "approved"}', "", "[1, 2]", '{"id": "2", "status": "approved"}',
             '{"id": 3, "status": "great"}', '{"id": 4, "status": "corrected"}', '{"id": 5, "status": "rejected", "correction": 5}',
             '{"id": 1, "status": "rejected"}', '{"id": 6, "status": "corrected", "correction": " fixed "}']
    decisions, errors = parse_lines(lines, "f.jsonl")
    assert [(d.line, d.id, d.status, d.correction) for d in decisions] == [(1, 1, "approved", None), (9, 6, "corrected", "fixed")]
    assert [e.split(": ", 1)[0] for e in errors] == ["f.jsonl:3", "f.jsonl:4", "f.jsonl:5", "f.jsonl:6", "f.jsonl:7", "f.jsonl:8"]
    assert "already decided on line 1" in errors[-1]


def test_rules_never_approve_flagged_or_decided_items():
    items = [item(up=1, item_id=1), item(up=1, down=1, item_id=2), item(item_id=3), item(up=1, error="Timeout", item_id=4),
             item(up=1, status="rejected", item_id=5)]
    approve, held = plan(items, "thumbs-up")
    assert [i.id for i in approve] == [1] and [i.id for i in held] == [4]
    assert [i.id for i in plan(items, "no-thumbs-down")[0]] == [1, 3]
    assert [i.id for i in plan(items, "all")[0]] == [1, 2, 3]
