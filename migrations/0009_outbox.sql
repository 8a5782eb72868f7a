-- The transactional outbox for outbound events (docs/contract.md §16): each event is written
-- in the same transaction as the change that causes it, so an event exists exactly when its
-- change committed. `event_id` is the webhook-id every delivery of the event carries (the
-- same on each retry, so receivers can deduplicate). `dispatched_at` is set once the event
-- has been handed to delivery.
CREATE TABLE outbox_events (
    id              bigserial PRIMARY KEY,
    event_id        uuid NOT NULL UNIQUE DEFAULT gen_random_uuid(),
    type            text NOT NULL CHECK (type IN ('registration.completed', 'registration.failed',
                                                  'team.approved', 'team.rejected')),
    registration_id uuid NOT NULL,
    data            jsonb NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    dispatched_at   timestamptz
);

CREATE INDEX outbox_events_undispatched ON outbox_events (id) WHERE dispatched_at IS NULL;
CREATE INDEX outbox_events_registration ON outbox_events (registration_id);

-- A registration's failures for good, one per run (a re-driven registration that fails again
-- fails in its next run), each written with its `registration.failed` event in one
-- transaction. The status record in Redis says the same to the public; this row is where
-- other systems' event comes from.
CREATE TABLE registration_failures (
    registration_id uuid NOT NULL,
    run             integer NOT NULL CHECK (run >= 0),
    code            text NOT NULL,
    failed_at       timestamptz NOT NULL,
    PRIMARY KEY (registration_id, run)
);
