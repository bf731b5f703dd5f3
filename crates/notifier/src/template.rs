//! Postback URL templates: `{macro}` placeholders filled with URL-encoded values. Unknown
//! placeholders are left as they are (trackers have their own brace syntaxes).

use std::collections::BTreeMap;

/// Every macro a template may use.
pub const MACROS: [&str; 17] = [
    "click_id",
    "txn_id",
    "conversion_id",
    "event",
    "amount",
    "currency",
    "payout",
    "status",
    "sub1",
    "sub2",
    "sub3",
    "sub4",
    "sub5",
    "affiliate_id",
    "campaign_id",
    "timestamp",
    "event_type",
];

/// Macro values; a macro without a value is filled with the empty string.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Macros(BTreeMap<&'static str, String>);

impl Macros {
    pub fn set(&mut self, name: &'static str, value: impl Into<String>) -> &mut Self {
        debug_assert!(MACROS.contains(&name), "unknown macro {name}");
        self.0.insert(name, value.into());
        self
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::Value::Object(
            MACROS
                .iter()
                .map(|name| ((*name).to_owned(), self.get(name).unwrap_or_default().into()))
                .collect(),
        )
    }
}

pub fn render(template: &str, macros: &Macros) -> String {
    clickledger_domain::url_template::fill(template, |name| {
        MACROS.contains(&name).then(|| macros.get(name).unwrap_or_default())
    })
}

/// Checks that a template yields an absolute `http(s)` URL with a host and no credentials.
/// Macros may not stand in the scheme, host or port: where a postback goes is fixed when the
/// endpoint is saved (and checked against the address policy), never chosen by data.
pub fn validate(template: &str) -> Result<url::Url, &'static str> {
    let url = clickledger_domain::url_template::fixed_origin(template).map_err(|err| err.message())?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("must be an http or https URL");
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("must name a host");
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry credentials");
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_and_encodes() {
        let mut macros = Macros::default();
        macros.set("click_id", "abc").set("sub1", "a b&c=d/é").set("amount", "10.50");
        let url =
            render("https://t.example/pb?cid={click_id}&s1={sub1}&a={amount}&p={payout}&x={other}", &macros);
        assert_eq!(url, "https://t.example/pb?cid=abc&s1=a%20b%26c%3Dd%2F%C3%A9&a=10.50&p=&x={other}");
    }

    #[test]
    fn unbalanced_braces_are_kept() {
        assert_eq!(render("https://x/{click_id", &Macros::default()), "https://x/{click_id");
    }

    #[test]
    fn validation() {
        assert!(validate("https://t.example/pb?cid={click_id}").is_ok());
        assert!(validate("ftp://t.example/").is_err());
        assert!(validate("/relative").is_err());
        assert!(validate("https://user:pw@t.example/").is_err());
        assert!(validate("https://t.example{sub1}/pb").is_err());
        assert!(validate("https://{sub1}/pb").is_err());
        assert!(validate("https://t.example/{sub1}?q={sub2}").is_ok());
    }
}
