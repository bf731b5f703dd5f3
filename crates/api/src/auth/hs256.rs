//! The one JWT algorithm this server signs and accepts, HS256, as jsonwebtoken's crypto
//! provider. jsonwebtoken's bundled RustCrypto provider would also build RSA, ECDSA and EdDSA
//! (a score of crates in a newcomer's first, cold build) that session tokens never use; this
//! provider is the same RustCrypto `hmac` and `sha2` code for HS256 alone, and refuses every
//! other algorithm.

use hmac::{Hmac, Mac};
use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::{ErrorKind, Result, new_error};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, EncodingKey, signature};
use sha2::Sha256;

static HS256_ONLY: CryptoProvider = CryptoProvider {
    signer_factory: signer,
    verifier_factory: verifier,
    key_utils: KeyUtils::new_unimplemented(),
};

/// Makes HS256 the process's JWT provider; later calls (and a provider installed earlier,
/// as in tests that sign tokens themselves) leave it as it is.
pub fn install() {
    let _ = HS256_ONLY.install_default();
}

struct Hs256(Hmac<Sha256>);

impl Hs256 {
    fn new(algorithm: &Algorithm, family: AlgorithmFamily, secret: &[u8]) -> Result<Hs256> {
        if *algorithm != Algorithm::HS256 || family != AlgorithmFamily::Hmac {
            return Err(new_error(ErrorKind::InvalidAlgorithm));
        }
        Hmac::new_from_slice(secret).map(Hs256).map_err(|_| new_error(ErrorKind::InvalidKeyFormat))
    }
}

fn signer(algorithm: &Algorithm, key: &EncodingKey) -> Result<Box<dyn JwtSigner>> {
    Ok(Box::new(Hs256::new(algorithm, key.family(), key.as_bytes())?))
}

fn verifier(algorithm: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>> {
    Ok(Box::new(Hs256::new(algorithm, key.family(), key.try_get_as_bytes()?)?))
}

impl signature::Signer<Vec<u8>> for Hs256 {
    fn try_sign(&self, message: &[u8]) -> std::result::Result<Vec<u8>, signature::Error> {
        let mut mac = self.0.clone();
        mac.update(message);
        Ok(mac.finalize().into_bytes().to_vec())
    }
}

impl signature::Verifier<Vec<u8>> for Hs256 {
    fn verify(&self, message: &[u8], tag: &Vec<u8>) -> std::result::Result<(), signature::Error> {
        let mut mac = self.0.clone();
        mac.update(message);
        // verify_slice compares in constant time.
        mac.verify_slice(tag).map_err(signature::Error::from_source)
    }
}

impl JwtSigner for Hs256 {
    fn algorithm(&self) -> Algorithm {
        Algorithm::HS256
    }
}

impl JwtVerifier for Hs256 {
    fn algorithm(&self) -> Algorithm {
        Algorithm::HS256
    }
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{Header, Validation, decode, encode};
    use serde_json::{Value, json};

    use super::*;

    /// RFC 7515's appendix A.1 example: an HS256 JWS and its key, checked byte for byte.
    #[test]
    fn signs_and_verifies_the_rfc_7515_example() {
        install();
        let key = [
            3, 35, 53, 75, 43, 15, 165, 188, 131, 126, 6, 101, 119, 123, 166, 143, 90, 179, 40, 230, 240, 84,
            201, 40, 169, 15, 132, 178, 210, 80, 46, 191, 211, 251, 90, 146, 210, 6, 71, 239, 150, 138, 180,
            195, 119, 98, 61, 34, 61, 46, 33, 114, 5, 46, 79, 8, 192, 205, 154, 245, 103, 208, 128, 163,
        ];
        let message = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ";
        let expected = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let signed =
            jsonwebtoken::crypto::sign(message.as_bytes(), &EncodingKey::from_secret(&key), Algorithm::HS256)
                .unwrap();
        assert_eq!(signed, expected);
        let verified = jsonwebtoken::crypto::verify(
            expected,
            message.as_bytes(),
            &DecodingKey::from_secret(&key),
            Algorithm::HS256,
        );
        assert!(verified.unwrap());
    }

    #[test]
    fn a_token_round_trips_and_a_wrong_key_or_algorithm_is_refused() {
        install();
        let claims = json!({ "sub": "u", "exp": 4_000_000_000_i64 });
        let token =
            encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(b"k1")).unwrap();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.required_spec_claims.clear();
        let read = decode::<Value>(&token, &DecodingKey::from_secret(b"k1"), &validation).unwrap();
        assert_eq!(read.claims["sub"], "u");
        assert!(decode::<Value>(&token, &DecodingKey::from_secret(b"k2"), &validation).is_err());
        assert!(encode(&Header::new(Algorithm::HS512), &claims, &EncodingKey::from_secret(b"k1")).is_err());
    }
}
