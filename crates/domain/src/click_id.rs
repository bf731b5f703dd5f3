//! Self-describing, tamper-evident click IDs.
//!
//! Layout (29 bytes, big-endian, then base64url without padding = 39 characters):
//! `version u8 | tenant_tag u32 | link_tag u48 | clicked_at unix-ms u48 | nonce u32 | mac 8`,
//! where `mac` is HMAC-SHA256 over the first 21 bytes under the tenant's secret, truncated to
//! 64 bits. A postback for a click whose row was never written still attributes (the ID says
//! which link and when), and a forged or altered ID fails the MAC.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, TimeZone, Utc};
use hmac::{Hmac, Mac};
use rand::Rng;
use sha2::Sha256;

pub const MAX_LEN: usize = 40;
const VERSION: u8 = 1;
const BODY_LEN: usize = 21;
const MAC_LEN: usize = 8;
const RAW_LEN: usize = BODY_LEN + MAC_LEN;
const ENCODED_LEN: usize = 39;
const U48_MAX: u64 = (1 << 48) - 1;

/// A tenant's click-ID key. Its bytes never appear in `Debug` output.
#[derive(Clone)]
pub struct ClickSecret([u8; 32]);

impl ClickSecret {
    pub fn generate() -> Self {
        ClickSecret(rand::rng().random())
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ClickIdError> {
        <[u8; 32]>::try_from(bytes).map(ClickSecret).map_err(|_| ClickIdError::BadSecret)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    fn mac(&self, body: &[u8]) -> Hmac<Sha256> {
        // HMAC accepts keys of any length, so this cannot fail for 32 bytes.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(body);
        mac
    }
}

impl fmt::Debug for ClickSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClickSecret(..)")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClickId {
    pub tenant_tag: u32,
    /// 48 bits.
    pub link_tag: u64,
    /// Millisecond precision.
    pub clicked_at: DateTime<Utc>,
    pub nonce: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ClickIdError {
    #[error("malformed click ID")]
    Malformed,
    #[error("unsupported click ID version {0}")]
    UnsupportedVersion(u8),
    #[error("click ID failed verification")]
    Forged,
    #[error("click secret must be 32 bytes")]
    BadSecret,
}

impl ClickIdError {
    /// The reason stored on an unattributed conversion.
    pub fn reason(&self) -> &'static str {
        match self {
            ClickIdError::Malformed | ClickIdError::UnsupportedVersion(_) => "malformed_click_id",
            ClickIdError::Forged => "forged_click_id",
            ClickIdError::BadSecret => "bad_click_secret",
        }
    }
}

pub fn random_tenant_tag() -> u32 {
    rand::rng().random()
}

pub fn random_link_tag() -> u64 {
    rand::rng().random_range(0..=U48_MAX)
}

impl ClickId {
    pub fn mint(tenant_tag: u32, link_tag: u64, clicked_at: DateTime<Utc>) -> Self {
        ClickId { tenant_tag, link_tag: link_tag & U48_MAX, clicked_at, nonce: rand::rng().random() }
    }

    fn body(&self) -> [u8; BODY_LEN] {
        let mut body = [0u8; BODY_LEN];
        body[0] = VERSION;
        body[1..5].copy_from_slice(&self.tenant_tag.to_be_bytes());
        body[5..11].copy_from_slice(&(self.link_tag & U48_MAX).to_be_bytes()[2..]);
        let millis = u64::try_from(self.clicked_at.timestamp_millis()).unwrap_or(0) & U48_MAX;
        body[11..17].copy_from_slice(&millis.to_be_bytes()[2..]);
        body[17..21].copy_from_slice(&self.nonce.to_be_bytes());
        body
    }

    pub fn encode(&self, secret: &ClickSecret) -> String {
        let body = self.body();
        let tag = secret.mac(&body).finalize().into_bytes();
        let mut raw = [0u8; RAW_LEN];
        raw[..BODY_LEN].copy_from_slice(&body);
        raw[BODY_LEN..].copy_from_slice(&tag[..MAC_LEN]);
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// Parses the structure only, so the caller can find the tenant's secret by its tag.
    pub fn peek(raw: &str) -> Result<UnverifiedClickId, ClickIdError> {
        if raw.len() != ENCODED_LEN {
            return Err(ClickIdError::Malformed);
        }
        let mut bytes = [0u8; RAW_LEN];
        let written = URL_SAFE_NO_PAD.decode_slice(raw, &mut bytes).map_err(|_| ClickIdError::Malformed)?;
        if written != RAW_LEN {
            return Err(ClickIdError::Malformed);
        }
        // base64 has spare bits in the last character; a canonical re-encoding catches edits
        // there, which would otherwise decode to the same bytes.
        if URL_SAFE_NO_PAD.encode(bytes) != raw {
            return Err(ClickIdError::Malformed);
        }
        if bytes[0] != VERSION {
            return Err(ClickIdError::UnsupportedVersion(bytes[0]));
        }
        Ok(UnverifiedClickId { bytes })
    }
}

pub struct UnverifiedClickId {
    bytes: [u8; RAW_LEN],
}

impl UnverifiedClickId {
    pub fn tenant_tag(&self) -> u32 {
        u32::from_be_bytes([self.bytes[1], self.bytes[2], self.bytes[3], self.bytes[4]])
    }

    pub fn verify(&self, secret: &ClickSecret) -> Result<ClickId, ClickIdError> {
        secret
            .mac(&self.bytes[..BODY_LEN])
            .verify_truncated_left(&self.bytes[BODY_LEN..])
            .map_err(|_| ClickIdError::Forged)?;
        let u48 = |at: usize| {
            let mut wide = [0u8; 8];
            wide[2..].copy_from_slice(&self.bytes[at..at + 6]);
            u64::from_be_bytes(wide)
        };
        let millis = i64::try_from(u48(11)).map_err(|_| ClickIdError::Malformed)?;
        Ok(ClickId {
            tenant_tag: self.tenant_tag(),
            link_tag: u48(5),
            clicked_at: Utc.timestamp_millis_opt(millis).single().ok_or(ClickIdError::Malformed)?,
            nonce: u32::from_be_bytes([self.bytes[17], self.bytes[18], self.bytes[19], self.bytes[20]]),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arbitrary_click() -> impl Strategy<Value = ClickId> {
        (any::<u32>(), 0..=U48_MAX, 0i64..(1i64 << 47), any::<u32>()).prop_map(
            |(tenant_tag, link_tag, ms, nonce)| ClickId {
                tenant_tag,
                link_tag,
                clicked_at: Utc.timestamp_millis_opt(ms).unwrap(),
                nonce,
            },
        )
    }

    #[test]
    fn forty_characters_at_most_and_url_safe() {
        let id = ClickId::mint(7, 9, Utc::now()).encode(&ClickSecret::generate());
        assert!(id.len() <= MAX_LEN);
        assert!(id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    }

    #[test]
    fn secrets_do_not_leak_through_debug() {
        assert_eq!(format!("{:?}", ClickSecret::from_bytes(&[7; 32]).unwrap()), "ClickSecret(..)");
    }

    proptest! {
        #[test]
        fn round_trips(click in arbitrary_click()) {
            let secret = ClickSecret::generate();
            let encoded = click.encode(&secret);
            let peeked = ClickId::peek(&encoded).unwrap();
            prop_assert_eq!(peeked.tenant_tag(), click.tenant_tag);
            prop_assert_eq!(peeked.verify(&secret).unwrap(), click);
        }

        #[test]
        fn any_single_character_change_is_detected(click in arbitrary_click(), position in 0usize..ENCODED_LEN, replacement in "[A-Za-z0-9_-]") {
            let secret = ClickSecret::generate();
            let encoded = click.encode(&secret);
            let mut altered: Vec<char> = encoded.chars().collect();
            let new_char = replacement.chars().next().unwrap();
            prop_assume!(altered[position] != new_char);
            altered[position] = new_char;
            let altered: String = altered.into_iter().collect();
            let outcome = ClickId::peek(&altered).and_then(|p| p.verify(&secret));
            prop_assert!(outcome.is_err());
        }

        #[test]
        fn another_tenants_secret_fails(click in arbitrary_click()) {
            let encoded = click.encode(&ClickSecret::generate());
            prop_assert_eq!(ClickId::peek(&encoded).unwrap().verify(&ClickSecret::generate()), Err(ClickIdError::Forged));
        }

        #[test]
        fn arbitrary_input_never_panics(raw in "\\PC{0,60}") {
            if let Ok(peeked) = ClickId::peek(&raw) {
                let _ = peeked.verify(&ClickSecret::generate());
            }
        }
    }
}
