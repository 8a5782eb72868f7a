//! Masks personal data for logs and debug output: enough to recognise a value in support,
//! never enough to use it.

/// `9876543210` → `98******10`.
pub fn phone(value: &str) -> String {
    let chars: Vec<char> = value.chars().collect();
    if chars.len() <= 4 {
        return "*".repeat(chars.len());
    }
    let head: String = chars[..2].iter().collect();
    let tail: String = chars[chars.len() - 2..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(chars.len() - 4))
}

/// `captain@example.org` → `c***@example.org`.
pub fn email(value: &str) -> String {
    match value.rsplit_once('@') {
        Some((local, domain)) => {
            let first = local.chars().next().map(String::from).unwrap_or_default();
            format!("{first}***@{domain}")
        }
        None => "***".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_keeps_two_digits_each_end() {
        assert_eq!(phone("9876543210"), "98******10");
        assert_eq!(phone("123"), "***");
    }

    #[test]
    fn email_keeps_first_letter_and_domain() {
        assert_eq!(email("captain@example.org"), "c***@example.org");
        assert_eq!(email("nonsense"), "***");
    }
}
