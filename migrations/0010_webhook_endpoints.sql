-- Where outbound events go (docs/contract.md §16): endpoints organisers manage through the
-- admin API. `secret` is the endpoint's signing secret (`whsec_…`), shown once at creation
-- and read only to sign deliveries. A deleted endpoint keeps its row (`deleted_at`), so its
-- deliveries and the audit log still name it.
CREATE TABLE webhook_endpoints (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    url             text NOT NULL,
    events          text[] NOT NULL CHECK (cardinality(events) > 0),
    description     text NOT NULL DEFAULT '',
    enabled         boolean NOT NULL DEFAULT true,
    disabled_reason text,
    secret          text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    deleted_at      timestamptz
);
