//! Self-describing, tamper-evident click IDs.
//!
//! Layout (29 bytes, big-endian, then base64url without padding = 39 characters):
//! `version u8 | tenant_tag u32 | link_tag u48 | clicked_at unix-ms u48 | nonce u32 | mac 8`,
//! where `mac` is HMAC-SHA256 over the first 21 bytes under the tenant's secret, truncated to
//! 64 bits. A postback for a click whose row was never written still attributes (the ID says
//! which link and when), and a forged or altered ID fails the MAC.
//!
//! Times are kept to the millisecond and must lie between 1970 and the year 10889 (48 bits of
//! milliseconds); earlier or later times saturate. Link tags keep their low 48 bits.

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
pub struct ClickSecret {
    bytes: [u8; 32],
    // Keyed once: minting then hashes only the message, about half the work of re-keying
    // HMAC on every click.
    keyed: Hmac<Sha256>,
}

impl ClickSecret {
    pub fn generate() -> Self {
        Self::from_array(rand::rng().random())
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ClickIdError> {
        <[u8; 32]>::try_from(bytes).map(Self::from_array).map_err(|_| ClickIdError::BadSecret)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.bytes
    }

    fn from_array(bytes: [u8; 32]) -> Self {
        let keyed = <Hmac<Sha256> as Mac>::new_from_slice(&bytes)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        ClickSecret { bytes, keyed }
    }

    fn mac(&self, body: &[u8]) -> Hmac<Sha256> {
        let mut mac = self.keyed.clone();
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
            // This build cannot read another version's layout, so to it the ID is as good as
            // malformed; keeping one reason keeps the documented set of reasons small.
            ClickIdError::Malformed | ClickIdError::UnsupportedVersion(_) => "malformed_click_id",
            ClickIdError::Forged => "forged_click_id",
            ClickIdError::BadSecret => "bad_click_secret",
        }
    }
}

pub fn random_tenant_tag() -> u32 {
    rand::rng().random()
}

/// A random 48-bit link tag.
pub fn random_link_tag() -> u64 {
    rand::rng().random_range(0..=U48_MAX)
}

impl ClickId {
    /// Truncates `clicked_at` to what the ID can carry, so the minted value equals what
    /// [`UnverifiedClickId::verify`] later returns.
    pub fn mint(tenant_tag: u32, link_tag: u64, clicked_at: DateTime<Utc>) -> Self {
        ClickId {
            tenant_tag,
            link_tag: link_tag & U48_MAX,
            clicked_at: from_millis(to_millis(clicked_at)),
            nonce: rand::rng().random(),
        }
    }

    pub fn encode(&self, secret: &ClickSecret) -> String {
        let mut raw = [0u8; RAW_LEN];
        raw[0] = VERSION;
        raw[1..5].copy_from_slice(&self.tenant_tag.to_be_bytes());
        raw[5..11].copy_from_slice(&(self.link_tag & U48_MAX).to_be_bytes()[2..]);
        raw[11..17].copy_from_slice(&to_millis(self.clicked_at).to_be_bytes()[2..]);
        raw[17..21].copy_from_slice(&self.nonce.to_be_bytes());
        let tag = secret.mac(&raw[..BODY_LEN]).finalize().into_bytes();
        raw[BODY_LEN..].copy_from_slice(&tag[..MAC_LEN]);
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// Parses structure only, so the caller can look up the tenant's secret by tenant_tag.
    pub fn peek(raw: &str) -> Result<UnverifiedClickId, ClickIdError> {
        if raw.len() != ENCODED_LEN {
            return Err(ClickIdError::Malformed);
        }
        let mut bytes = [0u8; RAW_LEN];
        // The engine rejects non-zero spare bits in the last character, so each ID has exactly
        // one spelling and an edit there cannot decode to the same bytes.
        let written = URL_SAFE_NO_PAD.decode_slice(raw, &mut bytes).map_err(|_| ClickIdError::Malformed)?;
        if written != RAW_LEN {
            return Err(ClickIdError::Malformed);
        }
        if bytes[0] != VERSION {
            return Err(ClickIdError::UnsupportedVersion(bytes[0]));
        }
        Ok(UnverifiedClickId { bytes })
    }
}

/// A structurally valid click ID whose MAC has not been checked yet.
#[derive(Debug, Clone)]
pub struct UnverifiedClickId {
    bytes: [u8; RAW_LEN],
}

impl UnverifiedClickId {
    pub fn tenant_tag(&self) -> u32 {
        u32::from_be_bytes([self.bytes[1], self.bytes[2], self.bytes[3], self.bytes[4]])
    }

    pub fn verify(&self, secret: &ClickSecret) -> Result<ClickId, ClickIdError> {
        // Constant time: comparing byte by byte would let a forger find the MAC a byte at a time.
        secret
            .mac(&self.bytes[..BODY_LEN])
            .verify_truncated_left(&self.bytes[BODY_LEN..])
            .map_err(|_| ClickIdError::Forged)?;
        Ok(ClickId {
            tenant_tag: self.tenant_tag(),
            link_tag: self.u48(5),
            clicked_at: from_millis(self.u48(11)),
            nonce: u32::from_be_bytes([self.bytes[17], self.bytes[18], self.bytes[19], self.bytes[20]]),
        })
    }

    fn u48(&self, at: usize) -> u64 {
        let mut wide = [0u8; 8];
        wide[2..].copy_from_slice(&self.bytes[at..at + 6]);
        u64::from_be_bytes(wide)
    }
}

fn to_millis(at: DateTime<Utc>) -> u64 {
    u64::try_from(at.timestamp_millis()).unwrap_or(0).min(U48_MAX)
}

fn from_millis(millis: u64) -> DateTime<Utc> {
    // Any 48-bit count of milliseconds is a valid chrono time, so the fallback is never taken.
    i64::try_from(millis)
        .ok()
        .and_then(|ms| Utc.timestamp_millis_opt(ms).single())
        .unwrap_or(DateTime::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arbitrary_click() -> impl Strategy<Value = ClickId> {
        (any::<u32>(), 0..=U48_MAX, 0..=U48_MAX, any::<u32>()).prop_map(
            |(tenant_tag, link_tag, ms, nonce)| ClickId {
                tenant_tag,
                link_tag,
                clicked_at: from_millis(ms),
                nonce,
            },
        )
    }

    fn is_url_safe(s: &str) -> bool {
        s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    }

    #[test]
    fn a_minted_id_comes_back_as_minted() {
        let secret = ClickSecret::generate();
        let now = Utc::now();
        let click = ClickId::mint(7, 9, now);
        assert_eq!(click.clicked_at.timestamp_millis(), now.timestamp_millis());
        assert_eq!(ClickId::peek(&click.encode(&secret)).unwrap().verify(&secret), Ok(click));
    }

    #[test]
    fn out_of_range_fields_saturate_or_truncate() {
        let click = ClickId::mint(1, u64::MAX, DateTime::<Utc>::MIN_UTC);
        assert_eq!((click.link_tag, click.clicked_at), (U48_MAX, DateTime::UNIX_EPOCH));
        let far = ClickId::mint(1, 1, DateTime::<Utc>::MAX_UTC).clicked_at;
        assert_eq!(to_millis(far), U48_MAX);
    }

    #[test]
    fn random_tags_fit_their_widths() {
        assert!((0..1000).all(|_| random_link_tag() <= U48_MAX));
        let _: u32 = random_tenant_tag();
    }

    #[test]
    fn other_versions_are_refused_by_number() {
        let mut raw = [0u8; RAW_LEN];
        raw[0] = 2;
        let encoded = URL_SAFE_NO_PAD.encode(raw);
        let err = ClickId::peek(&encoded).unwrap_err();
        assert_eq!(err, ClickIdError::UnsupportedVersion(2));
        assert_eq!(err.reason(), "malformed_click_id");
    }

    #[test]
    fn reasons_are_snake_case() {
        assert_eq!(ClickIdError::Malformed.reason(), "malformed_click_id");
        assert_eq!(ClickIdError::Forged.reason(), "forged_click_id");
        assert_eq!(ClickIdError::BadSecret.reason(), "bad_click_secret");
    }

    #[test]
    fn secrets_are_32_bytes_and_stay_out_of_debug() {
        let secret = ClickSecret::from_bytes(&[7; 32]).unwrap();
        assert_eq!(secret.as_bytes(), &[7; 32]);
        assert_eq!(format!("{secret:?}"), "ClickSecret(..)");
        assert_eq!(ClickSecret::from_bytes(&[7; 31]).unwrap_err(), ClickIdError::BadSecret);
        assert_eq!(ClickSecret::from_bytes(&[7; 33]).unwrap_err(), ClickIdError::BadSecret);
        assert_ne!(ClickSecret::generate().as_bytes(), ClickSecret::generate().as_bytes());
    }

    proptest! {
        #[test]
        fn round_trips_within_forty_url_safe_characters(click in arbitrary_click()) {
            let secret = ClickSecret::generate();
            let encoded = click.encode(&secret);
            prop_assert!(encoded.len() <= MAX_LEN);
            prop_assert!(is_url_safe(&encoded));
            let peeked = ClickId::peek(&encoded).unwrap();
            prop_assert_eq!(peeked.tenant_tag(), click.tenant_tag);
            prop_assert_eq!(peeked.verify(&secret).unwrap(), click);
        }

        #[test]
        fn any_single_character_change_is_detected(
            click in arbitrary_click(),
            position in 0usize..ENCODED_LEN,
            replacement in prop_oneof![4 => "[A-Za-z0-9_-]", 1 => "\\PC"],
        ) {
            let secret = ClickSecret::generate();
            let encoded = click.encode(&secret);
            let mut altered: Vec<char> = encoded.chars().collect();
            let new_char = replacement.chars().next().unwrap();
            prop_assume!(altered[position] != new_char);
            altered[position] = new_char;
            let altered: String = altered.into_iter().collect();
            let outcome = ClickId::peek(&altered).and_then(|p| p.verify(&secret));
            prop_assert!(outcome.is_err(), "{} accepted as {:?}", altered, outcome);
        }

        #[test]
        fn another_tenants_secret_fails(click in arbitrary_click()) {
            let encoded = click.encode(&ClickSecret::generate());
            let other = ClickSecret::generate();
            prop_assert_eq!(ClickId::peek(&encoded).unwrap().verify(&other), Err(ClickIdError::Forged));
        }

        #[test]
        fn arbitrary_input_never_panics(raw in prop_oneof!["\\PC{0,60}", "[A-Za-z0-9_-]{39}", ".{0,60}"]) {
            if let Ok(peeked) = ClickId::peek(&raw) {
                let _ = peeked.tenant_tag();
                prop_assert_eq!(peeked.verify(&ClickSecret::generate()), Err(ClickIdError::Forged));
            }
        }
    }
}
