-- One claim per team (its name folded as the unique index on teams folds it, and the
-- captain's phone), taken in the transaction that gives a registration its team ID, before
-- any document is uploaded. A second registration of the same team is refused at that
-- point: it takes no team ID and uploads nothing. The unique key on teams stays the final
-- guarantee.
CREATE TABLE team_claims (
    team_key        text PRIMARY KEY,
    registration_id uuid NOT NULL UNIQUE,
    claimed_at      timestamptz NOT NULL DEFAULT now()
);

INSERT INTO team_claims (team_key, registration_id)
SELECT lower(regexp_replace(team_name, '\s+', ' ', 'g')) || E'\n' || captain_phone, registration_id
FROM teams
ON CONFLICT DO NOTHING;

-- A delivery is marked `sending` before the message goes to the SMTP server; only one run
-- can mark it. A later run that finds it `sending` after the sending run's deadline knows
-- that run stopped mid-send and cannot tell whether the message went out: it does not send
-- again (at most one email) and records `unknown`, shown to clients as `failed`, for
-- support to resend if the captain got nothing.
ALTER TABLE email_deliveries DROP CONSTRAINT email_deliveries_status_check;
ALTER TABLE email_deliveries
    ADD CONSTRAINT email_deliveries_status_check
    CHECK (status IN ('sending', 'sent', 'failed', 'unknown'));
