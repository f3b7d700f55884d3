"""Deleting a persona's rows reaches every table that keys rows by persona."""
from bot.store import consent, exchanges, registry, reviews
from bot.store.persona_rows import CASCADED, PERSONA_TABLES, delete_persona_rows


async def test_every_table_with_a_persona_column_is_deleted_or_cascades(db):
    tables = [r[0] for r in await db.execute_fetchall("SELECT name FROM sqlite_master WHERE type = 'table'")]
    keyed = {t for t in tables if "persona" in [c[1] for c in await db.execute_fetchall(f"PRAGMA table_info({t})")]}
    assert keyed == set(PERSONA_TABLES) | set(CASCADED), "a table keyed by persona is missing from PERSONA_TABLES"
    for child, parent in CASCADED.items():
        fks = await db.execute_fetchall(f"PRAGMA foreign_key_list({child})")
        assert any(fk[2] == parent and fk[6].upper() == "CASCADE" for fk in fks), f"{child} does not cascade from {parent}"


async def test_a_persona_s_rows_go_and_another_persona_s_stay(db):
    await consent.set_consent(db, "u1", True, "1")
    for persona in ("mara", "tim"):
        await exchanges.log_exchange(db, persona=persona, conversation_key="discord:1", user_id="u1",
                                     user_content=f"hello {persona}", reply_content="hi")
        await registry.create_version(db, persona=persona, backend="local", base_model="m", dataset_version=None)
        await reviews.open_review(db, persona=persona, candidate=f"{persona}-v1", baseline="base model",
                                  pairs=[{"context": "c", "messages": [], "candidate": "x", "baseline": "y"}])
    counts = await delete_persona_rows(db, "mara")
    assert counts["model_reviews"] == 1 and counts["model_versions"] == 1 and counts["conversations"] == 1
    for table in PERSONA_TABLES:
        assert (await db.execute_fetchall(f"SELECT COUNT(*) FROM {table} WHERE persona = 'mara'"))[0][0] == 0
    assert (await db.execute_fetchall("SELECT COUNT(*) FROM model_reviews WHERE persona = 'tim'"))[0][0] == 1
    contents = [r[0] for r in await db.execute_fetchall("SELECT content FROM messages WHERE role = 'user'")]
    assert contents == ["hello tim"]
