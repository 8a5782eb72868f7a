-- One row per event and endpoint it goes to (docs/contract.md §16): the delivery log
-- organisers read and the state the delivery jobs work from. A delivery is created when
-- the dispatcher hands its event on (outbox_events.dispatched_at), once per endpoint.
--
-- `generation` names the one job meant to run the delivery next: whoever queues a job for
-- it (the dispatcher, an attempt that schedules the next, a sweep, a re-send) raises it in
-- the same transaction, and a job of an older generation ends without doing anything. So a
-- delivery never has two live jobs, however often a job ran twice or was queued again.
-- `lease_token` and `leased_until` are set while a worker is sending it: a second job does
-- not send it at the same time, and only the lease's holder records the attempt; an expired
-- lease is a worker that died mid-send. `window_started_at` starts the retry window (the
-- first attempt, or the first after a re-send); `window_attempts` counts the attempts in it
-- (the backoff's exponent); `deferrals` counts the times in a row it was put off because
-- its endpoint had its most sends in flight.
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
    generation        integer NOT NULL DEFAULT 0,
    lease_token       uuid,
    leased_until      timestamptz,
    deferrals         integer NOT NULL DEFAULT 0,
    swept_at          timestamptz,
    window_started_at timestamptz NOT NULL DEFAULT now(),
    window_attempts   integer NOT NULL DEFAULT 0,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    delivered_at      timestamptz,
    UNIQUE (endpoint_id, event_id)
);

-- The delivery log of one endpoint, newest first.
CREATE INDEX webhook_deliveries_by_endpoint ON webhook_deliveries (endpoint_id, created_at DESC, id DESC);
-- The sweep and the oldest-undelivered gauge read only the pending ones.
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (next_attempt_at) WHERE state = 'pending';
-- An endpoint's sends in flight, counted before each lease is taken.
CREATE INDEX webhook_deliveries_leased ON webhook_deliveries (endpoint_id) WHERE lease_token IS NOT NULL;
