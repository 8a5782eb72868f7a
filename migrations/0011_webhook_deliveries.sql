-- One row per event and endpoint it goes to (docs/contract.md §16): the delivery log
-- organisers read and the state the delivery jobs work from. A delivery is created when
-- the dispatcher hands its event on (outbox_events.dispatched_at), once per endpoint.
-- `leased_until` is set while a worker is sending it, so a second job for the same
-- delivery (a crash's re-run, a sweep) does not send it twice at once; an expired lease
-- is a worker that died mid-send. `window_started_at` starts the retry window (the first
-- send, or a re-send).
CREATE TABLE webhook_deliveries (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    endpoint_id       uuid NOT NULL REFERENCES webhook_endpoints (id),
    event_id          uuid NOT NULL REFERENCES outbox_events (event_id),
    state             text NOT NULL DEFAULT 'pending'
                      CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts          integer NOT NULL DEFAULT 0,
    last_status       integer,
    last_error        text,
    last_attempt_at   timestamptz,
    next_attempt_at   timestamptz NOT NULL DEFAULT now(),
    leased_until      timestamptz,
    swept_at          timestamptz,
    window_started_at timestamptz NOT NULL DEFAULT now(),
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    delivered_at      timestamptz,
    UNIQUE (endpoint_id, event_id)
);

-- The delivery log of one endpoint, newest first.
CREATE INDEX webhook_deliveries_by_endpoint ON webhook_deliveries (endpoint_id, created_at DESC, id DESC);
-- The sweep and the oldest-undelivered gauge read only the pending ones.
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (next_attempt_at) WHERE state = 'pending';
