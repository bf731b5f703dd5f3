//! Parsers for the small values that arrive from outside: names, e-mails, slugs, URLs.
//! Past these functions, a value that exists is valid.

use crate::Error;

/// A display name: trimmed, 1–200 characters, no control characters.
pub fn name(raw: &str, field: &'static str) -> Result<String, Error> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    if trimmed.chars().count() > 200 {
        return Err(Error::invalid(field, "must be at most 200 characters"));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(Error::invalid(field, "must not contain control characters"));
    }
    Ok(trimmed.to_owned())
}

/// An e-mail address, lower-cased. Deliberately shallow: one `@`, a dot in the domain, no
/// spaces; deliverability is proven by sending, not by a regex.
pub fn email(raw: &str, field: &'static str) -> Result<String, Error> {
    let email = raw.trim().to_lowercase();
    let valid = email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && match email.split_once('@') {
            Some((local, domain)) => {
                !local.is_empty()
                    && !domain.contains('@')
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
            }
            None => false,
        };
    if valid { Ok(email) } else { Err(Error::invalid(field, "must be an e-mail address")) }
}

/// A tenant slug: 3–40 of `a-z`, `0-9`, `-`, not starting or ending with `-`.
pub fn slug(raw: &str, field: &'static str) -> Result<String, Error> {
    let slug = raw.trim().to_lowercase();
    let valid = (3..=40).contains(&slug.len())
        && slug.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !slug.starts_with('-')
        && !slug.ends_with('-');
    if valid {
        Ok(slug)
    } else {
        Err(Error::invalid(
            field,
            "must be 3-40 characters of a-z, 0-9 and '-', not starting or ending with '-'",
        ))
    }
}

/// An absolute `http`/`https` URL. Macros such as `{click_id}` are allowed anywhere, so the
/// URL is checked with placeholders substituted.
pub fn landing_url(raw: &str, field: &'static str) -> Result<String, Error> {
    let trimmed = raw.trim();
    let probe = trimmed.replace(['{', '}'], "");
    match url::Url::parse(&probe) {
        Ok(url)
            if matches!(url.scheme(), "http" | "https")
                && url.host_str().is_some()
                && trimmed.len() <= 2048 =>
        {
            Ok(trimmed.to_owned())
        }
        _ => Err(Error::invalid(field, "must be an absolute http(s) URL of at most 2048 characters")),
    }
}

/// An IANA time zone name such as `Europe/Malta`, or `UTC`.
pub fn time_zone(raw: &str, field: &'static str) -> Result<chrono_tz::Tz, Error> {
    raw.trim()
        .parse::<chrono_tz::Tz>()
        .map_err(|_| Error::invalid(field, "must be an IANA time zone such as Europe/Malta or UTC"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_and_normalises() {
        assert_eq!(email(" Ann@Example.COM ", "email").unwrap(), "ann@example.com");
        assert_eq!(slug("Acme-Bet", "slug").unwrap(), "acme-bet");
        assert!(landing_url("https://shop.example/land?cid={click_id}", "landingUrl").is_ok());
    }

    #[test]
    fn rejects_with_the_field() {
        assert_eq!(email("nope", "email").unwrap_err().field(), "email");
        assert_eq!(slug("-x-", "tenantSlug").unwrap_err().field(), "tenantSlug");
        assert_eq!(landing_url("javascript:alert(1)", "landingUrl").unwrap_err().field(), "landingUrl");
        assert_eq!(name("  ", "name").unwrap_err().field(), "name");
    }

    proptest! {
        #[test]
        fn parsers_never_panic(raw in "\\PC{0,80}") {
            let _ = email(&raw, "email");
            let _ = slug(&raw, "slug");
            let _ = landing_url(&raw, "url");
            let _ = name(&raw, "name");
        }
    }
}
