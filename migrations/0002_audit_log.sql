-- Every support action (design.md §6): who, what, which registrations, why, when, and how it
-- ended. An action is written as 'requested' before it takes effect and its outcome as a
-- second row; rows are never changed or removed.
CREATE TABLE audit_log (
    id               bigserial PRIMARY KEY,
    at               timestamptz NOT NULL DEFAULT now(),
    actor            text NOT NULL,
    action           text NOT NULL,
    registration_ids uuid[] NOT NULL DEFAULT '{}',
    reason           text,
    outcome          text NOT NULL CHECK (outcome IN ('requested', 'succeeded', 'failed', 'refused')),
    detail           jsonb NOT NULL DEFAULT '{}',
    request_id       text
);

CREATE INDEX audit_log_registration_ids_idx ON audit_log USING gin (registration_ids);
CREATE INDEX audit_log_at_idx ON audit_log (at DESC);

CREATE FUNCTION audit_log_is_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END
$$;

CREATE TRIGGER audit_log_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_is_append_only();

-- Listing completed registrations newest first.
CREATE INDEX teams_created_at_idx ON teams (created_at DESC, registration_id);
