-- A registration gets more than one email: its confirmation, and one per decision of the
-- organisers' review. Each message has its own delivery row, kept with the same
-- exactly-once rules (marked `sending` before it goes out, by one run only), so the key is
-- the registration and the message: `confirmation`, or `decision-{version}`. Existing rows
-- are all confirmations.
ALTER TABLE email_deliveries
    ADD COLUMN message text NOT NULL DEFAULT 'confirmation'
        CHECK (message = 'confirmation' OR message ~ '^decision-[1-9][0-9]*$');

ALTER TABLE email_deliveries DROP CONSTRAINT email_deliveries_pkey;
ALTER TABLE email_deliveries ADD PRIMARY KEY (registration_id, message);
