//! Who is calling: the event's `actor`, and whether the route lets them in.
//!
//! Sources, in order: the payload Envoy's `jwt_authn` verified; a bearer token
//! the filter verifies itself (HS256); an unverified token only when
//! `allow_unverified`; the mTLS peer's SPIFFE URI SAN. A token that fails
//! yields no identity and a machine-readable reason. Tokens are never kept:
//! `token_id` is the `jti` claim or a 16-hex SHA-256 fingerprint.

pub mod jwt;
pub mod pbstruct;

use crate::config::{ClaimsConfig, IdentityConfig, Require};
use serde_json::{json, Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActorType {
    User,
    Service,
    Anonymous,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    JwtAuthn,
    JwtHs256,
    JwtUnverified,
    Mtls,
    None,
}

impl ActorType {
    pub fn as_str(self) -> &'static str {
        match self {
            ActorType::User => "user",
            ActorType::Service => "service",
            ActorType::Anonymous => "anonymous",
        }
    }
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::JwtAuthn => "jwt_authn",
            Source::JwtHs256 => "jwt_hs256",
            Source::JwtUnverified => "jwt_unverified",
            Source::Mtls => "mtls",
            Source::None => "none",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub id: Option<String>,
    pub kind: ActorType,
    pub roles: Vec<String>,
    pub tenant: Option<String>,
    pub issuer: Option<String>,
    pub client_id: Option<String>,
    pub on_behalf_of: Option<String>,
    pub verified: bool,
    pub source: Source,
    pub token_id: Option<String>,
}

impl Actor {
    pub fn anonymous() -> Actor {
        Actor {
            id: None,
            kind: ActorType::Anonymous,
            roles: Vec::new(),
            tenant: None,
            issuer: None,
            client_id: None,
            on_behalf_of: None,
            verified: false,
            source: Source::None,
            token_id: None,
        }
    }

    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "type": self.kind.as_str(),
            "roles": self.roles,
            "tenant": self.tenant,
            "issuer": self.issuer,
            "client_id": self.client_id,
            "on_behalf_of": self.on_behalf_of,
            "verified": self.verified,
            "source": self.source.as_str(),
            "token_id": self.token_id,
        })
    }
}

/// What the proxy knows about the caller, gathered by the host glue.
#[derive(Debug, Default, Clone)]
pub struct Evidence<'a> {
    /// Claims `jwt_authn` verified (its dynamic metadata), if any.
    pub jwt_authn_claims: Option<Map<String, Value>>,
    /// The raw value of `identity.jwt.header`.
    pub token_header: Option<&'a str>,
    /// The HS256 key read from `hs256_secret_env`.
    pub hs256_key: Option<&'a [u8]>,
    /// The mTLS peer certificate's URI SAN.
    pub peer_uri_san: Option<&'a str>,
    /// The value of `identity.on_behalf_of_header`.
    pub on_behalf_of_header: Option<&'a str>,
    /// Now, seconds since the epoch.
    pub now_s: u64,
}

/// The actor, and why there is none when identity failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    pub actor: Actor,
    /// `missing_token`, `malformed_token`, `bad_signature`, `expired_token`...
    pub reason: Option<&'static str>,
}

pub fn resolve(cfg: &IdentityConfig, ev: &Evidence) -> Resolution {
    resolve_cached(cfg, ev, None)
}

/// HS256 tokens the filter verified itself, by token: a caller's next
/// requests with the same token skip the decode, the HMAC and the claim
/// walk. Bounded; an entry holds only while the token's `exp`/`nbf` (with
/// the configured skew) say it is valid, so expiry is never missed. Built
/// per configuration (the key and the claim rules are part of it).
#[derive(Debug, Default)]
pub struct TokenCache {
    entries: std::collections::HashMap<String, Cached>,
    /// What `jwt_authn` metadata resolved to, by the metadata's bytes (see
    /// [`resolve_metadata_cached`]).
    metadata: std::collections::HashMap<Vec<u8>, CachedMetadata>,
}

#[derive(Debug)]
struct CachedMetadata {
    /// The bearer token of the request the entry was made for (the
    /// resolution's `token_id` may be its fingerprint).
    token: Option<String>,
    /// `None`: the metadata holds no `jwt_authn` claims.
    resolution: Option<Resolution>,
    /// The claims' `exp` (seconds, skew applied); `u64::MAX` without one.
    until_s: u64,
}

/// Metadata larger than this is decoded per request, not remembered.
pub const METADATA_CACHE_BYTES: usize = 8 * 1024;

#[derive(Debug)]
struct Cached {
    /// The resolution without `identity.on_behalf_of_header` (added per request).
    resolution: Resolution,
    /// Valid from..=until (seconds, skew applied).
    from_s: u64,
    until_s: u64,
}

/// Entries kept before the cache starts over.
pub const TOKEN_CACHE_ENTRIES: usize = 512;

impl TokenCache {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// [`resolve_cached`] from the host's `metadata` property (protobuf
/// `envoy.config.core.v3.Metadata`): the claims Envoy's `jwt_authn` left
/// under `identity.jwt.jwt_authn_payload_key` win; decoding them and walking
/// the claims is done once per distinct metadata and token (the metadata's
/// bytes are the key, compared whole), bounded like the token cache, and an
/// entry is not used past the claims' `exp`. The on-behalf-of header is
/// taken per request. `ev.jwt_authn_claims` is ignored.
pub fn resolve_metadata_cached(
    cfg: &IdentityConfig,
    metadata: Option<&[u8]>,
    ev: &Evidence,
    cache: &mut TokenCache,
) -> Resolution {
    let Some(bytes) = metadata.filter(|b| !b.is_empty()) else {
        let ev = Evidence { jwt_authn_claims: None, ..ev.clone() };
        return resolve_cached(cfg, &ev, Some(cache));
    };
    let token = ev.token_header.and_then(jwt::bearer);
    let hit = cache
        .metadata
        .get(bytes)
        .filter(|c| c.token.as_deref() == token && ev.now_s <= c.until_s)
        .map(|c| c.resolution.clone());
    let resolution = match hit {
        Some(r) => r,
        None => {
            let claims = jwt_authn_claims(cfg, bytes);
            let until_s = claims.as_ref().map_or(u64::MAX, |c| claims_until(cfg, c));
            let resolution = claims.map(|claims| {
                let without_header =
                    Evidence { jwt_authn_claims: Some(claims), on_behalf_of_header: None, ..ev.clone() };
                resolve_cached(cfg, &without_header, None)
            });
            if bytes.len() <= METADATA_CACHE_BYTES {
                if cache.metadata.len() >= TOKEN_CACHE_ENTRIES {
                    cache.metadata.clear();
                }
                let entry =
                    CachedMetadata { token: token.map(str::to_string), resolution: resolution.clone(), until_s };
                cache.metadata.insert(bytes.to_vec(), entry);
            }
            resolution
        }
    };
    match resolution {
        Some(mut r) => {
            if r.actor.verified && r.actor.on_behalf_of.is_none() {
                r.actor.on_behalf_of = ev.on_behalf_of_header.filter(|v| !v.is_empty()).map(str::to_string);
            }
            r
        }
        None => {
            let ev = Evidence { jwt_authn_claims: None, ..ev.clone() };
            resolve_cached(cfg, &ev, Some(cache))
        }
    }
}

/// The claims `jwt_authn` verified, from the `metadata` property's bytes.
pub fn jwt_authn_claims(cfg: &IdentityConfig, metadata: &[u8]) -> Option<Map<String, Value>> {
    let ns = pbstruct::filter_metadata(metadata, "envoy.filters.http.jwt_authn")?;
    match ns.get(&cfg.jwt.jwt_authn_payload_key) {
        Some(Value::Object(claims)) if !claims.is_empty() => Some(claims.clone()),
        _ => None,
    }
}

/// Until when (seconds, skew applied) claims hold by their `exp`.
fn claims_until(cfg: &IdentityConfig, claims: &Map<String, Value>) -> u64 {
    match claims.get("exp").and_then(Value::as_f64) {
        Some(exp) if (0.0..1e15).contains(&exp) => (exp.floor() as u64).saturating_add(cfg.jwt.clock_skew_seconds),
        Some(_) => 0,
        None => u64::MAX,
    }
}

/// [`resolve`], remembering HS256 verifications in `cache`.
pub fn resolve_cached(cfg: &IdentityConfig, ev: &Evidence, cache: Option<&mut TokenCache>) -> Resolution {
    let token = ev.token_header.and_then(jwt::bearer);
    if let Some(claims) = &ev.jwt_authn_claims {
        let token_id = claims_token_id(claims, token);
        return attributed(cfg, ev, claims, Source::JwtAuthn, true, token_id);
    }
    if let Some(token) = token {
        let Some(cache) = cache else { return from_token(cfg, ev, token) };
        if let Some(c) = cache.entries.get(token).filter(|c| c.from_s <= ev.now_s && ev.now_s <= c.until_s) {
            let mut r = c.resolution.clone();
            if r.actor.verified && r.actor.on_behalf_of.is_none() {
                r.actor.on_behalf_of = ev.on_behalf_of_header.filter(|v| !v.is_empty()).map(str::to_string);
            }
            return r;
        }
        let without_header = Evidence { on_behalf_of_header: None, jwt_authn_claims: None, ..*ev };
        let (resolution, window) = from_token_windowed(cfg, &without_header, token);
        if let (Some((from_s, until_s)), Source::JwtHs256) = (window, resolution.actor.source) {
            if cache.entries.len() >= TOKEN_CACHE_ENTRIES {
                cache.entries.clear();
            }
            cache.entries.insert(token.to_string(), Cached { resolution: resolution.clone(), from_s, until_s });
        }
        let mut r = resolution;
        if r.actor.verified && r.actor.on_behalf_of.is_none() {
            r.actor.on_behalf_of = ev.on_behalf_of_header.filter(|v| !v.is_empty()).map(str::to_string);
        }
        return r;
    }
    if let Some(san) = ev.peer_uri_san.filter(|s| !s.is_empty()) {
        let mut actor = Actor::anonymous();
        actor.id = Some(san.to_string());
        actor.kind = ActorType::Service;
        actor.verified = true;
        actor.source = Source::Mtls;
        actor.on_behalf_of = ev.on_behalf_of_header.filter(|v| !v.is_empty()).map(str::to_string);
        return Resolution { actor, reason: None };
    }
    Resolution { actor: Actor::anonymous(), reason: Some("missing_token") }
}

fn from_token(cfg: &IdentityConfig, ev: &Evidence, token: &str) -> Resolution {
    from_token_windowed(cfg, ev, token).0
}

/// The resolution of a token, and for an HS256 token that verified, the
/// window (seconds, skew applied) in which that verification holds.
fn from_token_windowed(cfg: &IdentityConfig, ev: &Evidence, token: &str) -> (Resolution, Option<(u64, u64)>) {
    let fail = |e: jwt::JwtError| Resolution { actor: Actor::anonymous(), reason: Some(e.reason()) };
    let decoded = match jwt::decode(token) {
        Ok(d) => d,
        Err(e) => return (fail(e), None),
    };
    let skew = cfg.jwt.clock_skew_seconds;
    let token_id = claims_token_id(&decoded.claims, Some(token));
    if let (Some(key), "HS256") = (ev.hs256_key, decoded.alg.as_str()) {
        if let Err(e) = decoded.verify_hs256(key).and_then(|_| jwt::check_time(&decoded.claims, ev.now_s, skew)) {
            return (fail(e), None);
        }
        // check_time's rule in whole seconds: now ≤ exp + skew, now ≥ nbf − skew.
        let secs = |k: &str| match decoded.claims.get(k) {
            None | Some(Value::Null) => Some(None),
            Some(v) => v.as_f64().filter(|v| v.is_finite() && *v >= 0.0 && *v < 1e15).map(Some),
        };
        let window = match (secs("nbf"), secs("exp")) {
            (Some(nbf), Some(exp)) => Some((
                nbf.map_or(0, |n| (n.ceil() as u64).saturating_sub(skew)),
                exp.map_or(u64::MAX, |e| (e.floor() as u64).saturating_add(skew)),
            )),
            _ => None,
        };
        let r = attributed(cfg, ev, &decoded.claims, Source::JwtHs256, true, token_id);
        return (r, window);
    }
    if !cfg.jwt.allow_unverified {
        return (Resolution { actor: Actor::anonymous(), reason: Some("unverified_token") }, None);
    }
    if let Err(e) = jwt::check_time(&decoded.claims, ev.now_s, skew) {
        return (fail(e), None);
    }
    (attributed(cfg, ev, &decoded.claims, Source::JwtUnverified, false, token_id), None)
}

fn claims_token_id(claims: &Map<String, Value>, token: Option<&str>) -> Option<String> {
    match claims.get("jti") {
        Some(Value::String(j)) if !j.is_empty() => Some(j.clone()),
        _ => token.map(jwt::fingerprint),
    }
}

fn attributed(
    cfg: &IdentityConfig,
    ev: &Evidence,
    claims: &Map<String, Value>,
    source: Source,
    verified: bool,
    token_id: Option<String>,
) -> Resolution {
    let c: &ClaimsConfig = &cfg.claims;
    let id = first_string(claims, &c.id);
    let client_id = first_string(claims, &c.client_id);
    let is_service = id.as_deref().is_some_and(|s| cfg.service_subjects.iter().any(|r| r.is_match(s)))
        || (id.is_some() && id == client_id)
        || id.as_deref().is_some_and(|s| s.starts_with("spiffe://"));
    // on_behalf_of only from a verified source: a forged claim or header on an
    // unverified token must not turn a service call into a person's.
    let on_behalf_of = if verified {
        first_string(claims, &c.on_behalf_of)
            .or_else(|| ev.on_behalf_of_header.filter(|v| !v.is_empty()).map(str::to_string))
    } else {
        None
    };
    let kind = match (&id, is_service) {
        (None, _) => ActorType::Anonymous,
        (Some(_), true) => ActorType::Service,
        (Some(_), false) => ActorType::User,
    };
    let actor = Actor {
        id,
        kind,
        roles: roles(claims, &c.roles),
        tenant: first_string(claims, &c.tenant),
        issuer: first_string(claims, &["iss".to_string()]),
        client_id,
        on_behalf_of,
        verified,
        source,
        token_id,
    };
    let reason = (actor.kind == ActorType::Anonymous).then_some("missing_subject");
    Resolution { actor, reason }
}

/// Looks a dotted path up (`act.sub`); a literal key containing dots wins.
pub fn claim<'a>(claims: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    if let Some(v) = claims.get(path) {
        return Some(v);
    }
    let mut parts = path.split('.');
    let mut cur = claims.get(parts.next()?)?;
    for p in parts {
        cur = cur.as_object()?.get(p)?;
    }
    Some(cur)
}

fn first_string(claims: &Map<String, Value>, paths: &[String]) -> Option<String> {
    paths.iter().find_map(|p| match claim(claims, p)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

/// Roles from the first present claim: an array of strings, a string, or a
/// space-separated `scope`/`scp` string.
fn roles(claims: &Map<String, Value>, paths: &[String]) -> Vec<String> {
    for p in paths {
        match claim(claims, p) {
            Some(Value::Array(items)) => {
                return items
                    .iter()
                    .filter_map(|v| v.as_str())
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .take(64)
                    .collect();
            }
            Some(Value::String(s)) if !s.is_empty() => {
                let leaf = p.rsplit('.').next().unwrap_or(p);
                return if leaf == "scope" || leaf == "scp" {
                    s.split_whitespace().map(str::to_string).take(64).collect()
                } else {
                    vec![s.clone()]
                };
            }
            _ => {}
        }
    }
    Vec::new()
}

/// A denial the filter answers itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    pub status: u16,
    pub reason: &'static str,
    pub message: &'static str,
}

/// Applies `identity.require` to a resolution.
pub fn check(require: Require, r: &Resolution) -> Option<Denial> {
    if require == Require::None {
        return None;
    }
    let a = &r.actor;
    if !a.verified || a.kind == ActorType::Anonymous {
        let reason = if a.kind != ActorType::Anonymous && !a.verified {
            "unverified_token"
        } else {
            r.reason.unwrap_or("missing_token")
        };
        return Some(Denial { status: 401, reason, message: "This route requires an authenticated caller." });
    }
    if require == Require::Individual && a.kind == ActorType::Service && a.on_behalf_of.is_none() {
        return Some(Denial {
            status: 403,
            reason: "service_account_not_allowed",
            message: "This route requires an individual: a service must act on behalf of a verified user.",
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use hmac::{Hmac, Mac};
    use sha2::Sha256;

    const KEY: &[u8] = b"test-secret-of-32-bytes-or-more!";
    const NOW: u64 = 1_800_000_000;

    fn cfg(extra: &str) -> IdentityConfig {
        let text = format!(r#"{{"identity": {{"service_subjects": ["^svc-"]{extra}}}}}"#);
        Config::parse(text.as_bytes()).unwrap_or_else(|e| panic!("{e:?}")).identity
    }

    fn hs256(claims: Value) -> String {
        let enc = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap_or_default());
        let input = format!("{}.{}", enc(&json!({"alg": "HS256", "typ": "JWT"})), enc(&claims));
        let mut mac = Hmac::<Sha256>::new_from_slice(KEY).unwrap_or_else(|_| unreachable!());
        mac.update(input.as_bytes());
        format!("Bearer {input}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
    }

    /// A cached verification gives exactly the uncached answer, honours
    /// expiry and `nbf` (with skew), and takes the on-behalf-of header per
    /// request; a bad signature is never cached.
    #[test]
    fn token_cache_answers_as_the_verifier_would() {
        let c = cfg("");
        let token = hs256(json!({"sub": "svc-billing", "exp": NOW + 100, "nbf": NOW - 10}));
        let mut cache = TokenCache::default();
        let ev = |now_s: u64, obo: Option<&'static str>| Evidence {
            token_header: None,
            hs256_key: Some(KEY),
            on_behalf_of_header: obo,
            now_s,
            ..Evidence::default()
        };
        for (now, obo) in [
            (NOW, None),
            (NOW, Some("alice")),
            (NOW + 100 + 60, None),
            (NOW + 100 + 61, None),
            (NOW - 70, None),
            (NOW - 71, None),
            (NOW, Some("bob")),
        ] {
            let e = Evidence { token_header: Some(&token), ..ev(now, obo) };
            let fresh = resolve(&c, &e);
            let cached = resolve_cached(&c, &e, Some(&mut cache));
            assert_eq!(cached, fresh, "now {now} obo {obo:?}");
        }
        assert_eq!(cache.len(), 1);
        assert_eq!(
            resolve_cached(&c, &Evidence { token_header: Some(&token), ..ev(NOW + 200, None) }, Some(&mut cache))
                .reason,
            Some("expired_token")
        );
        let forged = format!("{}x", token.trim_end_matches(|ch: char| ch != '.'));
        let mut empty = TokenCache::default();
        let r = resolve_cached(&c, &Evidence { token_header: Some(&forged), ..ev(NOW, None) }, Some(&mut empty));
        assert!(r.reason.is_some() && empty.is_empty());
    }

    fn resolve_header(cfg: &IdentityConfig, header: &str) -> Resolution {
        resolve(cfg, &Evidence { token_header: Some(header), hs256_key: Some(KEY), now_s: NOW, ..Default::default() })
    }

    #[test]
    fn verified_user_with_claims() {
        let h = hs256(
            json!({"sub": "alice", "roles": ["doctor", "admin"], "tenant": "t1", "iss": "idp", "azp": "web", "exp": NOW + 60, "jti": "j-1"}),
        );
        let r = resolve_header(&cfg(""), &h);
        assert_eq!(r.reason, None);
        let a = r.actor;
        assert_eq!(
            (a.id.as_deref(), a.kind, a.verified, a.source),
            (Some("alice"), ActorType::User, true, Source::JwtHs256)
        );
        assert_eq!(a.roles, vec!["doctor", "admin"]);
        assert_eq!(
            (a.tenant.as_deref(), a.issuer.as_deref(), a.client_id.as_deref()),
            (Some("t1"), Some("idp"), Some("web"))
        );
        assert_eq!(a.token_id.as_deref(), Some("j-1"));
    }

    #[test]
    fn claim_shapes() {
        let c = cfg(
            r#", "claims": {"id": ["email", "sub"], "roles": ["realm.roles", "scope"], "on_behalf_of": "act.sub"}"#,
        );
        let cases = [
            (json!({"sub": "u1", "scope": "read write"}), Some("u1"), vec!["read", "write"]),
            (json!({"email": "e1", "sub": "u1", "realm": {"roles": ["r1"]}}), Some("e1"), vec!["r1"]),
            (json!({"sub": 42, "scope": "one"}), Some("42"), vec!["one"]),
            (json!({"scope": ""}), None, vec![]),
        ];
        for (claims, id, roles) in cases {
            let r = resolve_header(&c, &hs256(claims.clone()));
            assert_eq!(r.actor.id.as_deref(), id, "{claims}");
            assert_eq!(r.actor.roles, roles, "{claims}");
        }
    }

    #[test]
    fn services_and_on_behalf_of() {
        let c = cfg(r#", "on_behalf_of_header": "x-on-behalf-of""#);
        let svc = resolve_header(&c, &hs256(json!({"sub": "svc-billing"})));
        assert_eq!(svc.actor.kind, ActorType::Service);
        let cc = resolve_header(&c, &hs256(json!({"sub": "app-7", "azp": "app-7"})));
        assert_eq!(cc.actor.kind, ActorType::Service, "client credentials: sub == client id");
        let act = resolve_header(&c, &hs256(json!({"sub": "svc-a", "act": {"sub": "bob"}})));
        assert_eq!(act.actor.on_behalf_of.as_deref(), Some("bob"));
        assert_eq!(check(Require::Individual, &act), None);
        assert_eq!(
            check(Require::Individual, &svc).map(|d| (d.status, d.reason)),
            Some((403, "service_account_not_allowed"))
        );
        let mtls = resolve(
            &c,
            &Evidence {
                peer_uri_san: Some("spiffe://cluster.local/ns/a/sa/b"),
                on_behalf_of_header: Some("carol"),
                ..Default::default()
            },
        );
        assert_eq!(
            (mtls.actor.kind, mtls.actor.source, mtls.actor.on_behalf_of.as_deref()),
            (ActorType::Service, Source::Mtls, Some("carol"))
        );
    }

    #[test]
    fn rejections_are_not_attributed() {
        let c = cfg("");
        let expired = hs256(json!({"sub": "a", "exp": NOW - 61}));
        let future = hs256(json!({"sub": "a", "nbf": NOW + 61}));
        let mut forged = hs256(json!({"sub": "a"}));
        forged.push('x');
        let cases = [
            (expired.as_str(), "expired_token"),
            (future.as_str(), "token_not_yet_valid"),
            (forged.as_str(), "bad_signature"),
            ("Bearer a.b.c", "malformed_token"),
            ("Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJhIn0.", "unsupported_alg"),
        ];
        for (h, reason) in cases {
            let r = resolve_header(&c, h);
            assert_eq!((r.actor.id.as_deref(), r.reason), (None, Some(reason)), "{reason}");
            assert_eq!(check(Require::Authenticated, &r).map(|d| d.status), Some(401));
        }
        let wrong_key = resolve(
            &c,
            &Evidence {
                token_header: Some(&hs256(json!({"sub": "a"}))),
                hs256_key: Some(b"other"),
                now_s: NOW,
                ..Default::default()
            },
        );
        assert_eq!(wrong_key.reason, Some("bad_signature"));
        let missing = resolve(&c, &Evidence::default());
        assert_eq!(missing.reason, Some("missing_token"));
        assert_eq!(check(Require::None, &missing), None);
    }

    #[test]
    fn unverified_only_when_allowed() {
        let h = hs256(json!({"sub": "alice", "act": {"sub": "forged"}}));
        let strict = resolve(&cfg(""), &Evidence { token_header: Some(&h), now_s: NOW, ..Default::default() });
        assert_eq!(strict.reason, Some("unverified_token"));
        let lax = resolve(
            &cfg(r#", "jwt": {"allow_unverified": true}"#),
            &Evidence { token_header: Some(&h), now_s: NOW, ..Default::default() },
        );
        assert_eq!(
            (lax.actor.id.as_deref(), lax.actor.verified, lax.actor.source),
            (Some("alice"), false, Source::JwtUnverified)
        );
        assert_eq!(lax.actor.on_behalf_of, None, "act from an unverified token is ignored");
        assert_eq!(check(Require::Authenticated, &lax).map(|d| d.reason), Some("unverified_token"));
    }

    /// The metadata cache answers as a fresh decode would: per token, with
    /// the on-behalf-of header of each request, metadata without claims
    /// falling through to the token, and not past the claims' `exp`.
    #[test]
    fn jwt_authn_metadata_cache_answers_as_a_decode_would() {
        let c = cfg(r#", "on_behalf_of_header": "x-obo""#);
        let claims = json!({"sub": "dana", "groups": ["g"], "exp": NOW + 10});
        let md = pbstruct::encode::encode_metadata(&[("envoy.filters.http.jwt_authn", json!({"payload": claims}))]);
        let other = pbstruct::encode::encode_metadata(&[("envoy.filters.http.rbac", json!({"x": "y"}))]);
        let token = hs256(json!({"sub": "erin", "exp": NOW + 100}));
        let mut cache = TokenCache::default();
        for (metadata, header, obo, now_s) in [
            (Some(md.as_slice()), Some("Bearer x.y.z"), None, NOW),
            (Some(md.as_slice()), Some("Bearer x.y.z"), Some("pat"), NOW),
            (Some(md.as_slice()), Some("Bearer a.b.c"), None, NOW),
            (Some(md.as_slice()), None, None, NOW),
            (Some(md.as_slice()), Some("Bearer x.y.z"), None, NOW + 20),
            (Some(other.as_slice()), Some(token.as_str()), None, NOW),
            (Some(other.as_slice()), Some(token.as_str()), Some("pat"), NOW),
            (None, Some(token.as_str()), None, NOW),
        ] {
            let ev = Evidence {
                token_header: header,
                hs256_key: Some(KEY),
                on_behalf_of_header: obo,
                now_s,
                ..Default::default()
            };
            let want = resolve(
                &c,
                &Evidence { jwt_authn_claims: metadata.and_then(|m| jwt_authn_claims(&c, m)), ..ev.clone() },
            );
            for _ in 0..2 {
                assert_eq!(resolve_metadata_cached(&c, metadata, &ev, &mut cache), want, "{header:?} {obo:?} {now_s}");
            }
        }
        let r = resolve_metadata_cached(
            &c,
            Some(&md),
            &Evidence { token_header: Some("Bearer x.y.z"), now_s: NOW, ..Default::default() },
            &mut cache,
        );
        assert_eq!(
            (r.actor.id.as_deref(), r.actor.source, r.actor.token_id),
            (Some("dana"), Source::JwtAuthn, Some(jwt::fingerprint("x.y.z")))
        );
        assert_eq!(cache.metadata.len(), 2);
    }

    #[test]
    fn jwt_authn_payload_wins() {
        let claims = json!({"sub": "dana", "groups": ["g"]}).as_object().cloned().unwrap_or_default();
        let r = resolve(
            &cfg(""),
            &Evidence { jwt_authn_claims: Some(claims), token_header: Some("Bearer x.y.z"), ..Default::default() },
        );
        assert_eq!((r.actor.id.as_deref(), r.actor.source, r.actor.verified), (Some("dana"), Source::JwtAuthn, true));
        assert_eq!(r.actor.token_id, Some(jwt::fingerprint("x.y.z")));
        assert_eq!(r.actor.roles, vec!["g"]);
    }
}
