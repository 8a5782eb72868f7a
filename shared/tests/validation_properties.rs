//! Properties of the validators: they never panic on any input, accept exactly what the
//! contract allows, and what they accept satisfies the contract's bounds.

use intake_shared::domain::{Email, IdempotencyKey, PersonName, Phone, Role, TeamName};
use intake_shared::errors::FieldCode;
use intake_shared::validation::{RawForm, validate};
use proptest::prelude::*;

proptest! {
    #[test]
    fn any_ten_digits_is_a_phone(digits in "[0-9]{10}") {
        prop_assert_eq!(Phone::parse(&digits).map(|p| p.as_str().to_owned()), Ok(digits));
    }

    #[test]
    fn digit_strings_of_other_lengths_are_not_phones(digits in "[0-9]{1,30}") {
        prop_assume!(digits.len() != 10);
        prop_assert_eq!(Phone::parse(&digits).map_err(|e| e.code), Err(FieldCode::InvalidPhone));
    }

    #[test]
    fn phone_never_panics_and_accepts_only_ten_ascii_digits(s in any::<String>()) {
        if let Ok(phone) = Phone::parse(&s) {
            prop_assert_eq!(phone.as_str().len(), 10);
            prop_assert!(phone.as_str().bytes().all(|b| b.is_ascii_digit()));
        }
    }

    #[test]
    fn accepted_team_names_are_trimmed_and_within_bounds(s in any::<String>()) {
        if let Ok(name) = TeamName::parse(&s) {
            let n = name.as_str().chars().count();
            prop_assert!((3..=80).contains(&n));
            prop_assert_eq!(name.as_str().trim(), name.as_str());
            prop_assert!(!name.as_str().chars().any(char::is_control));
        }
    }

    #[test]
    fn team_names_of_letters_are_accepted_exactly_within_bounds(s in "[A-Za-z]{1,120}") {
        let ok = (3..=80).contains(&s.len());
        prop_assert_eq!(TeamName::parse(&s).is_ok(), ok);
    }

    #[test]
    fn accepted_person_names_hold_only_allowed_characters(s in any::<String>()) {
        if let Ok(name) = PersonName::parse(&s) {
            let n = name.as_str().chars().count();
            prop_assert!((3..=50).contains(&n));
            prop_assert!(name.as_str().chars().any(char::is_alphabetic));
            prop_assert!(!name.as_str().chars().any(|c| c.is_ascii_digit() || c.is_control()));
        }
    }

    #[test]
    fn letter_names_in_any_script_are_accepted_within_bounds(s in "[a-zA-Zéñßøαβγдж]{3,50}") {
        prop_assert!(PersonName::parse(&s).is_ok());
    }

    #[test]
    fn email_never_panics_and_respects_length(s in any::<String>()) {
        if let Ok(email) = Email::parse(&s) {
            prop_assert!(email.as_str().chars().count() <= 254);
            prop_assert!(email.as_str().contains('@'));
        }
    }

    #[test]
    fn simple_addresses_are_emails(local in "[a-z][a-z0-9.]{0,20}[a-z]", domain in "[a-z]{1,20}\\.[a-z]{2,6}") {
        let address = format!("{local}@{domain}");
        prop_assume!(!local.contains(".."));
        prop_assert!(Email::parse(&address).is_ok(), "{}", address);
    }

    #[test]
    fn idempotency_keys_are_visible_ascii_of_bounded_length(s in any::<String>()) {
        if let Ok(key) = IdempotencyKey::parse(&s) {
            prop_assert!((1..=255).contains(&key.as_str().len()));
            prop_assert!(key.as_str().bytes().all(|b| b.is_ascii_graphic()));
        }
    }

    #[test]
    fn roles_parse_only_the_four_names(s in any::<String>()) {
        let known = ["batsman", "bowler", "all-rounder", "wicket-keeper"].contains(&s.as_str());
        prop_assert_eq!(Role::parse(&s).is_ok(), known);
    }

    #[test]
    fn validate_never_panics_on_any_players_text(players in any::<String>()) {
        let form = RawForm { players: Some(players), ..RawForm::default() };
        let errors = validate(&form).expect_err("the other fields are missing");
        prop_assert!(errors.len() <= 64, "bounded error list: {}", errors.len());
    }

    #[test]
    fn validate_reports_every_field_of_an_empty_form_once(_x in 0..1u8) {
        let errors = validate(&RawForm::default()).expect_err("empty form is invalid");
        let mut fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        fields.sort_unstable();
        let mut expected = RawForm::FIELDS.to_vec();
        expected.sort_unstable();
        prop_assert_eq!(fields, expected);
        prop_assert!(errors.iter().all(|e| e.code == FieldCode::Required));
    }
}

#[test]
fn huge_player_arrays_produce_a_bounded_error_list() {
    let players: Vec<serde_json::Value> = (0..5000)
        .map(|i| serde_json::json!({"name": format!("x{i}"), "role": "nope"}))
        .collect();
    let form = RawForm {
        players: Some(serde_json::Value::Array(players).to_string()),
        ..RawForm::default()
    };
    let errors = validate(&form).expect_err("invalid");
    assert!(errors.len() < 100, "{} errors", errors.len());
}
