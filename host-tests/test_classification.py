"""Classification and redaction through a real Envoy: request and response bodies,
SSE streams with values split across events and network chunks, every action."""
import json
import urllib.request

import harness
from conftest import assert_schema_valid
from test_skeleton import call

EMAIL = "jane.doe@example.com"
SSN = "536-22-8841"
CARD = "4111 1111 1111 1111"
AWS_KEY = "AKIAIOSFODNN7EXAMPLE"


def upstream_requests(upstream):
    return json.loads(urllib.request.urlopen(f"http://127.0.0.1:{upstream.server_address[1]}/__requests", timeout=10).read())


def post_json(envoy, path, obj, headers=None):
    return call(envoy.url, path, "POST", {"content-type": "application/json", **(headers or {})}, json.dumps(obj).encode())


def test_request_json_is_redacted_before_the_upstream(envoy_factory, events, upstream):
    envoy = envoy_factory()
    body = {"messages": [{"role": "user", "content": f"Mail {EMAIL}, SSN {SSN}, card {CARD}."}], "n": 1}
    status, _, _ = post_json(envoy, "/v1/notes", body)
    assert status == 200
    (seen,) = upstream_requests(upstream)
    forwarded = json.loads(seen["body"])  # still valid JSON
    text = forwarded["messages"][0]["content"]
    assert EMAIL not in text and SSN not in text and CARD.replace(" ", "") not in text.replace(" ", "")
    assert "[REDACTED:EMAIL]" in text and "[REDACTED:US_SSN]" in text and text.count("*") >= 12
    assert "content-length" not in seen["headers"] or int(seen["headers"]["content-length"]) == len(seen["body"].encode())
    (e,) = events.wait_requests(1)
    assert_schema_valid(e)
    found = {f["entity"]: f for f in e["data"]["request"]["findings"]}
    assert set(found) >= {"email", "us_ssn", "credit_card"}
    assert found["email"] == {"entity": "email", "category": "pii", "count": 1, "action": "redacted", "locations": ["$.messages[0].content"]}
    assert found["credit_card"]["action"] == "masked" and found["credit_card"]["category"] == "pci"
    assert e["data"]["request"]["scanned"] is True
    dump = json.dumps(events.all())
    for canary in (EMAIL, SSN, CARD, "4111111111111111"):
        assert canary not in dump


def test_response_is_redacted_for_the_client(envoy_factory, events):
    # Request scanning off: the upstream sees the value and sends it back.
    envoy = envoy_factory(harness.default_plugin_config(classification={"request": False}))
    status, _, body = post_json(envoy, "/echo", {"reply": f"write to {EMAIL}"}, {"x-echo-body": "raw"})
    assert status == 200
    assert EMAIL not in body.decode() and json.loads(body)["reply"] == "write to [REDACTED:EMAIL]"
    (e,) = events.wait_requests(1)
    assert [f["entity"] for f in e["data"]["response"]["findings"]] == ["email"]
    assert (e["data"]["request"]["scanned"], e["data"]["request"]["skipped"]) == (False, "disabled")


def sse_chunks(pieces):
    """An OpenAI-style stream whose text arrives in `pieces`, one SSE event each, split
    into network chunks in the middle of events."""
    events = []
    for p in pieces:
        events.append("data: " + json.dumps({"id": "c1", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": p}}]}) + "\n\n")
    events.append("data: [DONE]\n\n")
    raw = "".join(events)
    return [raw[i:i + 37] for i in range(0, len(raw), 37)]


def test_sse_value_split_across_events_and_chunks_is_redacted(envoy_factory, events):
    envoy = envoy_factory()
    pieces = ["Contact ", "jane.d", "oe@exam", "ple.com", " today."]
    status, _, body = post_json(envoy, "/v1/chat/completions", {"chunks": sse_chunks(pieces)}, {"x-echo-sse": "1"})
    assert status == 200
    text = body.decode()
    assert EMAIL not in text.replace('"}}]}\n\ndata: {"id": "c1", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": "', "")
    content = "".join(json.loads(line[6:])["choices"][0]["delta"]["content"]
                      for line in text.splitlines() if line.startswith("data: {"))
    assert EMAIL not in content and "[REDACTED:EMAIL]" in content, content
    assert content.startswith("Contact ") and content.endswith(" today.")
    assert text.rstrip().endswith("data: [DONE]")
    (e,) = events.wait_requests(1)
    assert_schema_valid(e)
    assert [f["entity"] for f in e["data"]["response"]["findings"]] == ["email"]


def test_secret_in_request_is_blocked_and_not_forwarded(envoy_factory, events, upstream):
    envoy = envoy_factory()
    status, h, body = post_json(envoy, "/v1/deploy", {"env": f"AWS_ACCESS_KEY_ID={AWS_KEY}"}, {"x-request-id": "blk-1"})
    assert status == 403
    err = json.loads(body)["error"]
    assert (err["code"], err["request_id"], err["audit_id"]) == ("secret_in_request", "blk-1", h["x-proxy-audit-id"])
    assert upstream_requests(upstream) == []
    (e,) = events.wait_requests(1)
    assert_schema_valid(e)
    assert (e["kind"], e["outcome"]["status_code"], e["outcome"]["reason"]) == ("blocked", 403, "secret_in_request")
    assert e["data"]["request"]["findings"][0]["action"] == "blocked"
    assert AWS_KEY not in json.dumps(events.all()) and AWS_KEY not in envoy.log()


def test_pseudonymize_and_restore(envoy_factory, events, upstream):
    cfg = harness.default_plugin_config(
        classification={"actions": {"pii": "pseudonymize"}, "restore": True},
        audit={"pseudonym_key_env": "PROXY_AUDIT_PSEUDONYM_KEY", "exporter": {"cluster": "audit_sink", "flush_interval_ms": 100}},
    )
    envoy = envoy_factory(cfg)
    status, _, body = post_json(envoy, "/echo", {"q": f"who is {EMAIL}?"}, {"x-echo-body": "raw"})
    assert status == 200
    (seen,) = upstream_requests(upstream)
    forwarded = json.loads(seen["body"])["q"]
    assert EMAIL not in forwarded and "pseu_" in forwarded
    token = forwarded.split("who is ")[1].rstrip("?")
    assert len(token) == 21
    # The client gets its own value back; the upstream only ever saw the token.
    assert json.loads(body)["q"] == f"who is {EMAIL}?"
    status, _, _ = post_json(envoy, "/echo", {"q": EMAIL})
    (second,) = upstream_requests(upstream)[1:]
    assert token in second["body"], "same value, same token: records stay linkable"
    for e in events.wait_requests(2):
        assert_schema_valid(e)
        assert e["data"]["request"]["findings"][0]["action"] == "pseudonymized"


def test_restore_puts_back_a_token_the_model_streams_in_pieces(envoy_factory, upstream):
    """The model answers with the pseudonym it was sent, cut into several SSE events (as
    tokenizers do): the client still gets its own value back, whole."""
    import hashlib
    import hmac
    cfg = harness.default_plugin_config(
        classification={"actions": {"pii": "pseudonymize"}, "restore": True},
        audit={"pseudonym_key_env": "PROXY_AUDIT_PSEUDONYM_KEY", "exporter": {"cluster": "audit_sink", "flush_interval_ms": 100}},
    )
    envoy = envoy_factory(cfg)
    token = "pseu_" + hmac.new(harness.PSEUDONYM_KEY.encode(), EMAIL.encode(), hashlib.sha256).hexdigest()[:16]
    pieces = ["I will write to ", token[:3], token[3:10], token[10:], " today."]
    frame = lambda text: "data: " + json.dumps({"choices": [{"index": 0, "delta": {"content": text}}]}) + "\n\n"
    chunks = [frame(p) for p in pieces] + ["data: [DONE]\n\n"]
    status, _, body = post_json(envoy, "/v1/chat/completions", {"q": f"write to {EMAIL}", "chunks": chunks},
                                {"x-echo-sse": "1"})
    assert status == 200
    seen = upstream_requests(upstream)[0]
    assert EMAIL not in seen["body"] and token in seen["body"], "the upstream saw only the token"
    text = "".join(json.loads(line[6:])["choices"][0]["delta"]["content"]
                   for line in body.decode().split("\n\n") if line.startswith("data: {"))
    assert text == f"I will write to {EMAIL} today.", body.decode()


def test_oversize_and_compressed_bodies_are_recorded_as_skipped(envoy_factory, events):
    cfg = harness.default_plugin_config(classification={"max_body_bytes": 1024})
    envoy = envoy_factory(cfg)
    big = {"blob": "x" * 4096, "mail": EMAIL}
    status, _, _ = post_json(envoy, "/big", big)
    assert status == 200
    status, _, _ = call(envoy.url, "/gz", "POST", {"content-type": "application/json", "content-encoding": "gzip"}, b"\x1f\x8b\x08\x00")
    assert status == 200
    evs = {e["action"]["path"]: e for e in events.wait_requests(2)}
    assert evs["/big"]["data"]["request"]["scanned"] is False and evs["/big"]["data"]["request"]["skipped"] == "too_large"
    assert evs["/gz"]["data"]["request"]["skipped"] == "compressed"
    cfg = harness.default_plugin_config(classification={"max_body_bytes": 1024, "on_oversize": "reject"})
    envoy2 = envoy_factory(cfg)
    status, _, body = post_json(envoy2, "/big", big)
    assert status == 413 and json.loads(body)["error"]["code"] == "body_too_large"
    status, _, body = call(envoy2.url, "/gz", "POST", {"content-type": "application/json", "content-encoding": "gzip"}, b"\x1f\x8b\x08\x00")
    assert status == 413 and json.loads(body)["error"]["code"] == "body_compressed"


def test_form_and_text_bodies(envoy_factory, events, upstream):
    envoy = envoy_factory()
    call(envoy.url, "/form", "POST", {"content-type": "application/x-www-form-urlencoded"}, f"name=Jane&email={EMAIL.replace('@', '%40')}".encode())
    call(envoy.url, "/text", "POST", {"content-type": "text/plain"}, f"ssn {SSN} here".encode())
    seen = {r["path"]: r["body"] for r in upstream_requests(upstream)}
    assert "jane.doe" not in seen["/form"] and "name=Jane" in seen["/form"]
    assert seen["/text"] == "ssn [REDACTED:US_SSN] here"
    evs = events.wait_requests(2)
    locs = sorted(f["locations"][0] for e in evs for f in e["data"]["request"]["findings"])
    assert locs == ["$", "$.form.email"]
