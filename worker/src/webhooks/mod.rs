//! Webhook delivery (docs/contract.md §16). Events wait in the outbox until the
//! [`dispatch`]er hands each on as one delivery per endpoint that takes it, and one job per
//! delivery on the deliveries queue, a queue of its own with its own slots so deliveries
//! never hold a registration's. A job runs one attempt ([`deliver`]): take the delivery's
//! lease, POST the signed event ([`sender`]), record what happened, and push the job of the
//! next attempt when there is one. A worker killed mid-attempt leaves its job in flight;
//! apalis gives it to another worker once the heartbeat lapses, and the lease in Postgres
//! has expired by then, so the event is sent again with the same `webhook-id`.

pub mod deliver;
pub mod dispatch;
pub mod metrics;
pub mod sender;
