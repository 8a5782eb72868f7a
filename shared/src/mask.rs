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

/// Masks every email address inside free text (a mail server's refusal often quotes the
/// recipient), leaving the rest as it is.
pub fn emails_in(text: &str) -> String {
    let is_address_char =
        |c: char| c.is_alphanumeric() || matches!(c, '.' | '_' | '%' | '+' | '-' | '@');
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if word.contains('@') && !word.starts_with('@') && !word.ends_with('@') {
            out.push_str(&email(word));
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in text.chars() {
        if is_address_char(c) {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
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
    fn addresses_inside_text_are_masked() {
        assert_eq!(
            emails_in("550 5.1.1 <captain@example.org>: Recipient rejected"),
            "550 5.1.1 <c***@example.org>: Recipient rejected"
        );
        assert_eq!(emails_in("no address here"), "no address here");
    }

    #[test]
    fn email_keeps_first_letter_and_domain() {
        assert_eq!(email("captain@example.org"), "c***@example.org");
        assert_eq!(email("nonsense"), "***");
    }
}
