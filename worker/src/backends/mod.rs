//! Outside services behind traits, each with a production backend and a local one chosen by
//! configuration: documents (Cloudinary or a media directory) and mail (SMTP or an outbox
//! directory of `.eml` files).

pub mod cloudinary;
pub mod local_media;
pub mod mail;
pub mod outbox;
pub mod smtp;
pub mod store;
