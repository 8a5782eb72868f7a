-- The organisers' review of saved teams (docs/contract.md §15): each team is `pending` until
-- an organiser approves or rejects it; `review_version` counts decisions, so a decision
-- made on a stale view is refused (optimistic concurrency). Every decision is kept in
-- `team_reviews` with its actor and reason.
ALTER TABLE teams
    ADD COLUMN review_state text NOT NULL DEFAULT 'pending'
        CHECK (review_state IN ('pending', 'approved', 'rejected')),
    ADD COLUMN payment_verified boolean NOT NULL DEFAULT false,
    ADD COLUMN review_version integer NOT NULL DEFAULT 0 CHECK (review_version >= 0);

CREATE TABLE team_reviews (
    registration_id  uuid NOT NULL REFERENCES teams (registration_id) ON DELETE CASCADE,
    version          integer NOT NULL CHECK (version >= 1),
    decision         text NOT NULL CHECK (decision IN ('approved', 'rejected')),
    payment_verified boolean NOT NULL,
    reason           text NOT NULL,
    actor            text NOT NULL,
    at               timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (registration_id, version)
);

-- Finding a team: by its ID typed in any case, by the start of its name (folded as the
-- unique index folds it), by a captain's or vice-captain's phone or email; and listing by
-- review state, newest first.
CREATE INDEX teams_team_id_folded_idx ON teams (lower(team_id));
CREATE INDEX teams_team_name_prefix_idx
    ON teams (lower(regexp_replace(team_name, '\s+', ' ', 'g')) text_pattern_ops);
CREATE INDEX teams_captain_phone_idx ON teams (captain_phone);
CREATE INDEX teams_vice_captain_phone_idx ON teams (vice_captain_phone);
CREATE INDEX teams_captain_email_idx ON teams (lower(captain_email));
CREATE INDEX teams_vice_captain_email_idx ON teams (lower(vice_captain_email));
CREATE INDEX teams_review_state_created_at_idx ON teams (review_state, created_at DESC, registration_id);
