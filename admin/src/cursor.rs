//! Keyset cursors of the Postgres listings: the last item's time and id, opaque to callers.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::error::AdminError;

pub fn encode(at: OffsetDateTime, id: uuid::Uuid) -> String {
    format!("{}|{id}", at.format(&Rfc3339).unwrap_or_default())
}

/// A cursor this service gave; anything else is a 400.
pub fn decode(cursor: Option<&str>) -> Result<Option<(OffsetDateTime, uuid::Uuid)>, AdminError> {
    cursor
        .map(|c| {
            c.split_once('|')
                .and_then(|(at, id)| {
                    Some((
                        OffsetDateTime::parse(at, &Rfc3339).ok()?,
                        uuid::Uuid::parse_str(id).ok()?,
                    ))
                })
                .ok_or_else(|| AdminError::BadRequest("cursor is not one this service gave".into()))
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips_and_a_forged_one_is_refused() {
        let at = OffsetDateTime::now_utc();
        let id = uuid::Uuid::new_v4();
        let decoded = decode(Some(&encode(at, id))).expect("ours");
        assert_eq!(decoded, Some((at, id)));
        assert!(decode(Some("yesterday|nobody")).is_err());
        assert!(decode(None).expect("none").is_none());
    }
}
