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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::fill;

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
