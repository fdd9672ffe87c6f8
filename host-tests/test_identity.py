"""Identity and attribution through a real Envoy: jwt_authn (RS256, local JWKS) in front of
the filter, HS256 verified by the filter, require modes per route, upstream 401/403."""
import json
import time
import urllib.error

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

import harness
from conftest import assert_schema_valid
from test_skeleton import call, token

ISSUER = "https://idp.example.com"


@pytest.fixture(scope="module")
def rsa_key():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    jwk.update({"kid": "k1", "alg": "RS256", "use": "sig"})
    return key, json.dumps({"keys": [jwk]})


def rs256(key, sub, **claims):
    now = int(time.time())
    body = {"iss": ISSUER, "aud": "proxy-audit", "sub": sub, "iat": now, "exp": now + 600, **claims}
    return jwt.encode(body, key, algorithm="RS256", headers={"kid": "k1"})


def test_jwt_authn_payload_is_used_and_verified(envoy_factory, events, rsa_key):
    key, jwks = rsa_key
    envoy = envoy_factory(harness.default_plugin_config(), extra_filters_before=[harness.jwt_authn_filter(jwks, ISSUER)])
    t = rs256(key, "dana", groups=["nurses"], tenant="ward-3", azp="portal", jti="tok-1")
    status, _, _ = call(envoy.url, "/patients/7", headers={"authorization": f"Bearer {t}"})
    assert status == 200
    # A bad RS256 token is rejected by jwt_authn itself: still exactly one event.
    bad = rs256(rsa.generate_private_key(public_exponent=65537, key_size=2048), "eve")
    status, _, _ = call(envoy.url, "/patients/8", headers={"authorization": f"Bearer {bad}"})
    assert status == 401
    evs = events.wait_requests(2)
    by_path = {e["action"]["path"]: e for e in evs}
    ok = by_path["/patients/{id}"] if "/patients/{id}" in by_path else None
    ok = [e for e in evs if e["outcome"]["status_code"] == 200][0]
    assert_schema_valid(ok)
    a = ok["actor"]
    assert (a["id"], a["type"], a["verified"], a["source"]) == ("dana", "user", True, "jwt_authn")
    assert (a["roles"], a["tenant"], a["issuer"], a["client_id"], a["token_id"]) == (["nurses"], "ward-3", ISSUER, "portal", "tok-1")
    rejected = [e for e in evs if e["outcome"]["status_code"] == 401][0]
    assert_schema_valid(rejected)
    assert rejected["kind"] == "denied" and rejected["actor"]["id"] is None
    assert "jwt" in (rejected["outcome"]["reason"] or "").lower()
    text = json.dumps(events.all())
    assert t not in text and t.split(".")[2] not in text and bad.split(".")[2] not in text


def test_require_modes_per_route(envoy_factory, events, upstream):
    cfg = harness.default_plugin_config(routes=[
        {"match": {"path_prefix": "/records/"}, "identity": {"require": "individual"}},
        {"match": {"path_prefix": "/api/"}, "identity": {"require": "authenticated"}},
    ])
    cfg["identity"]["claims"] = {"on_behalf_of": "act.sub"}
    envoy = envoy_factory(cfg)
    person, svc = token("alice"), token("svc-batch")
    svc_obo = token("svc-portal", act={"sub": "bob"})
    cases = [
        ("/open", None, 200, None),
        ("/api/x", None, 401, "missing_token"),
        ("/api/x", "Bearer " + token("alice", secret="wrong-secret-" * 4), 401, "bad_signature"),
        ("/api/x", "Bearer " + jwt.encode({"sub": "x", "exp": int(time.time()) - 999}, harness.JWT_SECRET, algorithm="HS256"), 401, "expired_token"),
        ("/api/x", "Bearer not.a.jwt", 401, "malformed_token"),
        ("/api/x", f"Bearer {svc}", 200, None),
        ("/records/1", f"Bearer {person}", 200, None),
        ("/records/2", f"Bearer {svc}", 403, "service_account_not_allowed"),
        ("/records/3", f"Bearer {svc_obo}", 200, None),
    ]
    for path, auth, want, reason in cases:
        headers = {"authorization": auth} if auth else {}
        status, h, body = call(envoy.url, path, headers=headers)
        assert status == want, (path, auth, body)
        if reason:
            err = json.loads(body)["error"]
            assert err["code"] == reason and err["audit_id"] == h["x-proxy-audit-id"]
    evs = events.wait_requests(len(cases))
    assert len(evs) == len(cases)
    for e in evs:
        assert_schema_valid(e)
    denied = [e for e in evs if e["kind"] == "denied"]
    assert sorted(e["outcome"]["reason"] for e in denied) == sorted(r for *_, r in cases if r)
    obo = [e for e in evs if e["actor"]["id"] == "svc-portal"][0]
    assert (obo["actor"]["type"], obo["actor"]["on_behalf_of"]) == ("service", "bob")
    # Nothing denied reached the upstream.
    seen = json.loads(__import__("urllib.request").request.urlopen(f"http://127.0.0.1:{upstream.server_address[1]}/__requests", timeout=10).read())
    assert sorted(r["path"] for r in seen) == sorted(p for p, _, s, _ in cases if s == 200)


def test_unverified_only_when_allowed(envoy_factory, events, rsa_key):
    key, _ = rsa_key
    cfg = harness.default_plugin_config()
    cfg["identity"]["jwt"]["allow_unverified"] = True
    envoy = envoy_factory(cfg)
    call(envoy.url, "/u", headers={"authorization": f"Bearer {rs256(key, 'carol', act={'sub': 'forged'})}"})
    (e,) = events.wait_requests(1)
    assert_schema_valid(e)
    a = e["actor"]
    assert (a["id"], a["verified"], a["source"], a["on_behalf_of"]) == ("carol", False, "jwt_unverified", None)


def test_mtls_spiffe_peer_is_a_service(envoy_factory, events, tmp_path):
    import ssl
    import urllib.request
    from pki import make_pki
    spiffe = "spiffe://cluster.local/ns/billing/sa/batch"
    pki = make_pki(tmp_path, spiffe)
    cfg = harness.default_plugin_config(identity={"jwt": {"hs256_secret_env": "PROXY_AUDIT_JWT_SECRET"},
                                                  "on_behalf_of_header": "x-on-behalf-of",
                                                  "require": "individual"})
    envoy = envoy_factory(cfg, tls=pki)
    ctx = ssl.create_default_context(cafile=pki["ca.pem"])
    ctx.load_cert_chain(pki["client.pem"], pki["client.key"])
    url = f"https://127.0.0.1:{envoy.port}"
    try:
        urllib.request.urlopen(urllib.request.Request(url + "/m/1"), context=ctx, timeout=10)
        raise AssertionError("a service without on-behalf-of must be refused")
    except urllib.error.HTTPError as e:
        assert e.code == 403
    r = urllib.request.urlopen(urllib.request.Request(url + "/m/2", headers={"x-on-behalf-of": "erin"}), context=ctx, timeout=10)
    assert r.status == 200
    evs = sorted(events.wait_requests(2), key=lambda e: e["action"]["path"])
    for e in evs:
        assert_schema_valid(e)
        assert (e["actor"]["id"], e["actor"]["type"], e["actor"]["source"], e["actor"]["verified"]) == (spiffe, "service", "mtls", True)
    assert (evs[0]["kind"], evs[0]["outcome"]["reason"]) == ("denied", "service_account_not_allowed")
    assert evs[1]["actor"]["on_behalf_of"] == "erin"
