//! Password hashing with Argon2id (the `argon2` crate's defaults, which follow OWASP's
//! recommendation). Hashes are PHC strings, so parameters can be raised later without
//! invalidating stored hashes.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

use crate::Error;

pub const MIN_LENGTH: usize = 8;
pub const MAX_LENGTH: usize = 256;

/// A password that met the policy. Only constructed by [`Password::parse`].
pub struct Password(String);

impl Password {
    pub fn parse(raw: &str) -> Result<Self, Error> {
        let chars = raw.chars().count();
        if chars < MIN_LENGTH {
            return Err(Error::invalid("password", format!("must be at least {MIN_LENGTH} characters")));
        }
        if chars > MAX_LENGTH {
            return Err(Error::invalid("password", format!("must be at most {MAX_LENGTH} characters")));
        }
        Ok(Password(raw.to_owned()))
    }

    pub fn hash(&self) -> String {
        let salt_bytes: [u8; 16] = rand::random();
        let salt = SaltString::encode_b64(&salt_bytes)
            .unwrap_or_else(|err| unreachable!("16 bytes is a valid salt length: {err}"));
        Argon2::default()
            .hash_password(self.0.as_bytes(), &salt)
            .map(|hash| hash.to_string())
            // Hashing only fails for out-of-range parameters, and the defaults are in range.
            .unwrap_or_else(|err| unreachable!("argon2 with default parameters failed: {err}"))
    }
}

/// Checks `candidate` against a stored PHC hash. A malformed stored hash never matches.
pub fn verify(candidate: &str, stored_hash: &str) -> bool {
    match PasswordHash::new(stored_hash) {
        Ok(parsed) => Argon2::default().verify_password(candidate.as_bytes(), &parsed).is_ok(),
        Err(_) => false,
    }
}

/// A hash to verify against when the account does not exist, so that a login for an unknown
/// e-mail costs as much as one for a known e-mail (no user enumeration by timing).
pub fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| Password("decoy-password-never-matches".into()).hash())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_verifies_only_the_same_password() {
        let hash = Password::parse("correct horse").unwrap().hash();
        assert!(verify("correct horse", &hash));
        assert!(!verify("correct horsf", &hash));
        assert!(!verify("correct horse", "not a phc string"));
    }

    #[test]
    fn policy_names_the_field() {
        let err = Password::parse("short").err().unwrap();
        assert_eq!(err.field(), "password");
    }
}
