-- Human promotion review (issue 15): a candidate that passed the gate of a `[gate] promote = "review"`
-- persona waits here for admins, who compare blind reply pairs and then promote it or keep the
-- current version. Votes keep who cast them and when; they become the candidate's human win rate.
CREATE TABLE model_reviews (
    id          INTEGER PRIMARY KEY,
    persona     TEXT NOT NULL,
    candidate   TEXT NOT NULL,                             -- model version name under review
    baseline    TEXT NOT NULL,                             -- what it is compared with: the active version, or "base model"
    pairs       TEXT NOT NULL,                             -- JSON: [{context, messages, candidate, baseline, first}]; first = which reply is "Reply 1"
    gate        TEXT NOT NULL DEFAULT '',                  -- the gate's summary, shown with the review
    status      TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'promoted', 'kept', 'superseded')),
    requested_by TEXT,                                     -- 'scheduler', a Discord user id or 'cli:<name>'
    channel_id  TEXT,                                      -- where the bot posted it (NULL: not posted yet)
    message_id  TEXT,
    thread_id   TEXT,
    created_at  TEXT NOT NULL,
    posted_at   TEXT,
    decided_by  TEXT,                                      -- who promoted or kept; NULL once forgotten
    decided_at  TEXT
);
CREATE INDEX model_reviews_persona ON model_reviews(persona, status);

CREATE TABLE review_votes (
    review_id   INTEGER NOT NULL REFERENCES model_reviews(id) ON DELETE CASCADE,
    pair        INTEGER NOT NULL,                          -- index into model_reviews.pairs
    voter       TEXT,                                      -- Discord user id or 'cli:<name>'; NULL once forgotten
    choice      TEXT NOT NULL CHECK (choice IN ('candidate', 'baseline', 'same')),
    via         TEXT NOT NULL,                             -- discord, terminal
    voted_at    TEXT NOT NULL
);
CREATE UNIQUE INDEX review_votes_one_per_voter ON review_votes(review_id, pair, voter);
CREATE INDEX review_votes_voter ON review_votes(voter);
