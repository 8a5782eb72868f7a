//! Turns the form's raw text fields into a [`Registration`], collecting every problem at
//! once: a person filling in a form wants the whole list, not one error per round trip.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use serde_json::Value;

use crate::domain::{Contact, Email, PersonName, Phone, Player, Registration, Role, TeamName};
use crate::errors::{FieldCode, FieldError, Invalid};

/// Text fields of the form as received, `None` where a field was absent.
#[derive(Debug, Default, Clone)]
pub struct RawForm {
    pub team_name: Option<String>,
    pub captain_name: Option<String>,
    pub captain_phone: Option<String>,
    pub captain_email: Option<String>,
    pub vice_captain_name: Option<String>,
    pub vice_captain_phone: Option<String>,
    pub vice_captain_email: Option<String>,
    pub players: Option<String>,
}

impl RawForm {
    /// Names of the text fields, in the order the form shows them.
    pub const FIELDS: [&'static str; 8] = [
        "team_name",
        "captain_name",
        "captain_phone",
        "captain_email",
        "vice_captain_name",
        "vice_captain_phone",
        "vice_captain_email",
        "players",
    ];

    /// The slot of a text field by its form name, `None` for a name the form does not have.
    pub fn slot(&mut self, field: &str) -> Option<&mut Option<String>> {
        Some(match field {
            "team_name" => &mut self.team_name,
            "captain_name" => &mut self.captain_name,
            "captain_phone" => &mut self.captain_phone,
            "captain_email" => &mut self.captain_email,
            "vice_captain_name" => &mut self.vice_captain_name,
            "vice_captain_phone" => &mut self.vice_captain_phone,
            "vice_captain_email" => &mut self.vice_captain_email,
            "players" => &mut self.players,
            _ => return None,
        })
    }
}

/// Collects field problems while each field is parsed independently.
struct Collector {
    errors: Vec<FieldError>,
}

impl Collector {
    fn field<T>(
        &mut self,
        name: &str,
        raw: Option<&str>,
        parse: impl FnOnce(&str) -> Result<T, Invalid>,
    ) -> Option<T> {
        let result = match raw {
            None => Err(Invalid::new(FieldCode::Required, "is required")),
            Some(raw) => parse(raw),
        };
        result.map_err(|e| self.errors.push(e.on(name))).ok()
    }
}

/// Validates every text field; `Err` lists all problems found.
pub fn validate(form: &RawForm) -> Result<Registration, Vec<FieldError>> {
    let mut c = Collector { errors: Vec::new() };
    let team_name = c.field("team_name", form.team_name.as_deref(), TeamName::parse);
    let captain = contact(
        &mut c,
        "captain",
        form.captain_name.as_deref(),
        form.captain_phone.as_deref(),
        form.captain_email.as_deref(),
    );
    let vice_captain = contact(
        &mut c,
        "vice_captain",
        form.vice_captain_name.as_deref(),
        form.vice_captain_phone.as_deref(),
        form.vice_captain_email.as_deref(),
    );
    let players = match form.players.as_deref() {
        None => {
            c.errors.push(FieldError::new(
                "players",
                FieldCode::Required,
                "is required",
            ));
            None
        }
        Some(raw) => players(raw, &mut c.errors),
    };
    match (team_name, captain, vice_captain, players) {
        (Some(team_name), Some(captain), Some(vice_captain), Some(players))
            if c.errors.is_empty() =>
        {
            Ok(Registration {
                team_name,
                captain,
                vice_captain,
                players,
            })
        }
        _ => Err(c.errors),
    }
}

fn contact(
    c: &mut Collector,
    who: &str,
    name: Option<&str>,
    phone: Option<&str>,
    email: Option<&str>,
) -> Option<Contact> {
    let name = c.field(&format!("{who}_name"), name, PersonName::parse);
    let phone = c.field(&format!("{who}_phone"), phone, Phone::parse);
    let email = c.field(&format!("{who}_email"), email, Email::parse);
    Some(Contact {
        name: name?,
        phone: phone?,
        email: email?,
    })
}

/// Parses the `players` JSON array, reporting each bad entry under `players[i].name` or
/// `players[i].role` so the form can point at the exact row.
fn players(raw: &str, errors: &mut Vec<FieldError>) -> Option<Vec<Player>> {
    let before = errors.len();
    if raw.trim().is_empty() {
        errors.push(FieldError::new(
            "players",
            FieldCode::Required,
            "is required",
        ));
        return None;
    }
    let items = match serde_json::from_str::<Value>(raw) {
        Ok(Value::Array(items)) => items,
        Ok(_) => {
            errors.push(FieldError::new(
                "players",
                FieldCode::InvalidJson,
                "must be a JSON array of players",
            ));
            return None;
        }
        Err(_) => {
            errors.push(FieldError::new(
                "players",
                FieldCode::InvalidJson,
                "must be valid JSON",
            ));
            return None;
        }
    };
    if items.len() < Registration::MIN_PLAYERS {
        errors.push(FieldError::new(
            "players",
            FieldCode::TooFewPlayers,
            format!("must list at least {} players", Registration::MIN_PLAYERS),
        ));
    } else if items.len() > Registration::MAX_PLAYERS {
        errors.push(FieldError::new(
            "players",
            FieldCode::TooManyPlayers,
            format!("must list at most {} players", Registration::MAX_PLAYERS),
        ));
    }
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut parsed = Vec::with_capacity(items.len());
    // Entries past the maximum are not examined: the count error already says what to fix
    // and a hostile array of thousands would otherwise produce thousands of errors.
    for (i, item) in items.iter().enumerate().take(Registration::MAX_PLAYERS + 1) {
        let at = format!("players[{i}]");
        let Value::Object(fields) = item else {
            errors.push(FieldError::new(
                at,
                FieldCode::InvalidJson,
                "must be an object with name and role",
            ));
            continue;
        };
        if let Some(extra) = fields.keys().find(|k| *k != "name" && *k != "role") {
            errors.push(FieldError::new(
                format!("{at}.{}", truncate(extra, 40)),
                FieldCode::UnknownField,
                "is not a player field; use name and role",
            ));
        }
        let name = match fields.get("name") {
            None | Some(Value::Null) => Err(Invalid::new(FieldCode::Required, "is required")),
            Some(Value::String(s)) => PersonName::parse(s),
            Some(_) => Err(Invalid::new(FieldCode::InvalidJson, "must be a string")),
        }
        .map_err(|e| errors.push(e.on(format!("{at}.name"))))
        .ok();
        let role = match fields.get("role") {
            None | Some(Value::Null) => Err(Invalid::new(FieldCode::Required, "is required")),
            Some(Value::String(s)) => Role::parse(s),
            Some(_) => Err(Invalid::new(
                FieldCode::InvalidRole,
                "must be one of batsman, bowler, all-rounder, wicket-keeper",
            )),
        }
        .map_err(|e| errors.push(e.on(format!("{at}.role"))))
        .ok();
        if let Some(name) = &name {
            match seen.entry(name.comparison_key()) {
                Entry::Occupied(first) => errors.push(FieldError::new(
                    format!("{at}.name"),
                    FieldCode::DuplicatePlayer,
                    format!("is the same player as players[{}]", first.get()),
                )),
                Entry::Vacant(slot) => {
                    slot.insert(i);
                }
            }
        }
        if let (Some(name), Some(role)) = (name, role) {
            parsed.push(Player { name, role });
        }
    }
    (errors.len() == before).then_some(parsed)
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}
