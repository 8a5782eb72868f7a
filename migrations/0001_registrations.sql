-- Registrations, their team IDs, players and documents, and email deliveries (design.md §7).

-- One counter per team ID prefix. Allocation locks the row inside the transaction that
-- records the ID, so IDs are gapless, never reused, and unique under any number of workers.
CREATE TABLE team_id_counters (
    prefix     text PRIMARY KEY,
    last_value bigint NOT NULL CHECK (last_value >= 0)
);

-- The team ID given to each registration, kept even if the registration later fails, so a
-- retried or re-driven job finds its ID again instead of taking a new one.
CREATE TABLE team_ids (
    registration_id uuid PRIMARY KEY,
    team_id         text NOT NULL UNIQUE,
    allocated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE teams (
    registration_id    uuid PRIMARY KEY REFERENCES team_ids (registration_id),
    team_id            text NOT NULL UNIQUE REFERENCES team_ids (team_id),
    team_name          text NOT NULL,
    captain_name       text NOT NULL,
    captain_phone      text NOT NULL,
    captain_email      text NOT NULL,
    vice_captain_name  text NOT NULL,
    vice_captain_phone text NOT NULL,
    vice_captain_email text NOT NULL,
    request_id         text NOT NULL,
    submitted_at       timestamptz NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT teams_team_name_captain_phone_key UNIQUE (team_name, captain_phone)
);

-- The same team typed with other capitals or spacing is the same team.
CREATE UNIQUE INDEX teams_team_name_folded_captain_phone_key
    ON teams (lower(regexp_replace(team_name, '\s+', ' ', 'g')), captain_phone);

CREATE TABLE players (
    registration_id uuid NOT NULL REFERENCES teams (registration_id) ON DELETE CASCADE,
    position        smallint NOT NULL CHECK (position >= 0),
    name            text NOT NULL,
    role            text NOT NULL CHECK (role IN ('batsman', 'bowler', 'all-rounder', 'wicket-keeper')),
    PRIMARY KEY (registration_id, position)
);

CREATE TABLE documents (
    registration_id uuid NOT NULL REFERENCES teams (registration_id) ON DELETE CASCADE,
    kind            text NOT NULL CHECK (kind IN ('payment_receipt', 'pastor_letter')),
    public_id       text NOT NULL UNIQUE,
    secure_url      text NOT NULL,
    content_type    text NOT NULL,
    bytes           bigint NOT NULL CHECK (bytes >= 0),
    sha256          text NOT NULL,
    PRIMARY KEY (registration_id, kind)
);

-- One row per registration whose confirmation email was attempted: a job that runs again
-- reads it and does not send a second email once one was accepted.
CREATE TABLE email_deliveries (
    registration_id uuid PRIMARY KEY,
    status          text NOT NULL CHECK (status IN ('sent', 'failed')),
    message_id      text NOT NULL,
    attempts        integer NOT NULL DEFAULT 0,
    last_error      text,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
