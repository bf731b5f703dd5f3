//! Secrets at rest: tenants' click-ID secrets, webhook signing secrets, API keys' postback
//! signing secrets and the generated JWT secret are stored sealed, so a copy of the database (a backup, a replica, a dump attached
//! to a ticket) does not hand out what signs click IDs, webhooks and sessions.
//!
//! Envelope encryption with AES-256-GCM: each value gets a fresh data key that encrypts it,
//! and the data key is stored wrapped (encrypted) by the instance's secret key. Rotating the
//! secret key therefore re-wraps 32-byte data keys and never touches the sealed values. The
//! row a value belongs to is bound in as associated data, so a sealed value copied into
//! another row does not open.
//!
//! Stored form: `sealed1.<key id>.<wrapped data key>.<sealed value>`, the last two as
//! unpadded base64url of nonce ‖ ciphertext ‖ tag. A stored value without the prefix was
//! written before sealing existed; it reads as itself until [`KeyRing::reseal`] seals it.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};

const PREFIX: &str = "sealed1";
const KEY_BYTES: usize = 32;
const NONCE_BYTES: usize = 12;

/// Why a stored secret cannot be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    #[error(
        "a stored secret was sealed with secret key {0}, which is neither --secret-key nor one of \
         --previous-secret-keys"
    )]
    UnknownKey(String),
    #[error("a stored secret does not open: it was altered, or belongs to another row")]
    Tampered,
}

/// One 256-bit secret key and its public identifier (the first 4 bytes of its SHA-256, in
/// hex): stored beside each value so the right key is picked without trying them all.
#[derive(Clone)]
struct SecretKey {
    id: String,
    cipher: Aes256Gcm,
}

impl SecretKey {
    fn new(bytes: &[u8; KEY_BYTES]) -> SecretKey {
        let digest = Sha256::digest(bytes);
        SecretKey { id: hex::encode(&digest[..4]), cipher: Aes256Gcm::new(bytes.into()) }
    }
}

/// The key that seals, and the earlier ones that still open what they sealed.
#[derive(Clone)]
pub struct KeyRing {
    current: SecretKey,
    previous: Vec<SecretKey>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let previous: Vec<&str> = self.previous.iter().map(|key| key.id.as_str()).collect();
        f.debug_struct("KeyRing").field("current", &self.current.id).field("previous", &previous).finish()
    }
}

impl KeyRing {
    pub fn new(current: &[u8; KEY_BYTES], previous: &[[u8; KEY_BYTES]]) -> KeyRing {
        KeyRing { current: SecretKey::new(current), previous: previous.iter().map(SecretKey::new).collect() }
    }

    /// A ring of one fresh random key: for a database that lives no longer than the process
    /// (tests). What it seals cannot be opened by any later process.
    pub fn ephemeral() -> KeyRing {
        KeyRing::new(&random_bytes::<KEY_BYTES>(), &[])
    }

    /// A fresh random key, written out as [`KeyRing::parse_key`] reads it.
    pub fn generate_key() -> String {
        let mut bytes = [0u8; KEY_BYTES];
        rand::rng().fill_bytes(&mut bytes);
        hex::encode(bytes)
    }

    /// A key as configured: 64 hex digits (`openssl rand -hex 32`).
    pub fn parse_key(text: &str) -> Result<[u8; KEY_BYTES], String> {
        let mut bytes = [0u8; KEY_BYTES];
        hex::decode_to_slice(text.trim(), &mut bytes)
            .map_err(|_| "must be 64 hex digits, e.g. from `openssl rand -hex 32`".to_owned())?;
        Ok(bytes)
    }

    /// The identifier of the key that seals, as stored beside each value.
    pub fn current_key_id(&self) -> &str {
        &self.current.id
    }

    /// Seals `secret` for the row named by `owner` (e.g. `tenants.click_secret:<id>`).
    pub fn seal(&self, owner: &str, secret: &str) -> String {
        let data_key = random_bytes::<KEY_BYTES>();
        let wrapped = encrypt(&self.current.cipher, &data_key, &wrap_context(owner));
        let cipher = Aes256Gcm::new(&data_key.into());
        let sealed = encrypt(&cipher, secret.as_bytes(), owner.as_bytes());
        format!(
            "{PREFIX}.{}.{}.{}",
            self.current.id,
            URL_SAFE_NO_PAD.encode(wrapped),
            URL_SAFE_NO_PAD.encode(sealed)
        )
    }

    /// The secret `stored` holds for the row named by `owner`.
    pub fn open(&self, owner: &str, stored: &str) -> Result<String, SealError> {
        let Some(parts) = Parts::parse(stored)? else {
            return Ok(stored.to_owned());
        };
        let data_key = self.unwrap_data_key(owner, &parts)?;
        let cipher = Aes256Gcm::new(&data_key.into());
        let plain = decrypt(&cipher, &parts.sealed, owner.as_bytes())?;
        String::from_utf8(plain).map_err(|_| SealError::Tampered)
    }

    /// `stored` as it should be stored now, when that differs: a value written before
    /// sealing is sealed, and one sealed under an earlier key gets its data key re-wrapped
    /// with the current key (the sealed value itself is left as it is).
    pub fn reseal(&self, owner: &str, stored: &str) -> Result<Option<String>, SealError> {
        let Some(parts) = Parts::parse(stored)? else {
            return Ok(Some(self.seal(owner, stored)));
        };
        if parts.key_id == self.current.id {
            return Ok(None);
        }
        let data_key = self.unwrap_data_key(owner, &parts)?;
        let wrapped = encrypt(&self.current.cipher, &data_key, &wrap_context(owner));
        Ok(Some(format!(
            "{PREFIX}.{}.{}.{}",
            self.current.id,
            URL_SAFE_NO_PAD.encode(wrapped),
            URL_SAFE_NO_PAD.encode(&parts.sealed)
        )))
    }

    fn unwrap_data_key(&self, owner: &str, parts: &Parts) -> Result<[u8; KEY_BYTES], SealError> {
        let key = std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|key| key.id == parts.key_id)
            .ok_or_else(|| SealError::UnknownKey(parts.key_id.clone()))?;
        let data_key = decrypt(&key.cipher, &parts.wrapped, &wrap_context(owner))?;
        data_key.try_into().map_err(|_| SealError::Tampered)
    }
}

/// A sealed value taken apart.
struct Parts {
    key_id: String,
    wrapped: Vec<u8>,
    sealed: Vec<u8>,
}

impl Parts {
    /// `None` for a value written before sealing existed.
    fn parse(stored: &str) -> Result<Option<Parts>, SealError> {
        let Some(rest) = stored.strip_prefix(PREFIX).and_then(|rest| rest.strip_prefix('.')) else {
            return Ok(None);
        };
        let mut fields = rest.split('.');
        let (Some(key_id), Some(wrapped), Some(sealed), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err(SealError::Tampered);
        };
        let decode = |field: &str| URL_SAFE_NO_PAD.decode(field).map_err(|_| SealError::Tampered);
        Ok(Some(Parts { key_id: key_id.to_owned(), wrapped: decode(wrapped)?, sealed: decode(sealed)? }))
    }
}

/// The wrapped data key is bound to its row too, and kept apart from the value's own context.
fn wrap_context(owner: &str) -> Vec<u8> {
    [b"data key of ".as_slice(), owner.as_bytes()].concat()
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    rand::rng().fill_bytes(&mut bytes);
    bytes
}

/// nonce ‖ ciphertext ‖ tag. Nonces are random: each data key seals one value, and the
/// secret key wraps few data keys, far below AES-GCM's limit for random nonces.
fn encrypt(cipher: &Aes256Gcm, plain: &[u8], aad: &[u8]) -> Vec<u8> {
    let nonce = random_bytes::<NONCE_BYTES>();
    let mut out = nonce.to_vec();
    // Encryption fails only for messages beyond AES-GCM's 64 GiB limit; ours are bytes long.
    match cipher.encrypt(&Nonce::from(nonce), Payload { msg: plain, aad }) {
        Ok(ciphertext) => out.extend(ciphertext),
        Err(_) => unreachable!("AES-GCM refuses only messages over 64 GiB"),
    }
    out
}

fn decrypt(cipher: &Aes256Gcm, sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>, SealError> {
    let (Some(nonce), Some(ciphertext)) = (sealed.get(..NONCE_BYTES), sealed.get(NONCE_BYTES..)) else {
        return Err(SealError::Tampered);
    };
    let nonce: [u8; NONCE_BYTES] = nonce.try_into().map_err(|_| SealError::Tampered)?;
    cipher.decrypt(&Nonce::from(nonce), Payload { msg: ciphertext, aad }).map_err(|_| SealError::Tampered)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> [u8; KEY_BYTES] {
        [byte; KEY_BYTES]
    }

    #[test]
    fn a_sealed_secret_opens_for_its_own_row_only() {
        let ring = KeyRing::new(&key(1), &[]);
        let stored = ring.seal("tenants.click_secret:a", "0123abcd");
        assert!(stored.starts_with("sealed1."));
        assert!(!stored.contains("0123abcd"));
        assert_eq!(ring.open("tenants.click_secret:a", &stored).unwrap(), "0123abcd");
        assert_eq!(ring.open("tenants.click_secret:b", &stored), Err(SealError::Tampered));
    }

    #[test]
    fn the_same_secret_seals_differently_each_time() {
        let ring = KeyRing::new(&key(1), &[]);
        assert_ne!(ring.seal("x", "same"), ring.seal("x", "same"));
    }

    #[test]
    fn an_altered_value_does_not_open() {
        let ring = KeyRing::new(&key(1), &[]);
        let stored = ring.seal("x", "secret");
        let mut bytes = stored.into_bytes();
        let last = bytes.len() - 2;
        bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
        let altered = String::from_utf8(bytes).unwrap();
        assert_eq!(ring.open("x", &altered), Err(SealError::Tampered));
        assert_eq!(ring.open("x", "sealed1.only-two.parts"), Err(SealError::Tampered));
    }

    #[test]
    fn a_value_from_before_sealing_reads_as_itself_and_reseals() {
        let ring = KeyRing::new(&key(1), &[]);
        assert_eq!(ring.open("x", "plain-old-secret").unwrap(), "plain-old-secret");
        let sealed = ring.reseal("x", "plain-old-secret").unwrap().unwrap();
        assert_eq!(ring.open("x", &sealed).unwrap(), "plain-old-secret");
        assert_eq!(ring.reseal("x", &sealed).unwrap(), None, "already sealed under the current key");
    }

    #[test]
    fn rotation_rewraps_under_the_new_key_and_the_old_key_can_then_go() {
        let old = KeyRing::new(&key(1), &[]);
        let stored = old.seal("x", "secret");
        let unknown = KeyRing::new(&key(2), &[]);
        assert_eq!(unknown.open("x", &stored), Err(SealError::UnknownKey(old.current_key_id().to_owned())));

        let rotating = KeyRing::new(&key(2), &[key(1)]);
        assert_eq!(rotating.open("x", &stored).unwrap(), "secret");
        let rewrapped = rotating.reseal("x", &stored).unwrap().unwrap();
        assert_eq!(
            rewrapped.rsplit('.').next(),
            stored.rsplit('.').next(),
            "only the data key is re-wrapped; the sealed value is unchanged"
        );
        assert_eq!(unknown.open("x", &rewrapped).unwrap(), "secret");
    }

    #[test]
    fn keys_are_64_hex_digits() {
        assert!(KeyRing::parse_key(&KeyRing::generate_key()).is_ok());
        assert!(KeyRing::parse_key("abcd").is_err());
        assert!(KeyRing::parse_key(&"zz".repeat(32)).is_err());
    }
}
