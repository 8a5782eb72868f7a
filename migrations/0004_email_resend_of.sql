-- A support resend runs as a queued job, and a job can run twice (a worker that crashed after
-- sending, before acknowledging). Each delivery remembers which resend marked it (the audit
-- log entry that asked for it): the same resend running again finds its own mark and does
-- not send a second message; a new resend marks it afresh.
ALTER TABLE email_deliveries ADD COLUMN resend_of bigint;
