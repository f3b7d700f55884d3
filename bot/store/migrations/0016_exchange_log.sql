-- The exchange log: one INSERT stores a member's turn and the persona's reply, and only when the
-- member opted in (bot/store/exchanges.py). The consent rule lives here, in the trigger's WHEN, so
-- the check and the writes are one statement: atomic by itself, and one round trip to SQLite's
-- thread instead of five (consent read, conversation upsert, two inserts, commit).
-- `exchange_log` holds no rows; inserting into it runs the trigger. `ticket` is not stored: a
-- multi-row INSERT returns it to match RETURNING rows (which come in no set order) to callers.
CREATE VIEW exchange_log(ticket, persona, conversation_key, user_id, user_content, reply_content, model,
                         user_external_id, reply_external_id, guild_id, error, created_at) AS
    SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL WHERE 0;

CREATE TRIGGER exchange_log_insert INSTEAD OF INSERT ON exchange_log
WHEN EXISTS (SELECT 1 FROM consent WHERE user_id = NEW.user_id AND status = 'opted_in')
BEGIN
    INSERT INTO conversations(persona, key, started_at, guild_id)
        VALUES (NEW.persona, NEW.conversation_key, NEW.created_at, NEW.guild_id)
        ON CONFLICT(persona, key) DO UPDATE SET guild_id = COALESCE(conversations.guild_id, excluded.guild_id);
    INSERT INTO messages(conversation_id, role, author_id, external_id, content, created_at)
        VALUES ((SELECT id FROM conversations WHERE persona = NEW.persona AND key = NEW.conversation_key),
                'user', NEW.user_id, NEW.user_external_id, NEW.user_content, NEW.created_at);
    -- last_insert_rowid() is the member turn just inserted: the reply answers it.
    INSERT INTO messages(conversation_id, role, author_id, external_id, content, model, reply_to, created_at, error)
        VALUES ((SELECT id FROM conversations WHERE persona = NEW.persona AND key = NEW.conversation_key),
                'assistant', NEW.user_id, NEW.reply_external_id, NEW.reply_content, NEW.model, last_insert_rowid(),
                NEW.created_at, NEW.error);
END;
