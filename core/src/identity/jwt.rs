//! JSON Web Tokens (RFC 7519): decoding, HS256 verification, time checks.
//!
//! Only what the filter needs to attribute a request: it never logs or keeps
//! the token; callers record [`fingerprint`] or the `jti` claim instead.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// Tokens longer than this are refused without being decoded.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// Why a token gave no identity. `reason()` is what events record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwtError {
    Malformed,
    Oversize,
    UnsupportedAlg,
    BadSignature,
    Expired,
    NotYetValid,
}

impl JwtError {
    pub fn reason(self) -> &'static str {
        match self {
            JwtError::Malformed => "malformed_token",
            JwtError::Oversize => "oversize_token",
            JwtError::UnsupportedAlg => "unsupported_alg",
            JwtError::BadSignature => "bad_signature",
            JwtError::Expired => "expired_token",
            JwtError::NotYetValid => "token_not_yet_valid",
        }
    }
}

/// A structurally valid token, not yet verified.
#[derive(Debug, Clone)]
pub struct Decoded<'a> {
    pub alg: String,
    pub claims: Map<String, Value>,
    signing_input: &'a str,
    signature: Vec<u8>,
}

/// Splits and decodes a compact JWS. Rejects `alg: none` and anything that is
/// not three base64url segments with a JSON object header and payload.
pub fn decode(token: &str) -> Result<Decoded<'_>, JwtError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(JwtError::Oversize);
    }
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(JwtError::Malformed);
    };
    let header = decode_object(h)?;
    let claims = decode_object(p)?;
    let alg = match header.get("alg") {
        Some(Value::String(a)) => a.clone(),
        _ => return Err(JwtError::Malformed),
    };
    if alg.eq_ignore_ascii_case("none") || s.is_empty() {
        return Err(JwtError::UnsupportedAlg);
    }
    let signature = URL_SAFE_NO_PAD.decode(s).map_err(|_| JwtError::Malformed)?;
    let signing_input = token.get(..h.len() + 1 + p.len()).ok_or(JwtError::Malformed)?;
    Ok(Decoded { alg, claims, signing_input, signature })
}

fn decode_object(segment: &str) -> Result<Map<String, Value>, JwtError> {
    let bytes = URL_SAFE_NO_PAD.decode(segment).map_err(|_| JwtError::Malformed)?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(JwtError::Malformed),
    }
}

impl Decoded<'_> {
    /// Verifies an HS256 signature in constant time.
    pub fn verify_hs256(&self, key: &[u8]) -> Result<(), JwtError> {
        if self.alg != "HS256" {
            return Err(JwtError::UnsupportedAlg);
        }
        let mut mac = Hmac::<Sha256>::new_from_slice(key).map_err(|_| JwtError::BadSignature)?;
        mac.update(self.signing_input.as_bytes());
        mac.verify_slice(&self.signature).map_err(|_| JwtError::BadSignature)
    }
}

/// Checks `exp` and `nbf` against `now` (seconds) with `skew` seconds of slack.
/// A present but non-numeric `exp`/`nbf` is malformed.
pub fn check_time(claims: &Map<String, Value>, now: u64, skew: u64) -> Result<(), JwtError> {
    let num = |k: &str| -> Result<Option<f64>, JwtError> {
        match claims.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n.as_f64().map(Some).ok_or(JwtError::Malformed),
            Some(_) => Err(JwtError::Malformed),
        }
    };
    let now = now as f64;
    let skew = skew as f64;
    if let Some(exp) = num("exp")? {
        if now > exp + skew {
            return Err(JwtError::Expired);
        }
    }
    if let Some(nbf) = num("nbf")? {
        if now + skew < nbf {
            return Err(JwtError::NotYetValid);
        }
    }
    Ok(())
}

/// First 16 hex digits of SHA-256 over the token: a stable, non-reversible id.
pub fn fingerprint(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    crate::ids::hex(digest.get(..8).unwrap_or_default())
}

/// Extracts the token from an `Authorization`-style header value
/// (`Bearer <token>`, case-insensitive scheme) or a bare token header.
pub fn bearer(value: &str) -> Option<&str> {
    let v = value.trim_start();
    let token = match v.split_once(' ') {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
        Some(_) => return None,
        None => v.trim_end(),
    };
    (!token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn b64(v: &Value) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap_or_default())
    }

    fn sign(header: Value, claims: Value, key: &[u8]) -> String {
        let input = format!("{}.{}", b64(&header), b64(&claims));
        let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
        mac.update(input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
    }

    // Test vector from RFC 7515 appendix A.1 (HS256).
    const RFC7515_TOKEN: &str = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

    fn rfc7515_key() -> Vec<u8> {
        URL_SAFE_NO_PAD
            .decode("AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow")
            .unwrap_or_default()
    }

    #[test]
    fn verifies_rfc7515_vector() {
        let d = decode(RFC7515_TOKEN).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(d.alg, "HS256");
        assert_eq!(d.claims["iss"], "joe");
        assert_eq!(d.verify_hs256(&rfc7515_key()), Ok(()));
        assert_eq!(d.verify_hs256(b"other key"), Err(JwtError::BadSignature));
        assert_eq!(check_time(&d.claims, 1_300_819_380 + 61, 60), Err(JwtError::Expired));
        assert_eq!(check_time(&d.claims, 1_300_819_380 + 59, 60), Ok(()));
    }

    #[test]
    fn rejections_table() {
        let key = b"secret";
        let good = sign(json!({"alg": "HS256"}), json!({"sub": "alice"}), key);
        let none = format!("{}.{}.", b64(&json!({"alg": "none"})), b64(&json!({"sub": "x"})));
        let none_sig = format!("{}.{}.c2ln", b64(&json!({"alg": "None"})), b64(&json!({"sub": "x"})));
        let tampered = {
            let mut parts: Vec<&str> = good.split('.').collect();
            let evil = b64(&json!({"sub": "mallory"}));
            parts[1] = &evil;
            parts.join(".")
        };
        let cases: Vec<(String, Result<(), JwtError>)> = vec![
            (good.clone(), Ok(())),
            (none, Err(JwtError::UnsupportedAlg)),
            (none_sig, Err(JwtError::UnsupportedAlg)),
            ("a.b".into(), Err(JwtError::Malformed)),
            ("a.b.c.d".into(), Err(JwtError::Malformed)),
            ("!!!.e30.c2ln".into(), Err(JwtError::Malformed)),
            (format!("{}.bm90IGpzb24.c2ln", b64(&json!({"alg": "HS256"}))), Err(JwtError::Malformed)),
            (format!("{}.{}.c2ln", b64(&json!(["alg"])), b64(&json!({}))), Err(JwtError::Malformed)),
            ("x".repeat(MAX_TOKEN_BYTES + 1), Err(JwtError::Oversize)),
            (tampered, Err(JwtError::BadSignature)),
            (sign(json!({"alg": "HS512"}), json!({}), key), Err(JwtError::UnsupportedAlg)),
        ];
        for (token, want) in cases {
            let got = decode(&token).and_then(|d| d.verify_hs256(key));
            assert_eq!(got, want, "token {:.40}", token);
        }
    }

    #[test]
    fn time_checks() {
        let m = |v: Value| v.as_object().cloned().unwrap_or_default();
        assert_eq!(check_time(&m(json!({"nbf": 1000})), 900, 60), Err(JwtError::NotYetValid));
        assert_eq!(check_time(&m(json!({"nbf": 1000})), 950, 60), Ok(()));
        assert_eq!(check_time(&m(json!({"exp": "soon"})), 0, 0), Err(JwtError::Malformed));
        assert_eq!(check_time(&m(json!({})), 0, 0), Ok(()));
    }

    #[test]
    fn bearer_and_fingerprint() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer   abc "), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("abc"), Some("abc"));
        assert_eq!(bearer("Bearer "), None);
        let f = fingerprint("abc");
        assert_eq!(f, "ba7816bf8f01cfea");
    }
}
