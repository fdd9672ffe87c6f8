//! Event ids: 128-bit, lowercase hex, unpredictable and unique per event.
//!
//! The VM draws a 256-bit seed from the host's random source once; each id is
//! then the first 16 bytes of SHA-256(seed || counter), which costs one hash
//! block per event and no host call.

use sha2::{Digest, Sha256};

pub struct IdGen {
    seed: [u8; 32],
    counter: u64,
}

impl IdGen {
    pub fn new(seed: [u8; 32]) -> Self {
        IdGen { seed, counter: 0 }
    }

    /// The next 32-hex-digit id.
    pub fn next_id(&mut self) -> String {
        let b = self.next_bytes();
        hex(b.get(..16).unwrap_or(&b))
    }

    /// 32 fresh pseudo-random bytes (ids, jitter, emitter epochs).
    pub fn next_bytes(&mut self) -> [u8; 32] {
        self.counter = self.counter.wrapping_add(1);
        let mut h = Sha256::new();
        h.update(self.seed);
        h.update(self.counter.to_le_bytes());
        h.finalize().into()
    }

    /// A pseudo-random number in `0..bound` (bound > 0), for backoff jitter.
    pub fn below(&mut self, bound: u64) -> u64 {
        let b = self.next_bytes();
        let mut n = [0u8; 8];
        n.copy_from_slice(&b[..8]);
        u64::from_le_bytes(n) % bound.max(1)
    }
}

/// Lowercase hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        for nibble in [b >> 4, b & 15] {
            s.push(char::from(DIGITS.get(usize::from(nibble)).copied().unwrap_or(b'0')));
        }
    }
    s
}

/// SHA-256 of bytes, lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// SHA-256 over a body that arrives in chunks.
#[derive(Clone, Default, Debug)]
pub struct StreamDigest {
    hasher: Sha256,
    bytes: u64,
}

impl StreamDigest {
    pub fn update(&mut self, chunk: &[u8]) {
        self.hasher.update(chunk);
        self.bytes += chunk.len() as u64;
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Lowercase hex digest of everything seen so far.
    pub fn hex(&self) -> String {
        hex(&self.hasher.clone().finalize())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_hex_unique_and_seed_dependent() {
        let mut a = IdGen::new([1; 32]);
        let mut b = IdGen::new([2; 32]);
        let (x, y) = (a.next_id(), a.next_id());
        assert_eq!(x.len(), 32);
        assert!(x.bytes().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_ne!(x, y);
        assert_ne!(x, b.next_id());
    }

    #[test]
    fn sha256_of_empty() {
        assert_eq!(sha256_hex(b""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    }
}
