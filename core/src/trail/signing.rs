//! Signed checkpoints: Ed25519 over what a trail record anchors.
//!
//! A signed record (a chain's `chain_start`, every `checkpoint`, the `end`
//! record) carries `trail.signature` `{"alg": "ed25519", "key_id": K,
//! "sig": S}`, where `S` is the standard base64 (padded) of the 64-byte
//! Ed25519 signature of these bytes ([`message`]):
//!
//! ```text
//! proxy-audit/checkpoint/v1\n
//! {"emitter":E,"head_hash":H,"head_seq":N,"key_id":K,"seq":S,"time":T}
//! ```
//!
//! the fixed context line, then the RFC 8785 canonical JSON of the record's
//! `chain.emitter` (E), `chain.seq` (S), `time` (T, as written), the key id,
//! and the head it anchors: for a `checkpoint`, `trail.head_seq` and
//! `trail.head_hash` (the hash of the event before it, its `chain.prev`);
//! for a `chain_start`, `head_seq` null and `head_hash` 64 zeros (nothing
//! before it). The record's own hash covers the signature, so whoever
//! rewrites the chain before a signed record must either keep the signed
//! head (a SHA-256 collision) or forge the signature.
//!
//! Key files (`proxy-audit keygen`): `KEY_ID.key` holds the standard base64
//! of the 32-byte Ed25519 secret key (the seed), the value of the VM's
//! environment variable `audit.signing.key_env`; `KEY_ID.pub` holds
//! `{"alg":"ed25519","key_id":K,"public_key":B64}`.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use serde_json::{json, Value};

pub const ALG: &str = "ed25519";

/// The first line of every signed message (domain separation).
pub const CONTEXT: &[u8] = b"proxy-audit/checkpoint/v1\n";

/// The bytes a record's signature covers (see the module doc).
pub fn message(key_id: &str, emitter: &str, seq: u64, time: &str, head: Option<(u64, &str)>) -> Vec<u8> {
    let (head_seq, head_hash) = match head {
        Some((s, h)) => (Value::from(s), h),
        None => (Value::Null, crate::chain::ZERO_HASH),
    };
    let fields = json!({"emitter": emitter, "head_hash": head_hash, "head_seq": head_seq,
                        "key_id": key_id, "seq": seq, "time": time});
    let mut out = CONTEXT.to_vec();
    out.extend_from_slice(crate::jcs::canonicalize(&fields).as_bytes());
    out
}

/// Signs trail records with one key.
#[derive(Clone)]
pub struct Signer {
    key_id: String,
    key: SigningKey,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("Signer").field("key_id", &self.key_id).finish_non_exhaustive()
    }
}

impl Signer {
    /// From the content of a `.key` file (base64 of the 32-byte seed).
    pub fn from_key_text(key_id: &str, text: &str) -> Result<Signer, String> {
        let seed = decode_32(text.trim())
            .ok_or("expected the base64 of a 32-byte Ed25519 key (a proxy-audit keygen .key file)")?;
        Ok(Signer { key_id: key_id.to_string(), key: SigningKey::from_bytes(&seed) })
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// `trail.signature` for a record at `seq` of `emitter` written at `time`
    /// that anchors `head` (`None`: a `chain_start`).
    pub fn sign(&self, emitter: &str, seq: u64, time: &str, head: Option<(u64, &str)>) -> Value {
        let sig = self.key.sign(&message(&self.key_id, emitter, seq, time, head));
        json!({"alg": ALG, "key_id": self.key_id, "sig": STANDARD.encode(sig.to_bytes())})
    }

    /// The public half, as a `.pub` file holds it.
    pub fn public_key_file(&self) -> String {
        public_key_file(&self.key_id, &self.key.verifying_key().to_bytes())
    }
}

/// A key pair from 32 random bytes: (`.key` content, `.pub` content).
pub fn key_files(key_id: &str, seed: [u8; 32]) -> (String, String) {
    let key = SigningKey::from_bytes(&seed);
    (format!("{}\n", STANDARD.encode(seed)), public_key_file(key_id, &key.verifying_key().to_bytes()))
}

fn public_key_file(key_id: &str, public: &[u8; 32]) -> String {
    format!("{}\n", json!({"alg": ALG, "key_id": key_id, "public_key": STANDARD.encode(public)}))
}

/// A public key read from a `.pub` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    pub key_id: String,
    key: VerifyingKey,
}

impl PublicKey {
    pub fn parse(text: &str) -> Result<PublicKey, String> {
        let v: Value = serde_json::from_str(text.trim()).map_err(|e| format!("not a proxy-audit .pub file ({e})"))?;
        if v.get("alg").and_then(Value::as_str) != Some(ALG) {
            return Err(format!("alg must be \"{ALG}\""));
        }
        let key_id = v.get("key_id").and_then(Value::as_str).filter(|k| !k.is_empty()).ok_or("no key_id")?;
        let raw = v
            .get("public_key")
            .and_then(Value::as_str)
            .and_then(decode_32)
            .ok_or("public_key must be the base64 of 32 bytes")?;
        let key = VerifyingKey::from_bytes(&raw).map_err(|_| "public_key is not an Ed25519 point")?;
        Ok(PublicKey { key_id: key_id.to_string(), key })
    }

    /// Whether `sig` (base64) is this key's signature of `msg` (strict:
    /// no malleable or small-order forms).
    pub fn verifies(&self, msg: &[u8], sig: &str) -> bool {
        let Ok(bytes) = STANDARD.decode(sig) else { return false };
        let Ok(sig) = Signature::from_slice(&bytes) else { return false };
        self.key.verify_strict(msg, &sig).is_ok()
    }
}

fn decode_32(text: &str) -> Option<[u8; 32]> {
    STANDARD.decode(text).ok()?.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_and_verify_round_trip() {
        let (key, public) = key_files("k1", [7; 32]);
        let signer = Signer::from_key_text("k1", &key).unwrap();
        assert_eq!(signer.public_key_file(), public);
        let head = "ab".repeat(32);
        let sig = signer.sign("node/p/1", 1000, "2026-12-01T00:00:00.000Z", Some((999, &head)));
        assert_eq!((sig["alg"].as_str(), sig["key_id"].as_str()), (Some("ed25519"), Some("k1")));
        let pk = PublicKey::parse(&public).unwrap();
        let s = sig["sig"].as_str().unwrap();
        let msg = message("k1", "node/p/1", 1000, "2026-12-01T00:00:00.000Z", Some((999, &head)));
        assert!(pk.verifies(&msg, s));
        // Any field changed: the signature no longer holds.
        assert!(!pk.verifies(&message("k1", "node/p/1", 1001, "2026-12-01T00:00:00.000Z", Some((999, &head))), s));
        assert!(!pk.verifies(&message("k2", "node/p/1", 1000, "2026-12-01T00:00:00.000Z", Some((999, &head))), s));
        assert!(!pk.verifies(&msg, "AAAA"));
        let other = PublicKey::parse(&key_files("k1", [8; 32]).1).unwrap();
        assert!(!other.verifies(&msg, s));
    }

    #[test]
    fn the_signed_bytes_are_exactly_as_documented() {
        let m = message("k1", "e", 0, "2026-12-01T00:00:00.000Z", None);
        let want = format!(
            "proxy-audit/checkpoint/v1\n{{\"emitter\":\"e\",\"head_hash\":\"{}\",\"head_seq\":null,\"key_id\":\"k1\",\"seq\":0,\"time\":\"2026-12-01T00:00:00.000Z\"}}",
            "0".repeat(64)
        );
        assert_eq!(String::from_utf8(m).unwrap(), want);
    }

    #[test]
    fn bad_key_text_is_refused() {
        assert!(Signer::from_key_text("k", "not base64!").is_err());
        assert!(Signer::from_key_text("k", &STANDARD.encode([1u8; 31])).is_err());
        assert!(PublicKey::parse("{}").is_err());
        assert!(PublicKey::parse(r#"{"alg":"ed25519","key_id":"k","public_key":"AAAA"}"#).is_err());
    }
}
