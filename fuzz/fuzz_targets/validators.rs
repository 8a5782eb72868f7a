//! Every validator on arbitrary text: none panics, and whatever one accepts satisfies the
//! contract's bounds.
#![no_main]

use intake_shared::domain::{Email, IdempotencyKey, PersonName, Phone, Role, TeamName};
use intake_shared::validation::{RawForm, validate};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(name) = TeamName::parse(&text) {
        assert!((3..=80).contains(&name.as_str().chars().count()));
    }
    if let Ok(name) = PersonName::parse(&text) {
        assert!((3..=50).contains(&name.as_str().chars().count()));
    }
    if let Ok(phone) = Phone::parse(&text) {
        assert!(phone.as_str().len() == 10 && phone.as_str().bytes().all(|b| b.is_ascii_digit()));
    }
    if let Ok(email) = Email::parse(&text) {
        assert!(email.as_str().chars().count() <= 254);
    }
    let _ = IdempotencyKey::parse(&text);
    let _ = Role::parse(&text);
    let form = RawForm {
        team_name: Some(text.to_string()),
        captain_name: Some(text.to_string()),
        captain_phone: Some(text.to_string()),
        captain_email: Some(text.to_string()),
        vice_captain_name: Some(text.to_string()),
        vice_captain_phone: Some(text.to_string()),
        vice_captain_email: Some(text.to_string()),
        players: Some(text.to_string()),
    };
    if let Err(errors) = validate(&form) {
        assert!(!errors.is_empty());
    }
});
