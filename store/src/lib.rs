//! The one owner of Intake's stored state (docs/contract.md §7): the Postgres pool, the
//! migrations and every SQL statement the services run ([`pg`], behind the `postgres`
//! feature), and the status record in Redis ([`status`]). Services call typed functions
//! here; none of them spells SQL or touches a status key.

pub mod mail_cap;
#[cfg(feature = "postgres")]
pub mod pg;
pub mod staging_quota;
pub mod status;
pub mod team_index;
