-- A posted review whose pairs were dropped (a member whose words its contexts quoted was forgotten,
-- `reviews.forget_pairs`) is withdrawn from Discord too: the bot deletes the pair messages it posted
-- and records when here, so it happens once (`reviews.to_withdraw`, `reviews.mark_withdrawn`).
ALTER TABLE model_reviews ADD COLUMN withdrawn_at TEXT;
