//! The `v2` postback signature as a sender computes it, written here from the spec (RFC 3986
//! encoding, sorted `name=value` pairs joined by `&`, HMAC-SHA256 in hex), so the server's
//! code is checked against an independent one.

/// RFC 3986 percent-encoding (unreserved characters kept).
pub fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The hex signature of `params` (every parameter the server will read) under `secret`.
pub fn sign(secret: &str, params: &[(&str, &str)]) -> String {
    let mut pairs: Vec<(String, String)> = params.iter().map(|(k, v)| (encode(k), encode(v))).collect();
    pairs.sort();
    let canonical: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let tag = ring::hmac::sign(&key, canonical.join("&").as_bytes());
    tag.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}
