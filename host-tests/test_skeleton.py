"""Walking skeleton: the filter in a real Envoy, one event per request."""
import json
import time
import urllib.request
import urllib.error

import jwt
import pytest

import harness
from conftest import assert_schema_valid


def token(sub="alice", secret=harness.JWT_SECRET, **claims):
    now = int(time.time())
    return jwt.encode({"sub": sub, "iat": now, "exp": now + 600, **claims}, secret, algorithm="HS256")


def call(url, path="/", method="GET", headers=None, body=None):
    req = urllib.request.Request(url + path, method=method, data=body, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def test_five_requests_five_events_naming_the_user(envoy_factory, events, upstream):
    envoy = envoy_factory()
    tok = token("alice", roles=["doctor"], tenant="clinic-7")
    ids = []
    for i in range(5):
        status, headers, _ = call(envoy.url, f"/patients/{1000 + i}/records?from=2020-01-01",
                                  headers={"authorization": f"Bearer {tok}", "x-request-id": f"req-{i}",
                                           "x-purpose-of-use": "treatment", "user-agent": "skeleton-test"})
        assert status == 200
        ids.append(headers["x-proxy-audit-id"])
    evs = events.wait_requests(5)
    assert len(evs) == 5
    by_id = {e["id"]: e for e in evs}
    assert set(by_id) == set(ids), "x-proxy-audit-id on the response is the event id"
    for i, audit_id in enumerate(ids):
        e = by_id[audit_id]
        assert_schema_valid(e)
        assert (e["kind"], e["phase"]) == ("access", "complete")
        assert e["actor"] == {**e["actor"], "id": "alice", "type": "user", "verified": True, "source": "jwt_hs256",
                              "roles": ["doctor"], "tenant": "clinic-7"}
        assert e["action"] == {"verb": "READ", "method": "GET", "path": "/patients/{id}/records?from"}
        assert e["target"] == {"authority": f"127.0.0.1:{envoy.port}", "resource_type": "patient", "resource_id": f"patient:{1000 + i}"}
        assert e["source"]["address"] == "127.0.0.1"
        assert e["source"]["user_agent"] == "skeleton-test"
        assert e["source"]["request_id"] == f"req-{i}"
        assert e["outcome"]["status_code"] == 200 and e["outcome"]["success"] is True
        assert isinstance(e["outcome"]["duration_ms"], int)
        assert e["purpose"] == "treatment"
        assert e["data"]["request"]["findings"] == []
        # The echo upstream answers with the request's headers: `host` is 127.0.0.1:<port>, an
        # address with a port (found since issue 16; it used to be missed).
        assert e["data"]["response"]["findings"] == [{"entity": "ip_address", "category": "pii", "count": 1,
                                                      "action": "redacted", "locations": ["$.headers.host"]}]
    # What reached the upstream carries the same audit id.
    seen = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{upstream.server_address[1]}/__requests", timeout=10).read())
    assert sorted(r["headers"]["x-proxy-audit-id"] for r in seen) == sorted(ids)
    # No raw query value or token in any event.
    text = json.dumps(events.all())
    assert "2020-01-01" not in text and tok not in text and tok.split(".")[2] not in text


def test_chain_links_and_hashes(envoy_factory, events):
    envoy = envoy_factory()
    for _ in range(6):
        call(envoy.url, "/x")
    events.wait_requests(6)
    from chaincheck import settled_chains
    chains = settled_chains(events)
    assert sum(len(c) for c in chains.values()) == len(events.all())
    for emitter, evs in chains.items():
        assert evs[0]["kind"] == "chain_start" and evs[0]["chain"]["seq"] == 0
        assert_schema_valid(evs[0])


def test_post_body_digest_and_upstream_errors(envoy_factory, events):
    envoy = envoy_factory()
    body = json.dumps({"note": "hello"}).encode()
    status, _, _ = call(envoy.url, "/notes", "POST", {"content-type": "application/json"}, body)
    assert status == 200
    s401, _, _ = call(envoy.url, "/status/401")
    s403, _, _ = call(envoy.url, "/status/403")
    assert (s401, s403) == (401, 403)
    evs = events.wait_requests(3)
    by_path = {e["action"]["path"]: e for e in evs}
    post = by_path["/notes"]
    assert post["action"]["verb"] == "CREATE"
    import hashlib
    assert post["data"]["request"]["sha256"] == hashlib.sha256(body).hexdigest()
    assert post["data"]["request"]["bytes"] == len(body)
    for code in (401, 403):
        e = by_path[f"/status/{code}"]
        assert_schema_valid(e)
        assert e["kind"] == "access" and e["outcome"]["status_code"] == code and e["outcome"]["success"] is False
        assert e["actor"]["type"] == "anonymous"


def test_bad_tokens_are_not_attributed(envoy_factory, events):
    envoy = envoy_factory()
    forged = token("mallory", secret="not-the-secret-" * 3)
    expired = jwt.encode({"sub": "bob", "exp": int(time.time()) - 3600}, harness.JWT_SECRET, algorithm="HS256")
    for t in (forged, expired):
        status, _, _ = call(envoy.url, "/r", headers={"authorization": f"Bearer {t}"})
        assert status == 200
    evs = events.wait_requests(2)
    assert all(e["actor"]["id"] is None and e["actor"]["type"] == "anonymous" for e in evs)
    assert sorted(e["actor"]["reason"] for e in evs) == ["bad_signature", "expired_token"], "why nobody is attributed"
    for e in evs:
        assert_schema_valid(e)


def test_local_reply_gets_an_event_and_json_error(envoy_factory, events):
    envoy = envoy_factory(harness.default_plugin_config(identity={"jwt": {"hs256_secret_env": "PROXY_AUDIT_JWT_SECRET"}, "require": "authenticated"}))
    status, headers, body = call(envoy.url, "/secret", headers={"x-request-id": "r-1"})
    assert status == 401
    err = json.loads(body)["error"]
    assert err["code"] == "missing_token" and err["request_id"] == "r-1"
    assert err["audit_id"] == headers["x-proxy-audit-id"]
    (e,) = events.wait_requests(1)
    assert_schema_valid(e)
    assert (e["id"], e["kind"], e["outcome"]["status_code"], e["outcome"]["reason"]) == (err["audit_id"], "denied", 401, "missing_token")


def test_bad_config_is_refused_with_every_problem_named(sink, upstream):
    bad = {"identity": {"require": "always", "jwt": {"colour": 1}}, "audit": {"exporter": {"timeout_ms": 0}}}
    e = harness.Envoy(bad, upstream.server_address[1], sink.server_address[1])
    with pytest.raises(RuntimeError):
        e.start(timeout=20)
    log = e.log()
    e.stop()
    for needle in ("$.identity.require", "$.identity.jwt.colour", "$.audit.exporter.timeout_ms"):
        assert needle in log, log[-3000:]


def test_standalone_envoy_yaml_validates():
    ok, out = harness.validate(harness.ROOT / "envoy" / "envoy.yaml")
    assert ok, out[-3000:]


def test_failed_batches_are_retried_and_counted(envoy_factory, events, sink):
    cfg = harness.default_plugin_config()
    envoy = envoy_factory(cfg)
    # Refused until a batch holding these requests' events has been refused (not for a guessed window).
    sink.store.fail_status, sink.store.fail_until = 503, time.time() + 3600
    ids = [call(envoy.url, f"/retry/{i}")[1]["x-proxy-audit-id"] for i in range(5)]

    def refused_one():
        with sink.store.lock:
            return any(e["id"] in ids for batch in sink.store.refused_batches for e in batch or [])
    assert harness.wait_for(refused_one, harness.periods(cfg["audit"]["exporter"]["flush_interval_ms"]))
    sink.store.fail_until = time.time()
    evs = events.wait_requests(5, timeout=20)
    assert set(ids) <= {e["id"] for e in evs}
    assert sink.store.refused >= 1
    stats = envoy.stats("proxy_audit")
    assert int(stats["wasmcustom.proxy_audit.batches_failed"]) >= 1, stats
    assert int(stats["wasmcustom.proxy_audit.events_retried"]) >= 1, stats
    assert int(stats["wasmcustom.proxy_audit.requests"]) == 5, stats


def test_personal_data_in_the_path_is_templated(envoy_factory, events):
    envoy = envoy_factory()
    call(envoy.url, "/users/jane.doe@example.com/orders?token=abc123")
    call(envoy.url, "/patients/536-22-8841")
    evs = {e["action"]["path"]: e for e in events.wait_requests(2)}
    assert set(evs) == {"/users/{email}/orders?token", "/patients/{id}"}
    assert evs["/patients/{id}"]["target"]["resource_id"] == "patient:{us_ssn}", "no key: the entity, never the value"
    dump = json.dumps(events.all())
    assert "jane.doe" not in dump and "536-22-8841" not in dump and "abc123" not in dump
