"""The filter outside Envoy: the built .wasm in a proxy-wasm ABI 0.2.1 host of our own
(`wasmhost.py`, on wasmtime), driving the core scenarios and asserting on what the module
itself did: headers it set, bodies it rewrote, local replies, HTTP calls it dispatched.

Each test builds its own host (engine, store, clock, logs), so tests share nothing."""
import datetime
import hashlib
import json
import subprocess

import jwt
import pytest

import harness
import wasmhost
from chaincheck import check_chains
from conftest import assert_schema_valid
from wasmhost import CONTINUE, PAUSE, WasmHost

EMAIL = "jane.doe@example.com"
SSN = "536-22-8841"
CARD = "4111 1111 1111 1111"
ENV = {"PROXY_AUDIT_JWT_SECRET": harness.JWT_SECRET, "PROXY_AUDIT_PSEUDONYM_KEY": harness.PSEUDONYM_KEY}


@pytest.fixture
def make_host():
    """Builds hosts for one test; afterwards, none of them may have panicked."""
    hosts = []

    def make(config=None, env=ENV, **kw):
        host = WasmHost(env=env, **kw)
        hosts.append(host)
        if config is not False:
            assert host.start(config or harness.default_plugin_config()), host.log_text()
        return host

    yield make
    for host in hosts:
        assert not [m for lvl, m in host.logs if lvl == "critical" or "panicked" in m], host.log_text()


def token(host, sub="alice", **claims):
    now = host.now_ns // 1_000_000_000
    return jwt.encode({"sub": sub, "iat": now, "exp": now + 600, **claims}, harness.JWT_SECRET, algorithm="HS256")


def request(method, path, headers=(), authority="api.example.com"):
    return [(":method", method), (":path", path), (":authority", authority), (":scheme", "http"), *headers]


def post_json(stream, path, obj, chunk=None):
    """Request headers and a JSON body (in chunks of `chunk` bytes); the body actions."""
    body = json.dumps(obj).encode()
    stream.request_headers(request("POST", path, [("content-type", "application/json"),
                                                  ("content-length", str(len(body)))]))
    step = chunk or len(body)
    pieces = [body[i:i + step] for i in range(0, len(body), step)]
    return [stream.request_body(p, end_of_stream=i == len(pieces) - 1) for i, p in enumerate(pieces)]


def respond(stream, status=200, body=b"", content_type="application/json"):
    stream.response_headers([(":status", str(status)), ("content-type", content_type)], end_of_stream=not body)
    if body:
        stream.response_body(body, end_of_stream=True)


def served_get(host, path):
    """A GET the upstream answers 200, start to end."""
    s = host.new_stream()
    s.request_headers(request("GET", path), end_of_stream=True)
    respond(s)
    s.finish()
    return s


def resent_batch(host):
    """Ticks (100 ms each) until the filter retries its batch: backoff is 100 ms plus jitter,
    so it must come within 2 s of host time."""
    for _ in range(20):
        host.tick()
        calls = host.pending_calls()
        if calls:
            break
    assert len(calls) == 1, "resent within 2 s of host time"
    return calls[0]


def shipped(host, status=200):
    """One timer tick; the batch the root context POSTed, answered with `status`; its events."""
    host.tick()
    (call,) = host.pending_calls()
    assert (call.cluster, call.header(":method"), call.header(":path")) == ("audit_sink", "POST", "/v1/events")
    assert call.header("content-type") == "application/x-ndjson"
    events = [json.loads(line) for line in call.body.decode().splitlines()]
    host.respond(call, status)
    return events


def completes(events):
    return [e for e in events if e.get("phase") == "complete"]


# 1 ------------------------------------------------------------------------------------------
def test_imports_are_abi_0_2_1_and_envoy_wasi_and_all_provided():
    host = WasmHost(env=ENV)
    imports = {(i.module, i.name) for i in host.module.imports}
    assert imports <= host.provided, f"not provided by the harness: {sorted(imports - host.provided)}"
    reference = {("env", n) for n in wasmhost.ABI_HOST_FUNCTIONS} | \
                {("wasi_snapshot_preview1", n) for n in wasmhost.ENVOY_WASI_FUNCTIONS}
    assert imports <= reference, f"outside ABI 0.2.1 / Envoy's WASI: {sorted(imports - reference)}"
    assert host.provided <= reference, "the harness offers nothing a proxy would not"
    assert {m for m, _ in imports} == {"env", "wasi_snapshot_preview1"}
    exports = {e.name for e in host.module.exports}
    assert "proxy_abi_version_0_2_1" in exports and "memory" in exports
    called = {"_initialize", "proxy_on_memory_allocate", "proxy_on_context_create", "proxy_on_vm_start",
              "proxy_on_configure", "proxy_on_tick", "proxy_on_request_headers", "proxy_on_request_body",
              "proxy_on_response_headers", "proxy_on_response_body", "proxy_on_done", "proxy_on_log",
              "proxy_on_delete", "proxy_on_http_call_response"}
    assert called <= exports, sorted(called - exports)
    assert exports - {"memory"} <= wasmhost.ABI_CALLBACKS, sorted(exports - {"memory"} - wasmhost.ABI_CALLBACKS)


# 2 ------------------------------------------------------------------------------------------
def test_configure_accepts_a_valid_config_and_refuses_an_unknown_key(make_host):
    ok = make_host()
    assert ok.tick_period_ms == 100, "flush_interval_ms became the timer period"
    bad = make_host(config=False)
    assert bad.start({"audit": {"exporter": {"cluster": "audit_sink", "flush_intervall_ms": 5}}}) is False
    assert "$.audit.exporter.flush_intervall_ms" in bad.log_text(), bad.log_text()
    # Secrets come from the VM's environment (WASI environ_get): a missing one refuses too.
    no_env = make_host(config=False, env={})
    assert no_env.start(harness.default_plugin_config()) is False
    assert "PROXY_AUDIT_JWT_SECRET" in no_env.log_text(), no_env.log_text()


# 3 ------------------------------------------------------------------------------------------
def test_get_with_hs256_jwt_is_attributed_tagged_and_shipped(make_host):
    host = make_host()
    tok = token(host, "alice", roles=["physician"], tenant="clinic-7")
    s = host.new_stream()
    hdrs = [("authorization", f"Bearer {tok}"), ("x-request-id", "req-1"), ("user-agent", "wasm-host")]
    assert s.request_headers(request("GET", "/patients/1274?from=2020", hdrs), end_of_stream=True) == CONTINUE
    audit_id = s.upstream_header("x-proxy-audit-id")
    assert audit_id and len(audit_id) == 32
    assert s.filter_state[("proxy_audit.audit_id",)] == audit_id.encode()
    respond(s, 200, b'{"id": 1274}')
    assert s.downstream_header("x-proxy-audit-id") == audit_id
    assert s.downstream_body == b'{"id": 1274}'
    host.advance(7)
    s.finish()
    assert host.pending_calls() == [], "nothing leaves before the timer"
    events = shipped(host)
    assert [e["kind"] for e in events] == ["chain_start", "access"]
    for e in events:
        assert_schema_valid(e)
    check_chains(events)
    (e,) = completes(events)
    assert e["id"] == audit_id
    assert e["actor"] == {**e["actor"], "id": "alice", "type": "user", "verified": True, "source": "jwt_hs256",
                          "roles": ["physician"], "tenant": "clinic-7"}
    assert e["action"] == {"method": "GET", "path": "/patients/{id}?from", "verb": "READ"}
    assert e["target"]["resource_id"] == "patient:1274"
    assert (e["outcome"]["status_code"], e["outcome"]["duration_ms"]) == (200, 7), "the host's clock, not the machine's"
    assert e["source"] == {"address": "127.0.0.1", "request_id": "req-1", "user_agent": "wasm-host"}
    assert e["data"]["response"]["sha256"] == hashlib.sha256(b'{"id": 1274}').hexdigest()
    assert tok not in json.dumps(events) and "2020" not in json.dumps(e)
    assert host.metric("proxy_audit.requests") == 1
    assert host.metric("proxy_audit.events_delivered") == 2 and host.metric("proxy_audit.buffer_depth") == 0
    host.tick()
    assert host.pending_calls() == [], "acknowledged: nothing to resend"


# 4 ------------------------------------------------------------------------------------------
def test_json_body_is_redacted_on_the_route_configured_to_redact(make_host):
    cfg = harness.default_plugin_config(
        classification={"actions": {"pii": "tag"}},
        routes=[{"match": {"path_prefix": "/records/"}, "classification": {"actions": {"pii": "redact"}}}])
    host = make_host(cfg)
    doc = {"patient": {"email": EMAIL, "note": f"SSN {SSN} on file"}, "n": 1}
    s = host.new_stream()
    assert post_json(s, "/records/7", doc, chunk=16)[-1] == CONTINUE
    assert s.upstream_header("content-length") is None, "a body that may change loses its length"
    forwarded = json.loads(bytes(s.upstream_body))  # still JSON
    assert forwarded == {"patient": {"email": "[REDACTED:EMAIL]", "note": "SSN [REDACTED:US_SSN] on file"}, "n": 1}
    respond(s, 201)
    s.finish()
    tagged = host.new_stream()
    post_json(tagged, "/notes", doc)
    assert json.loads(bytes(tagged.upstream_body)) == doc, "other routes only tag"
    respond(tagged, 201)
    tagged.finish()
    events = shipped(host)
    e, t = completes(events)
    assert_schema_valid(e)
    found = {f["entity"]: f for f in e["data"]["request"]["findings"]}
    assert found["email"] == {"entity": "email", "category": "pii", "count": 1, "action": "redacted",
                              "locations": ["$.patient.email"]}
    assert found["us_ssn"]["action"] == "redacted" and found["us_ssn"]["locations"] == ["$.patient.note"]
    assert {f["action"] for f in t["data"]["request"]["findings"]} == {"tagged"}
    dump = json.dumps(events)
    assert EMAIL not in dump and SSN not in dump


# 5 ------------------------------------------------------------------------------------------
def test_card_under_a_block_policy_gets_403_with_the_contract_error(make_host):
    host = make_host(harness.default_plugin_config(classification={"actions": {"pci": "block"}}))
    s = host.new_stream()
    s.request_headers(request("POST", "/pay", [("content-type", "application/json"), ("x-request-id", "blk-1")]))
    assert s.request_body(json.dumps({"card": CARD, "amount": 5}).encode(), end_of_stream=True) == PAUSE
    reply = s.local_response
    assert reply is not None and reply.status == 403
    assert wasmhost.header(reply.headers, "content-type") == "application/json"
    audit_id = wasmhost.header(reply.headers, "x-proxy-audit-id")
    assert json.loads(reply.body) == {"error": {
        "code": "pci_in_request", "request_id": "blk-1", "audit_id": audit_id,
        "message": "The request carries data that policy does not allow to be forwarded."}}
    assert s.upstream_body == b"", "nothing of the body went upstream"
    s.finish()
    (e,) = completes(shipped(host))
    assert_schema_valid(e)
    assert (e["id"], e["kind"], e["outcome"]["status_code"], e["outcome"]["reason"]) == \
        (audit_id, "blocked", 403, "pci_in_request")
    assert e["data"]["request"]["findings"][0]["action"] == "blocked"
    assert CARD.replace(" ", "") not in json.dumps(e) and host.metric("proxy_audit.blocked") == 1


# 6 ------------------------------------------------------------------------------------------
def openai_sse(pieces, usage):
    base = {"id": "chatcmpl-wh", "object": "chat.completion.chunk", "created": 1700000000, "model": "gpt-4o-mini-2024-07-18"}
    frames = [{**base, "choices": [{"index": 0, "delta": {"content": p}, "finish_reason": None}]} for p in pieces]
    frames += [{**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}]
    frames += [{**base, "choices": [], "usage": usage}] if usage else []
    return ("".join(f"data: {json.dumps(f)}\n\n" for f in frames) + "data: [DONE]\n\n").encode()


def test_openai_stream_in_small_chunks_gives_exact_usage(make_host):
    host = make_host()
    s = host.new_stream()
    body = {"model": "gpt-4o-mini", "stream": True, "messages": [{"role": "user", "content": "Sky colour?"}]}
    post_json(s, "/v1/chat/completions", body)
    assert json.loads(bytes(s.upstream_body))["stream_options"] == {"include_usage": True}, "stream_usage: inject"
    usage = {"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19,
             "prompt_tokens_details": {"cached_tokens": 2}, "completion_tokens_details": {"reasoning_tokens": 0}}
    sse = openai_sse(["The sky", " is blue."], usage)
    s.response_headers([(":status", "200"), ("content-type", "text/event-stream")])
    for i in range(0, len(sse), 7):
        assert s.response_body(sse[i:i + 7], end_of_stream=i + 7 >= len(sse)) == CONTINUE
        host.advance(1)
    assert bytes(s.downstream_body) == openai_sse(["The sky", " is blue."], None), \
        "a clean stream passes unchanged, but for the usage chunk the filter asked for"
    s.finish()
    (e,) = completes(shipped(host))
    assert_schema_valid(e)
    ai = e["ai"]
    assert (ai["provider"], ai["operation"], ai["stream"], ai["request_model"], ai["response_model"]) == \
        ("openai_compatible", "chat", True, "gpt-4o-mini", "gpt-4o-mini-2024-07-18")
    assert ai["usage"] == {"input_tokens": 12, "output_tokens": 7, "cached_input_tokens": 2,
                           "reasoning_tokens": 0, "total_tokens": 19}
    assert ai["finish_reasons"] == ["stop"]
    assert ai["completion_sha256"] == hashlib.sha256(b"The sky is blue.").hexdigest()
    assert s.filter_state[("proxy_audit.ai_input_tokens",)] == b"12"
    assert host.metric("proxy_audit.ai.openai_compatible.gpt-4o-mini-2024-07-18.output_tokens") == 7


# 7 ------------------------------------------------------------------------------------------
def test_batch_refused_with_503_is_resent_on_a_later_tick(make_host):
    host = make_host()
    served_get(host, "/retry/1")
    first = shipped(host, status=503)
    assert host.metric("proxy_audit.batches_failed") == 1
    assert "retried" in host.log_text()
    again = resent_batch(host)
    assert [json.loads(line) for line in again.body.decode().splitlines()] == first, "the same events, byte for byte"
    host.respond(again, 204)
    assert host.metric("proxy_audit.events_retried") == 2 and host.metric("proxy_audit.events_delivered") == 2


def test_batch_that_times_out_or_is_reset_is_resent(make_host):
    host = make_host(harness.default_plugin_config(audit={"exporter": {"cluster": "audit_sink", "timeout_ms": 250}}))
    host.tick()
    (call,) = host.pending_calls()
    assert call.timeout_ms == 250
    host.advance(250)  # the host fails the call as Envoy does: no response headers
    assert call.done and host.metric("proxy_audit.batches_failed") == 1
    resent = resent_batch(host)
    assert resent.body == call.body
    host.respond(resent, None)  # a reset
    assert host.metric("proxy_audit.batches_failed") == 2


def test_write_ahead_waits_for_the_begin_record_then_resumes(make_host):
    host = make_host(harness.default_plugin_config(audit={"delivery": "write_ahead", "on_failure": "closed"}))
    s = host.new_stream()
    assert s.request_headers(request("DELETE", "/patients/3", [("x-request-id", "wa-1")]), end_of_stream=True) == PAUSE
    assert s.upstream_headers is None, "held until the log service acknowledges"
    (begin_call,) = host.pending_calls()
    assert begin_call.context_id == s.id, "sent from the request's own context"
    (begin,) = [json.loads(line) for line in begin_call.body.decode().splitlines()]
    assert (begin["phase"], begin["source"]["request_id"]) == ("begin", "wa-1")
    host.respond(begin_call, 200)
    assert s.resumed == [wasmhost.HTTP_REQUEST] and s.upstream_header("x-proxy-audit-id")
    respond(s, 204)
    s.finish()
    events = shipped(host)
    assert [(e["kind"], e.get("phase")) for e in events] == [("chain_start", None), ("access", "complete")]
    # Log service down: fail closed with the contract's 503.
    s2 = host.new_stream()
    s2.request_headers(request("DELETE", "/patients/4"), end_of_stream=True)
    host.respond(host.pending_calls()[0], 503)
    assert s2.local_response.status == 503 and s2.upstream_headers is None
    assert json.loads(s2.local_response.body)["error"]["code"] == "audit_unavailable"
    s2.finish()


def rfc3339_ms(text):
    """Milliseconds since the epoch of an event's `time` (`YYYY-MM-DDTHH:MM:SS.mmmZ`)."""
    t = datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)
    return (t - datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)) // datetime.timedelta(milliseconds=1)


# 8 ------------------------------------------------------------------------------------------
def test_two_hosts_interleaved_share_nothing(make_host):
    a = make_host()
    b = make_host(harness.default_plugin_config(classification={"actions": {"pii": "block"}}), now_ms=1_000_000)
    sa, sb = a.new_stream(), b.new_stream()
    assert sa.id == sb.id, "same context ids in both VMs"
    sa.request_headers(request("POST", "/a", [("content-type", "application/json")]))
    sb.request_headers(request("POST", "/b", [("content-type", "application/json")]))
    body = json.dumps({"mail": EMAIL}).encode()
    assert sb.request_body(body, end_of_stream=True) == PAUSE and sb.local_response.status == 403
    assert sa.request_body(body, end_of_stream=True) == CONTINUE and sa.local_response is None
    assert json.loads(bytes(sa.upstream_body)) == {"mail": "[REDACTED:EMAIL]"}
    respond(sa)
    sa.finish()
    sb.finish()
    ea, eb = completes(shipped(a)), completes(shipped(b))
    assert [e["kind"] for e in ea] == ["access"] and [e["kind"] for e in eb] == ["blocked"]
    assert ea[0]["chain"]["emitter"] != eb[0]["chain"]["emitter"], "each VM is its own emitter"
    # Each VM reads its own host's clock: a's started at the wall clock, b's at 1,000,000 ms.
    assert a.boot_ns // 1_000_000 <= rfc3339_ms(ea[0]["time"]) <= a.now_ns // 1_000_000, (ea[0]["time"], a.boot_ns)
    assert eb[0]["time"].startswith("1970-01-01T00:16:40")
    assert (a.metric("proxy_audit.blocked"), b.metric("proxy_audit.blocked")) == (0, 1)
    assert (len(a.http_calls), len(b.http_calls)) == (1, 1)


# Found with this host -------------------------------------------------------------------------
def test_header_value_that_is_not_utf8_is_audited_not_fatal(make_host):
    """HTTP/1 lets header values carry obs-text bytes (Envoy passes `caf\\xe9` through); the
    SDK's string getters unwrap a UTF-8 conversion, which crashed the VM for every later request."""
    host = make_host()
    s = host.new_stream()
    assert s.request_headers(request("GET", "/x", [("user-agent", b"caf\xe9 client/1.0")]), end_of_stream=True) == CONTINUE
    respond(s, 200, b"{}")
    s.finish()
    (e,) = completes(shipped(host))
    assert_schema_valid(e)
    assert e["source"]["user_agent"] == "caf\ufffd client/1.0"


def test_host_without_filter_state_still_gets_events(make_host):
    """ABI 0.2.1 lets a host refuse proxy_set_property (NOT_FOUND); Envoy-only filter state
    is a nicety for access logs, so the filter must not depend on it (the SDK's setter panics)."""
    host = make_host(filter_state=False)
    s = host.new_stream()
    assert s.request_headers(request("GET", "/patients/9", [("authorization", f"Bearer {token(host)}")]),
                             end_of_stream=True) == CONTINUE
    respond(s, 200, b"{}")
    s.finish()
    assert s.filter_state == {}
    (e,) = completes(shipped(host))
    assert e["actor"]["id"] == "alice" and e["id"] == s.upstream_header("x-proxy-audit-id")


def test_blocked_stream_releases_nothing_after_its_error_event(make_host):
    host = make_host(harness.default_plugin_config(classification={"actions": {"secret": "block"}}))
    s = host.new_stream()
    post_json(s, "/v1/chat/completions", {"model": "m", "stream": True, "messages": [{"role": "user", "content": "hi"}]})
    leaked = "AKIAIOSFODNN7EXAMPLE"
    tail = [f" and then sentence number {k} of a long answer" for k in range(40)]
    sse = openai_sse(["Your key: ", leaked] + tail + [" and still more"], None)
    s.response_headers([(":status", "200"), ("content-type", "text/event-stream")])
    for i in range(0, len(sse), 40):
        s.response_body(sse[i:i + 40], end_of_stream=i + 40 >= len(sse))
    out = bytes(s.downstream_body)
    s.finish()
    assert b"event: error" in out and leaked.encode() not in out
    assert b"still more" not in out, "chunks after the block must not reach the client"
    (e,) = completes(shipped(host))
    assert (e["kind"], e["outcome"]["reason"]) == ("blocked", "secret_in_response")


def test_a_body_ended_by_trailers_is_scanned_before_it_is_released(make_host):
    host = make_host()
    s = host.new_stream()
    body = json.dumps({"note": f"SSN {SSN} on file"}).encode()
    s.request_headers(request("POST", "/records/9", [("content-type", "application/json")]))
    assert s.request_body(body, end_of_stream=False) == PAUSE
    assert s.request_trailers([("x-checksum", "abc")]) == CONTINUE
    forwarded = bytes(s.upstream_body)
    assert SSN.encode() not in forwarded and json.loads(forwarded) == {"note": "SSN [REDACTED:US_SSN] on file"}
    respond(s)
    s.finish()
    (e,) = completes(shipped(host))
    assert e["data"]["request"]["scanned"] is True
    assert [f["entity"] for f in e["data"]["request"]["findings"]] == ["us_ssn"]


def test_a_retired_plugin_ships_what_it_holds_before_it_goes(make_host):
    host = make_host()
    served_get(host, "/last/1")
    assert host.pending_calls() == [], "nothing ships before a tick"
    assert host.retire() is False, "events are buffered: the root context asks to stay"
    (call,) = host.pending_calls()
    host.respond(call, 503)
    assert not host.retired, "a failed batch is retried while draining"
    again = resent_batch(host)
    assert again.body == call.body
    host.respond(again, 200)
    assert host.retired, "proxy_done once everything is delivered"
    assert [e["action"]["path"] for e in completes([json.loads(l) for l in again.body.splitlines()])] == ["/last/1"]


def test_a_retired_plugin_gives_up_after_the_drain_time(make_host):
    host = make_host()
    served_get(host, "/last/2")
    assert host.retire() is False
    for _ in range(200):
        for c in host.pending_calls():
            host.respond(c, 503)
        host.tick(100)
        if host.retired:
            break
    assert host.retired and "undelivered" in host.log_text()


def test_an_event_stream_request_is_scanned_and_an_unfinished_body_is_not_called_scanned(make_host):
    host = make_host()
    s = host.new_stream()
    s.request_headers(request("POST", "/ingest", [("content-type", "text/event-stream")]))
    s.request_body(f"data: {{\"note\": \"SSN {SSN}\"}}\n\n".encode(), end_of_stream=True)
    assert SSN.encode() not in bytes(s.upstream_body)
    respond(s)
    s.finish()
    cut = host.new_stream()
    cut.request_headers(request("POST", "/upload", [("content-type", "application/json")]))
    cut.request_body(b'{"note": "half', end_of_stream=False)
    cut.finish()  # the client went away before the end of its body
    done = {e["action"]["path"]: e for e in completes(shipped(host))}
    assert done["/ingest"]["data"]["request"]["scanned"] is True
    assert [f["entity"] for f in done["/ingest"]["data"]["request"]["findings"]] == ["us_ssn"]
    assert (done["/upload"]["data"]["request"]["scanned"], done["/upload"]["data"]["request"]["skipped"]) == \
        (False, "incomplete")


# The singleton shipping service outside Envoy: two VMs of the same .wasm on one node, a worker
# (root id proxy_audit) and the shipper (root id proxy_audit_shipper, vm_id proxy_audit_shipper),
# sharing the host's queues.

QUEUE = {"vm_id": "proxy_audit_shipper", "name": "proxy_audit_events"}


def worker_and_shipper(make_host, shipper_exporter=None):
    queues = wasmhost.SharedQueues()
    shipper = make_host({"audit": {"exporter": {"cluster": "audit_sink", "shared_queue": QUEUE, **(shipper_exporter or {})}}},
                        root_id="proxy_audit_shipper", vm_id="proxy_audit_shipper", queues=queues)
    cfg = harness.default_plugin_config()
    cfg["audit"]["exporter"]["shared_queue"] = QUEUE
    worker = make_host(cfg, queues=queues)
    return worker, shipper


def test_worker_hands_events_to_the_shipper_which_ships_them(make_host):
    worker, shipper = worker_and_shipper(make_host)
    ids = [served_get(worker, f"/q/{i}").downstream_header("x-proxy-audit-id") for i in range(3)]
    worker.tick()
    assert worker.pending_calls() == [], "the worker POSTs nothing itself"
    assert worker.metric("proxy_audit.events_handed_off") == 4  # chain_start + 3
    shipper.deliver_queue_ready()
    events = shipped(shipper)
    assert {e["id"] for e in events if e["kind"] == "access"} == set(ids)
    chains = check_chains(events)
    assert len(chains) == 2, "the worker's chain and the shipper's own"
    assert shipper.metric("proxy_audit.shipper.events_received") == 4
    assert shipper.metric("proxy_audit.shipper.events_delivered") == 5


def test_shipper_overflow_is_declared_for_the_worker_chain(make_host):
    worker, shipper = worker_and_shipper(make_host, {"max_batch_events": 2, "max_buffered_events": 4})
    for i in range(10):
        served_get(worker, f"/q/{i}")
    worker.tick()
    shipper.deliver_queue_ready()
    delivered = []
    for _ in range(10):
        shipper.tick()
        for c in shipper.pending_calls():
            delivered += [json.loads(line) for line in c.body.decode().splitlines()]
            shipper.respond(c, 200)
    losses = [e for e in delivered if e["kind"] == "loss"]
    worker_chain = next(e["chain"]["emitter"] for e in delivered if e["kind"] == "access")
    declared = [e for e in losses if e["trail"].get("emitter") == worker_chain]
    assert declared, losses
    got = {e["chain"]["seq"] for e in delivered if e["chain"]["emitter"] == worker_chain}
    for e in declared:
        got |= set(range(e["trail"]["first_seq"], e["trail"]["last_seq"] + 1))
    assert got == set(range(11)), "every worker seq delivered or declared lost"


def test_shipper_ignores_what_is_not_a_handoff(make_host):
    worker, shipper = worker_and_shipper(make_host)
    qid = shipper.queues.by_key[("proxy_audit_shipper", "proxy_audit_events")]
    for junk in (b"", b"\xff\xfe", b'{"kind":"access"}', b'proxy-audit-handoff/1 "x"\nnot-a-seq {}'):
        shipper.queues.items[qid].append(junk)
    shipper.queue_ready.append(qid)
    shipper.deliver_queue_ready()
    assert shipper.metric("proxy_audit.shipper.messages_rejected") == 4
    served_get(worker, "/after")
    worker.tick()
    shipper.deliver_queue_ready()
    assert any(e["kind"] == "access" for e in shipped(shipper))


def test_without_shared_queues_the_shipper_refuses_and_workers_ship(make_host):
    shipper = make_host(False, root_id="proxy_audit_shipper", vm_id="proxy_audit_shipper", shared_queues=False)
    assert not shipper.start({"audit": {"exporter": {"shared_queue": QUEUE}}})
    assert "refused to register shared queue" in shipper.log_text()
    cfg = harness.default_plugin_config()
    cfg["audit"]["exporter"]["shared_queue"] = QUEUE
    worker = make_host(cfg, shared_queues=False)
    audit_id = served_get(worker, "/alone").downstream_header("x-proxy-audit-id")
    assert audit_id in {e["id"] for e in shipped(worker)}
    assert "this worker ships its own events" in worker.log_text()


def test_a_retiring_worker_ships_its_own_events_not_through_the_shipper(make_host):
    """A hand-off is not an acknowledgement, and the shipper may be retiring too: a worker that
    Envoy retires POSTs what it still holds and waits for the log service."""
    worker, shipper = worker_and_shipper(make_host)
    audit_id = served_get(worker, "/last").downstream_header("x-proxy-audit-id")
    assert worker.retire() is False, "holds events: drains first"
    (call,) = worker.pending_calls()
    assert audit_id in call.body.decode()
    assert shipper.queues.items[shipper.queues.by_key[("proxy_audit_shipper", "proxy_audit_events")]] == []
    worker.respond(call, 200)
    assert worker.retired


def test_a_retiring_plugin_declares_a_drop_its_empty_buffer_still_owes(make_host):
    cfg = harness.default_plugin_config()
    cfg["audit"]["exporter"].update({"max_batch_events": 2, "max_buffered_events": 2})
    host = make_host(cfg)
    served_get(host, "/one")                 # chain_start + this: the buffer is full
    host.tick()
    (call,) = host.pending_calls()           # both in flight
    served_get(host, "/two")                 # dropped: nothing in the queue can make room
    host.respond(call, 200)                  # buffer empty, the drop not yet declared
    assert host.retire() is False, "a loss is still owed"
    (call,) = host.pending_calls()
    # The owed loss, then the chain's end record (nothing else was buffered to declare).
    loss, end = [json.loads(line) for line in call.body.decode().splitlines()]
    assert loss["kind"] == "loss" and (loss["trail"]["first_seq"], loss["trail"]["last_seq"]) == (2, 2)
    assert end["kind"] == "checkpoint" and end["trail"]["reason"] == "end" and end["trail"]["head_seq"] == 3
    host.respond(call, 200)
    assert host.retired


def test_reconfiguring_a_live_root_loses_nothing_and_settles_each_request_on_its_own_chain(make_host, tmp_path):
    """Re-configuring the root starts a new runtime (a new emitter); the old one's buffer is adopted
    by the new one, a request in flight during the change settles on the chain it started on, and
    the old chain ends with its end record once no request holds it."""
    host = make_host()
    before = served_get(host, "/before").downstream_header("x-proxy-audit-id")
    inflight = host.new_stream()
    inflight.request_headers(request("GET", "/inflight"), end_of_stream=True)
    cfg = harness.default_plugin_config()
    cfg["audit"]["checkpoint_interval_ms"] = 59_000
    assert host.reconfigure(cfg), host.log_text()
    after = served_get(host, "/after").downstream_header("x-proxy-audit-id")
    respond(inflight)
    inflight.finish()
    inflight_id = inflight.downstream_header("x-proxy-audit-id")
    delivered = []
    for _ in range(10):
        host.tick()
        for call in host.pending_calls():
            delivered += [json.loads(l) for l in call.body.decode().splitlines()]
            host.respond(call, 200)
    by_id = {e["id"]: e for e in delivered}
    assert {before, inflight_id, after} <= set(by_id), "every request's event was delivered"
    old, new = by_id[before]["chain"]["emitter"], by_id[after]["chain"]["emitter"]
    assert old != new, "a new configuration is a new emitter"
    assert by_id[inflight_id]["chain"]["emitter"] == old, "the request in flight settles on the chain it began on"
    ends = [e for e in delivered if e["chain"]["emitter"] == old and e.get("trail", {}).get("reason") == "end"]
    assert len(ends) == 1 and ends[0]["chain"]["seq"] == max(e["chain"]["seq"] for e in delivered if e["chain"]["emitter"] == old)
    trail = tmp_path / "trail.ndjson"
    trail.write_text("".join(json.dumps(e) + "\n" for e in delivered))
    p = subprocess.run([str(harness.ROOT / "target/release/proxy-audit"), "verify", str(trail)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 1 and f"OPEN emitter {new}:" in p.stdout and f"OPEN emitter {old}:" not in p.stdout, p.stdout
    p = subprocess.run([str(harness.ROOT / "target/release/proxy-audit"), "verify", "--live", str(trail)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout
