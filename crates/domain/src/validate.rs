//! Parsers for the small values that arrive from outside: names, e-mails, slugs, URLs.
//! Past these functions, a value that exists is valid.

use crate::{Error, url_template};

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

/// Highest per-key postback rate limit a key may be given, a minute.
pub const MAX_POSTBACKS_PER_MINUTE: i32 = 1_000_000;

/// A rate limit of requests a minute: 1 to [`MAX_POSTBACKS_PER_MINUTE`].
pub fn per_minute_limit(raw: i32, field: &'static str) -> Result<u32, Error> {
    if !(1..=MAX_POSTBACKS_PER_MINUTE).contains(&raw) {
        return Err(Error::invalid(
            field,
            format!(
                "must be between 1 and {MAX_POSTBACKS_PER_MINUTE} (leave it out, or null, for the server's default)"
            ),
        ));
    }
    u32::try_from(raw).map_err(|_| Error::invalid(field, "must be positive"))
}

/// Free text recorded as it came (a click's sub-IDs, user agent, referrer), minus control
/// characters: they mean nothing in such a field, a NUL is refused by PostgreSQL, and a click
/// is recorded rather than refused (the visitor is already on the way to the landing page).
pub fn without_control_characters(raw: &str) -> std::borrow::Cow<'_, str> {
    if raw.chars().any(char::is_control) {
        std::borrow::Cow::Owned(raw.chars().filter(|c| !c.is_control()).collect())
    } else {
        std::borrow::Cow::Borrowed(raw)
    }
}

/// Whether a tracking code has only the characters a code may have: `A-Z a-z 0-9 - _`
/// (codes made here are alphanumeric; imported ones keep another tracker's `-` and `_`).
pub fn is_link_code(code: &str) -> bool {
    code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
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

/// An absolute `http`/`https` URL. Macros such as `{click_id}` are allowed in the path, query
/// and fragment, never in the scheme, host or port (see [`url_template::fixed_origin`]).
pub fn landing_url(raw: &str, field: &'static str) -> Result<String, Error> {
    let trimmed = raw.trim();
    let not_a_url = || Error::invalid(field, "must be an absolute http(s) URL of at most 2048 characters");
    let url = match url_template::fixed_origin(trimmed) {
        Ok(url) => url,
        Err(url_template::OriginError::NotAbsolute) => return Err(not_a_url()),
        Err(err @ url_template::OriginError::MacroInOrigin) => {
            return Err(Error::invalid(field, err.message()));
        }
    };
    if matches!(url.scheme(), "http" | "https")
        && url.host_str().is_some_and(|h| !h.is_empty())
        && trimmed.len() <= 2048
    {
        Ok(trimmed.to_owned())
    } else {
        Err(not_a_url())
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
        // An open redirect: `?sub1=.evil.example` would send visitors anywhere.
        assert_eq!(
            landing_url("https://brand.example{sub1}", "landingUrl").unwrap_err().field(),
            "landingUrl"
        );
        assert!(landing_url("https://{sub1}/", "fallbackUrl").is_err());
        assert_eq!(name("  ", "name").unwrap_err().field(), "name");
    }

    #[test]
    fn control_characters_are_stripped() {
        assert_eq!(without_control_characters("a\u{0}b\tc\u{7f}\u{85}d"), "abcd");
        assert!(matches!(without_control_characters("plain ü"), std::borrow::Cow::Borrowed("plain ü")));
    }

    proptest! {
        #[test]
        fn stripping_leaves_no_control_character_and_keeps_the_rest(raw in "\\PC{0,20}[\\x00-\\x1f\\x7f]?\\PC{0,20}") {
            let stripped = without_control_characters(&raw);
            prop_assert!(!stripped.chars().any(char::is_control));
            let kept: String = raw.chars().filter(|c| !c.is_control()).collect();
            prop_assert_eq!(stripped.as_ref(), kept.as_str());
            let again = without_control_characters(&stripped);
            prop_assert_eq!(again.as_ref(), stripped.as_ref());
        }

        #[test]
        fn parsers_never_panic(raw in "\\PC{0,80}") {
            let _ = email(&raw, "email");
            let _ = slug(&raw, "slug");
            let _ = landing_url(&raw, "url");
            let _ = name(&raw, "name");
        }
    }
}
