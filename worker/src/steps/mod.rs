//! The job's steps, each safe to run twice: a second run finds what the first one did and
//! moves on instead of doing it again.

pub mod claim_team;
pub mod notify;
pub mod save;
pub mod upload;
