//! `{name}` macros in URL templates (a campaign's landing URL, an affiliate's postback URL).

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// Everything but RFC 3986's unreserved characters is encoded, so a value is safe in any part
/// of the URL (path, query or fragment).
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// Replaces each `{name}` for which `value_of` has a value with that value, URL-encoded, in
/// one pass. Anything else, unknown names included, is left as written: the URL itself
/// always comes from the template, never from the values.
pub fn fill<'a>(template: &str, value_of: impl Fn(&str) -> Option<&'a str>) -> String {
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}').and_then(|close| Some((value_of(&after[..close])?, close))) {
            Some((value, close)) => {
                out.extend(utf8_percent_encode(value, COMPONENT));
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Why a template cannot be a URL whose destination is fixed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OriginError {
    /// Not an absolute URL, whatever the macros hold.
    NotAbsolute,
    /// A macro stands in the scheme, host or port.
    MacroInOrigin,
}

impl OriginError {
    pub fn message(self) -> &'static str {
        match self {
            OriginError::NotAbsolute => "must be an absolute URL",
            OriginError::MacroInOrigin => "must not use macros in the scheme, host or port",
        }
    }
}

/// The template as a URL, after checking that where it leads (scheme, host, port) does not
/// depend on what its macros hold: the template's author fixes the destination, the data
/// never does (`https://brand.example{sub1}` with `sub1=.evil.example` would be an open
/// redirect). Every `{name}`, known or not, is filled with two different samples and the
/// origins compared. Returns the URL with every macro filled with the first sample.
pub fn fixed_origin(template: &str) -> Result<url::Url, OriginError> {
    let sample =
        |value: &str| url::Url::parse(&fill(template, |_| Some(value))).map_err(|_| OriginError::NotAbsolute);
    let url = sample("x")?;
    let other = sample("y")?;
    if url.scheme() != other.scheme() || url.host_str() != other.host_str() || url.port() != other.port() {
        return Err(OriginError::MacroInOrigin);
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::{OriginError, fill, fixed_origin};

    #[test]
    fn macros_may_not_choose_where_a_url_leads() {
        assert!(fixed_origin("https://brand.example/land/{sub2}?cid={click_id}#{sub3}").is_ok());
        for template in [
            "https://brand.example{sub1}/",
            "https://{sub1}/",
            "https://{sub1}.brand.example/",
            "https://brand.example{unknown}/",
        ] {
            assert_eq!(fixed_origin(template).unwrap_err(), OriginError::MacroInOrigin, "{template}");
        }
        // A macro in the port or scheme does not even make a URL of the samples.
        for template in
            ["https://brand.example:{sub1}/", "{sub1}://brand.example/", "http{sub1}://b.example/"]
        {
            assert!(fixed_origin(template).is_err(), "{template}");
        }
        assert_eq!(fixed_origin("/relative/{sub1}").unwrap_err(), OriginError::NotAbsolute);
    }

    #[test]
    fn known_macros_are_encoded_and_the_rest_left_alone() {
        let values = |name: &str| match name {
            "click_id" => Some("a-b"),
            "sub1" => Some("a&b=c d/é"),
            _ => None,
        };
        assert_eq!(
            fill("https://x.test/{sub1}?c={click_id}&k={keep}&{&}{", values),
            "https://x.test/a%26b%3Dc%20d%2F%C3%A9?c=a-b&k={keep}&{&}{"
        );
    }

    proptest! {
        #[test]
        fn a_template_without_known_macros_comes_back_unchanged(template in ".*") {
            prop_assert_eq!(fill(&template, |_| None), template);
        }

        #[test]
        fn filled_values_never_add_url_syntax(value in ".*") {
            let url = fill("https://x.test/?v={v}", |name| (name == "v").then_some(value.as_str()));
            let tail = &url["https://x.test/?v=".len()..];
            prop_assert!(tail.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~%".contains(&b)));
        }
    }
}
