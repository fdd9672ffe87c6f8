//! Decoding serialized `google.protobuf.Struct` (and Envoy `Metadata`) into JSON.
//!
//! Envoy returns dynamic metadata (such as the JWT payload `jwt_authn`
//! verified) to a wasm filter as the protobuf wire bytes of a `Struct`. This
//! is the small subset of the protobuf wire format needed to read it back,
//! bounded in depth and never panicking on hostile bytes.
//!
//! ```text
//! Struct    { map<string, Value> fields = 1; }          // entries: {key = 1, value = 2}
//! Value     { null_value = 1; number_value = 2 (double); string_value = 3;
//!             bool_value = 4; struct_value = 5; list_value = 6; }
//! ListValue { repeated Value values = 1; }
//! ```

use serde_json::{Map, Number, Value};

const MAX_DEPTH: usize = 32;

/// From the bytes of an `envoy.config.core.v3.Metadata` (what the `metadata`
/// property returns: `map<string, Struct> filter_metadata = 1`), the
/// `Struct` stored under `namespace`.
pub fn filter_metadata(bytes: &[u8], namespace: &str) -> Option<Map<String, Value>> {
    let mut r = Reader { b: bytes, pos: 0 };
    while !r.done() {
        let (field, wire) = r.tag()?;
        if (field, wire) != (1, 2) {
            r.skip(wire)?;
            continue;
        }
        let mut entry = Reader { b: r.bytes()?, pos: 0 };
        let (mut key, mut value) = (&[][..], None);
        while !entry.done() {
            match entry.tag()? {
                (1, 2) => key = entry.bytes()?,
                (2, 2) => value = Some(entry.bytes()?),
                (_, w) => entry.skip(w)?,
            }
        }
        if key == namespace.as_bytes() {
            return decode_struct(value.unwrap_or_default());
        }
    }
    None
}

/// Decodes `Struct` bytes; `None` when they are not a well-formed `Struct`.
pub fn decode_struct(bytes: &[u8]) -> Option<Map<String, Value>> {
    decode_struct_at(bytes, 0)
}

fn decode_struct_at(bytes: &[u8], depth: usize) -> Option<Map<String, Value>> {
    if depth > MAX_DEPTH {
        return None;
    }
    let mut map = Map::new();
    let mut r = Reader { b: bytes, pos: 0 };
    while !r.done() {
        let (field, wire) = r.tag()?;
        if field == 1 && wire == 2 {
            let entry = r.bytes()?;
            let (k, v) = decode_entry(entry, depth)?;
            map.insert(k, v);
        } else {
            r.skip(wire)?;
        }
    }
    Some(map)
}

fn decode_entry(bytes: &[u8], depth: usize) -> Option<(String, Value)> {
    let mut r = Reader { b: bytes, pos: 0 };
    let (mut key, mut value) = (String::new(), Value::Null);
    while !r.done() {
        match r.tag()? {
            (1, 2) => key = String::from_utf8(r.bytes()?.to_vec()).ok()?,
            (2, 2) => value = decode_value(r.bytes()?, depth + 1)?,
            (_, wire) => r.skip(wire)?,
        }
    }
    Some((key, value))
}

fn decode_value(bytes: &[u8], depth: usize) -> Option<Value> {
    if depth > MAX_DEPTH {
        return None;
    }
    let mut r = Reader { b: bytes, pos: 0 };
    let mut out = Value::Null;
    while !r.done() {
        out = match r.tag()? {
            (1, 0) => {
                r.varint()?;
                Value::Null
            }
            (2, 1) => {
                let f = f64::from_bits(r.fixed64()?);
                if f.fract() == 0.0 && f.abs() < 9.007_199_254_740_992e15 {
                    Value::Number(Number::from(f as i64))
                } else {
                    Number::from_f64(f).map_or(Value::Null, Value::Number)
                }
            }
            (3, 2) => Value::String(String::from_utf8_lossy(r.bytes()?).into_owned()),
            (4, 0) => Value::Bool(r.varint()? != 0),
            (5, 2) => Value::Object(decode_struct_at(r.bytes()?, depth + 1)?),
            (6, 2) => {
                let list = r.bytes()?;
                let mut lr = Reader { b: list, pos: 0 };
                let mut items = Vec::new();
                while !lr.done() {
                    match lr.tag()? {
                        (1, 2) => items.push(decode_value(lr.bytes()?, depth + 1)?),
                        (_, wire) => lr.skip(wire)?,
                    }
                }
                Value::Array(items)
            }
            (_, wire) => {
                r.skip(wire)?;
                continue;
            }
        };
    }
    Some(out)
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn done(&self) -> bool {
        self.pos >= self.b.len()
    }

    fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self.b.get(self.pos)?;
            self.pos += 1;
            v |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }

    fn tag(&mut self) -> Option<(u64, u8)> {
        let t = self.varint()?;
        Some((t >> 3, (t & 7) as u8))
    }

    fn fixed64(&mut self) -> Option<u64> {
        let s = self.b.get(self.pos..self.pos.checked_add(8)?)?;
        self.pos += 8;
        Some(u64::from_le_bytes(s.try_into().ok()?))
    }

    fn bytes(&mut self) -> Option<&'a [u8]> {
        let len = usize::try_from(self.varint()?).ok()?;
        let s = self.b.get(self.pos..self.pos.checked_add(len)?)?;
        self.pos += len;
        Some(s)
    }

    fn skip(&mut self, wire: u8) -> Option<()> {
        match wire {
            0 => self.varint().map(|_| ()),
            1 => self.fixed64().map(|_| ()),
            2 => self.bytes().map(|_| ()),
            5 => {
                self.b.get(self.pos..self.pos.checked_add(4)?)?;
                self.pos += 4;
                Some(())
            }
            _ => None,
        }
    }
}

/// The encoder side, for tests and fuzz seeds (Envoy does the encoding in
/// production).
#[doc(hidden)]
pub mod encode {
    use serde_json::{Map, Value};

    fn varint(mut v: u64, out: &mut Vec<u8>) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(b);
                return;
            }
            out.push(b | 0x80);
        }
    }

    /// A length-delimited field.
    fn ld(field: u64, payload: &[u8], out: &mut Vec<u8>) {
        varint(field << 3 | 2, out);
        varint(payload.len() as u64, out);
        out.extend_from_slice(payload);
    }

    /// `google.protobuf.Value`.
    pub fn encode_value(v: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        match v {
            Value::Null => out.extend_from_slice(&[8, 0]),
            Value::Number(n) => {
                out.push(2 << 3 | 1);
                out.extend_from_slice(&n.as_f64().unwrap_or(0.0).to_le_bytes());
            }
            Value::String(s) => ld(3, s.as_bytes(), &mut out),
            Value::Bool(b) => out.extend_from_slice(&[4 << 3, u8::from(*b)]),
            Value::Object(m) => ld(5, &encode_struct(m), &mut out),
            Value::Array(items) => {
                let mut list = Vec::new();
                for i in items {
                    ld(1, &encode_value(i), &mut list);
                }
                ld(6, &list, &mut out);
            }
        }
        out
    }

    /// `google.protobuf.Struct`.
    pub fn encode_struct(m: &Map<String, Value>) -> Vec<u8> {
        let mut out = Vec::new();
        for (k, v) in m {
            let mut entry = Vec::new();
            ld(1, k.as_bytes(), &mut entry);
            ld(2, &encode_value(v), &mut entry);
            ld(1, &entry, &mut out);
        }
        out
    }

    /// `envoy.config.core.v3.Metadata` with these `filter_metadata` namespaces
    /// (values that are not objects encode as empty structs).
    pub fn encode_metadata(namespaces: &[(&str, Value)]) -> Vec<u8> {
        let mut md = Vec::new();
        for (ns, v) in namespaces {
            let mut entry = Vec::new();
            ld(1, ns.as_bytes(), &mut entry);
            ld(2, &encode_struct(v.as_object().unwrap_or(&Map::new())), &mut entry);
            ld(1, &entry, &mut md);
        }
        md
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trips_a_jwt_payload() {
        let claims = json!({"sub": "alice", "exp": 1800000000, "roles": ["a", "b"], "act": {"sub": "bob"}, "ok": true, "n": null, "f": 1.5});
        let m = claims.as_object().cloned().unwrap_or_default();
        assert_eq!(decode_struct(&encode::encode_struct(&m)).map(Value::Object), Some(claims));
    }

    #[test]
    fn finds_a_namespace_in_metadata() {
        let payload = json!({"payload": {"sub": "dana"}});
        let md =
            encode::encode_metadata(&[("other", json!({"x": 1})), ("envoy.filters.http.jwt_authn", payload.clone())]);
        assert_eq!(filter_metadata(&md, "envoy.filters.http.jwt_authn").map(Value::Object), Some(payload));
        assert_eq!(filter_metadata(&md, "missing"), None);
    }

    #[test]
    fn hostile_bytes_do_not_panic() {
        for b in [&[0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f][..], &[0x0a], &[0x0b], &[0xff; 11], &[0x0a, 0x02, 0x12, 0x05]] {
            let _ = decode_struct(b);
        }
        let mut deep = Value::String("x".into());
        for _ in 0..100 {
            deep = json!({"k": deep});
        }
        let m = deep.as_object().cloned().unwrap_or_default();
        assert_eq!(decode_struct(&encode::encode_struct(&m)), None, "depth bound");
    }
}
