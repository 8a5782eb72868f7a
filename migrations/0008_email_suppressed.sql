-- A confirmation or decision email is not sent when every recipient has had the day's capped
-- number of emails (INTAKE_MAIL_CAP_PER_RECIPIENT_PER_DAY): its delivery is recorded
-- `suppressed`, which a later run or a support resend may send, as after `failed`.
ALTER TABLE email_deliveries DROP CONSTRAINT email_deliveries_status_check;
ALTER TABLE email_deliveries
    ADD CONSTRAINT email_deliveries_status_check
    CHECK (status IN ('sending', 'sent', 'failed', 'unknown', 'suppressed'));
