"""Rewritten bodies keep their length, blocked requests never reach the upstream, blocked answers
get a status: with `envoy.allow_on_headers_stop_iteration` (and Envoy's PluginConfig knob of the
same name), and the documented fallback without it."""
import json
import time
import urllib.request

import pytest

import harness
from test_skeleton import call

PII = b'{"note": "SSN 536-22-8841, mail jane.doe@example.com", "card": "4111 1111 1111 1111"}'
SECRET = b'{"k": "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"}'


def config(knob):
    cfg = harness.default_plugin_config()
    cfg["envoy"] = {"allow_on_headers_stop_iteration": knob}
    return cfg


def upstream_state(upstream):
    base = f"http://127.0.0.1:{upstream.server_address[1]}/__requests"
    return upstream.state if hasattr(upstream, "state") else json.loads(urllib.request.urlopen(base, timeout=10).read())


def reset(upstream):
    req = urllib.request.Request(f"http://127.0.0.1:{upstream.server_address[1]}/__requests", method="DELETE")
    urllib.request.urlopen(req, timeout=10).read()


@pytest.mark.parametrize("knob", [True, False], ids=["knob_on", "knob_off"])
def test_redacted_bodies_reach_an_upstream_that_requires_content_length(envoy_factory, events, upstream, knob):
    envoy = envoy_factory(config(knob))
    reset(upstream)
    status, _, body = call(envoy.url, "/notes", "POST", {"content-type": "application/json", "x-require-length": "1"}, PII)
    (ev,) = events.wait_requests(1)
    assert {f["entity"] for f in ev["data"]["request"]["findings"]} >= {"email", "us_ssn", "credit_card"}
    if knob:
        assert status == 200, body
        (req,) = upstream.state["requests"]
        assert "jane.doe" not in req["body"] and "[REDACTED:EMAIL]" in req["body"]
        assert int(req["headers"]["content-length"]) == len(req["body"].encode()), req["headers"]
        assert "transfer-encoding" not in req["headers"]
    else:
        # Fallback: the rewritten body travels chunked, which this upstream refuses.
        assert status == 411 and upstream.state.get("refused_411") == ["/notes"]


@pytest.mark.parametrize("knob", [True, False], ids=["knob_on", "knob_off"])
def test_a_request_blocked_on_its_body(envoy_factory, events, upstream, knob):
    envoy = envoy_factory(config(knob))
    reset(upstream)
    status, headers, body = call(envoy.url, "/k", "POST", {"content-type": "application/json"}, SECRET)
    assert status == 403 and json.loads(body)["error"]["code"] == "secret_in_request"
    (ev,) = events.wait_requests(1)
    assert ev["kind"] == "blocked" and ev["outcome"]["status_code"] == 403
    time.sleep(0.2)
    with upstream.state["lock"]:
        connections, seen = upstream.state.get("connections", 0), list(upstream.state["requests"])
        truncated = list(upstream.state.get("truncated", []))
    assert seen == [], "no body byte ever reaches the upstream"
    if knob:
        # Headers held: the upstream never sees the request at all.
        assert (connections, truncated) == (0, []), (connections, truncated)
    else:
        # Fallback: the headers had left; Envoy resets the upstream request before any body byte.
        assert all(t["body"] == "" for t in truncated), truncated


@pytest.mark.parametrize("knob", [True, False], ids=["knob_on", "knob_off"])
def test_a_buffered_response_blocked_on_its_body(envoy_factory, events, upstream, knob):
    cfg = config(knob)
    cfg.setdefault("classification", {})["request"] = False  # the secret reaches the upstream, which echoes it back
    envoy = envoy_factory(cfg)
    status, headers, body = call(envoy.url, "/r", "POST", {"content-type": "application/json", "x-echo-body": "raw"}, SECRET)
    err = json.loads(body)["error"]
    assert err["code"] == "secret_in_response" and "ghp_" not in body.decode()
    (ev,) = events.wait_requests(1)
    assert ev["kind"] == "blocked" and ev["outcome"]["reason"] == "secret_in_response"
    if knob:
        assert status == 403 and int(headers["content-length"]) == len(body)
        assert ev["outcome"]["status_code"] == 403
    else:
        # Fallback: the status line had left; the body is the JSON error.
        assert status == 200


def test_redacted_buffered_response_has_its_length(envoy_factory, events, upstream):
    cfg = config(True)
    cfg.setdefault("classification", {})["request"] = False
    envoy = envoy_factory(cfg)
    status, headers, body = call(envoy.url, "/r", "POST", {"content-type": "application/json", "x-echo-body": "raw"}, PII)
    assert status == 200 and b"[REDACTED:EMAIL]" in body and b"jane.doe" not in body
    assert int(headers["content-length"]) == len(body)


def test_a_mismatch_degrades_safely_and_says_so(envoy_factory, events, upstream):
    """The plugin key on, Envoy's knob off: held headers would never get their body. The safety net
    releases them (without content-length, as the fallback does) and logs the misconfiguration."""
    envoy = envoy_factory(config(True), stop_iteration=False)
    reset(upstream)
    start = time.time()
    status, _, _ = call(envoy.url, "/notes", "POST", {"content-type": "application/json"}, PII)
    assert status == 200
    (req,) = upstream.state["requests"]
    assert "[REDACTED:EMAIL]" in req["body"] and "jane.doe" not in req["body"]
    assert "content-length" not in req["headers"]
    assert time.time() - start < 10
    assert harness.wait_for(lambda: "allow_on_headers_stop_iteration is on, but" in envoy.log(), 5), envoy.log()[-2000:]
