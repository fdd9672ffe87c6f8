"""Audit delivery and integrity through a real Envoy (concurrency 2): batching under load,
a failing log service, write-ahead delivery, OTLP, and `proxy-audit verify` on the trail."""
import json
import subprocess
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

import harness
from chaincheck import settled_chains
from conftest import assert_schema_valid
from test_skeleton import call

CLI = harness.ROOT / "target" / "release" / "proxy-audit"


def verify_cli(events, tmp_path, *extra):
    trail = tmp_path / "trail.ndjson"
    trail.write_text("".join(json.dumps(e) + "\n" for e in events))
    # Envoy is still running: its chains are open, and live.
    p = subprocess.run([str(CLI), "verify", "--live", *extra, str(trail)], capture_output=True, text=True, timeout=120)
    return p.returncode, p.stdout + p.stderr


def covered_by_losses(events):
    """Seqs per emitter: delivered, or declared lost by a loss event."""
    out = {}
    for e in events:
        em = e["chain"]["emitter"]
        out.setdefault(em, set()).add(e["chain"]["seq"])
        if e["kind"] == "loss":
            # The shipping service declares losses in the chain they happened to.
            target = e["trail"].get("emitter", em)
            out.setdefault(target, set()).update(range(e["trail"]["first_seq"], e["trail"]["last_seq"] + 1))
    return out


def outage_then_recovery(envoy, sink, events):
    """The log service answers 503 for 3 s and for at least 200 requests (more than the buffers
    hold, however slowly a loaded machine sends them), then recovers; 5 more requests. Returns the
    trail once everything sent has arrived or been declared lost."""
    sink.store.fail_status, sink.store.fail_until = 503, time.time() + 3600
    sent, start = 0, time.time()
    while time.time() < start + 3 or sent < 200:
        call(envoy.url, f"/during/{sent}")
        sent += 1
        time.sleep(0.01)
    sink.store.fail_until = time.time()
    time.sleep(0.5)
    for i in range(5):
        call(envoy.url, f"/after/{i}")
    sent += 5

    def settled():
        # Everything sent arrived or was declared lost, and no trail record is still on its way
        # (a checkpoint or loss event in the next batch would show as a gap).
        evs = events.all()
        got = {e["id"] for e in evs if e["kind"] == "access"}
        lost = sum(e["trail"]["lost_events"] for e in evs if e["kind"] == "loss")
        whole = all(seqs == set(range(max(seqs) + 1)) for seqs in covered_by_losses(evs).values())
        return len(got) + lost >= sent and whole and evs
    assert harness.wait_for(settled, 30)
    return events.all()


def test_600_concurrent_requests_give_600_events_and_valid_chains(envoy_factory, events, tmp_path):
    envoy = envoy_factory(concurrency=2)
    with ThreadPoolExecutor(16) as pool:
        ids = list(pool.map(lambda i: call(envoy.url, f"/load/{i}")[1]["x-proxy-audit-id"], range(600)))
    evs = events.wait_requests(600, timeout=60)
    assert len({e["id"] for e in evs}) == 600
    assert {e["id"] for e in evs} == set(ids)
    for e in evs[:20]:
        assert_schema_valid(e)
    settled_chains(events)
    rc, out = verify_cli(events.all(), tmp_path)
    assert rc == 0, out


def test_log_service_down_3s_then_recovering(envoy_factory, events, sink, tmp_path):
    cfg = harness.default_plugin_config()
    cfg["audit"]["exporter"].update({"max_buffered_events": 40, "max_batch_events": 10, "timeout_ms": 500})
    envoy = envoy_factory(cfg)
    evs = outage_then_recovery(envoy, sink, events)
    assert any(e["kind"] == "loss" for e in evs), "the overflow of 40 buffered events must be declared"
    for em, seqs in covered_by_losses(evs).items():
        gap = set(range(max(seqs) + 1)) - seqs
        mine = sorted((e["chain"]["seq"], e["kind"], e.get("trail")) for e in evs if e["chain"]["emitter"] == em)
        assert not gap, f"{em}: undeclared gap {sorted(gap)}: {mine[-40:]}"
    rc, out = verify_cli(evs, tmp_path)
    assert rc == 0 and "LOSS" in out, out
    stats = envoy.stats("proxy_audit")
    assert int(stats["wasmcustom.proxy_audit.events_dropped"]) >= 1


@pytest.mark.parametrize("shipper", [False, True], ids=["worker_ships", "singleton_shipper"])
def test_write_ahead_fail_closed_refuses_then_recovers(envoy_factory, events, sink, upstream, shipper):
    cfg = harness.default_plugin_config(audit={"delivery": "write_ahead", "on_failure": "closed"})
    if shipper:
        # `begin` still leaves from the worker (it must see the acknowledgement); `complete`
        # events go through the shipping service.
        cfg["audit"]["exporter"]["shared_queue"] = SHARED_QUEUE
    envoy = envoy_factory(cfg, shipper=shipper_config() if shipper else None)
    status, _, _ = call(envoy.url, "/ledger/1", "POST", {"content-type": "application/json", "x-request-id": "wa-1"}, b'{"amount": 5}')
    assert status == 200
    begin = [e for e in events.all() if e.get("phase") == "begin"]
    assert len(begin) == 1 and begin[0]["source"]["request_id"] == "wa-1", "begin acknowledged before forwarding"
    assert_schema_valid(begin[0])
    # The log service refuses until the refused request has been answered (no guessed window).
    sink.store.fail_status, sink.store.fail_until = 503, time.time() + 3600
    status, h, body = call(envoy.url, "/ledger/2", "POST", {"content-type": "application/json", "x-request-id": "wa-2"}, b'{"amount": 6}')
    sink.store.fail_until = time.time()
    assert status == 503 and json.loads(body)["error"]["code"] == "audit_unavailable"
    seen = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{upstream.server_address[1]}/__requests", timeout=10).read())
    assert [r["path"] for r in seen] == ["/ledger/1"], "nothing forwarded while the trail is down"
    status, _, _ = call(envoy.url, "/ledger/3", "POST", {"content-type": "application/json"}, b'{"amount": 7}')
    assert status == 200
    evs = events.wait_requests(5, timeout=20)
    refused = [e for e in evs if e["source"]["request_id"] == "wa-2" and e["phase"] == "complete"]
    assert refused and refused[0]["outcome"]["reason"] == "audit_unavailable" and refused[0]["outcome"]["status_code"] == 503
    settled_chains(events)
    if shipper:
        assert counter(envoy, "events_handed_off") >= 3 and counter(envoy, "shipper.events_delivered") >= 3


def test_write_ahead_fail_open_proceeds(envoy_factory, events, sink, upstream):
    cfg = harness.default_plugin_config(audit={"delivery": "write_ahead", "on_failure": "open"})
    envoy = envoy_factory(cfg)
    # The log service refuses everything until the request has been answered.
    sink.store.fail_status, sink.store.fail_until = 503, time.time() + 3600
    status, _, _ = call(envoy.url, "/open/1", headers={"x-request-id": "open-1"})
    sink.store.fail_until = time.time()
    assert status == 200
    # The begin POST did fail: the log service refused a batch holding it, and the filter counted it.
    with sink.store.lock:
        refused = [e for batch in sink.store.refused_batches for e in batch or []]
    assert [(e["phase"], e["source"]["request_id"]) for e in refused if e["kind"] == "access"] == [("begin", "open-1")], refused
    assert counter(envoy, "write_ahead_failed") == 1
    seen = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{upstream.server_address[1]}/__requests", timeout=10).read())
    assert [r["path"] for r in seen] == ["/open/1"], "forwarded all the same"
    # Both records reach the trail once the log service is back (the begin by retry).
    evs = events.wait_requests(2, timeout=20)
    assert sorted((e["phase"], e["source"]["request_id"]) for e in evs) == [("begin", "open-1"), ("complete", "open-1")]
    settled_chains(events)


def test_otlp_batches_parse_with_the_official_protobuf_definitions(envoy_factory, events, sink, tmp_path):
    cfg = harness.default_plugin_config()
    cfg["audit"]["exporter"].update({"format": "otlp", "path": "/v1/logs"})
    envoy = envoy_factory(cfg)
    tok = __import__("test_skeleton").token("alice")
    call(envoy.url, "/otlp/1", headers={"authorization": f"Bearer {tok}"})
    events.wait_requests(1)
    raw = [b for b in sink.store.raw_batches if b["path"] == "/v1/logs"]
    assert raw and all(b["content_type"] == "application/json" for b in raw)
    records = []
    for b in raw:
        req = json_format.Parse(b["body"], ExportLogsServiceRequest())
        for rl in req.resource_logs:
            for sl in rl.scope_logs:
                records.extend(sl.log_records)
    access = [r for r in records if r.event_name == "proxy_audit.access"]
    assert len(access) == 1
    rec = access[0]
    ev = json.loads(rec.body.string_value)
    attrs = {a.key: a.value for a in rec.attributes}
    assert attrs["user.id"].string_value == "alice"
    assert attrs["http.request.method"].string_value == "GET"
    assert attrs["http.response.status_code"].int_value == 200
    assert rec.time_unix_nano // 1_000_000 > 0 and ev["id"] == attrs["proxy_audit.event.id"].string_value
    # verify reads OTLP-JSON as the Collector's file exporter writes it (one request per line).
    otlp_file = tmp_path / "otlp.jsonl"
    otlp_file.write_text("".join(b["body"].strip() + "\n" for b in raw))
    p = subprocess.run([str(CLI), "verify", "--live", str(otlp_file)], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr


@pytest.mark.parametrize("tamper, problem", [("modify", "modified"), ("delete", "missing"), ("relink", "bad prev")])
def test_tampered_trails_fail_verify_at_the_right_seq(envoy_factory, events, tmp_path, tamper, problem):
    envoy = envoy_factory(concurrency=1)
    for i in range(6):
        call(envoy.url, f"/t/{i}")
    events.wait_requests(6)
    evs = [e for e in events.all()]
    worker = max({e["chain"]["emitter"] for e in evs}, key=lambda em: sum(1 for e in evs if e["chain"]["emitter"] == em))
    chain = sorted([e for e in evs if e["chain"]["emitter"] == worker], key=lambda e: e["chain"]["seq"])
    target = chain[3]
    if tamper == "modify":
        target["outcome"]["status_code"] = 500
    elif tamper == "delete":
        evs.remove(target)
    else:
        target["chain"]["prev"] = "f" * 64
    rc, out = verify_cli(evs, tmp_path)
    assert rc == 1, out
    assert f"seq 3: {problem}" in out, out
    # Tail truncation is caught against a checkpoint.
    head = chain[-1]
    rest = [e for e in events.all() if e is not head and e["id"] != head["id"]]
    rc, out = verify_cli(rest, tmp_path, "--checkpoint", f"{worker}@{head['chain']['seq']}:{head['chain']['hash']}")
    assert rc == 1 and "truncated" in out, out


def test_filter_state_copy_for_access_logs(envoy_factory, events):
    envoy = envoy_factory(access_log=True)
    tok = __import__("test_skeleton").token("alice")
    _, h, _ = call(envoy.url, "/fs", headers={"authorization": f"Bearer {tok}"})
    (ev,) = events.wait_requests(1)
    assert harness.wait_for(lambda: envoy.access_log_path.exists() and envoy.access_log_path.read_text().strip(),
                            harness.periods(harness.FILE_FLUSH_MS))
    line = json.loads(envoy.access_log_path.read_text().strip().splitlines()[-1])
    assert line["audit_id"] == h["x-proxy-audit-id"] == ev["id"]
    assert line["actor"] == "alice"
    assert json.loads(line["event"]) == ev, "the access-log copy is the shipped event, hash included"


# The optional singleton shipping service (envoy.bootstrap.wasm, root id proxy_audit_shipper):
# workers hand their sealed events over an Envoy shared queue; it ships them from the main thread.

SHARED_QUEUE = {"vm_id": harness.SHIPPER_ROOT_ID, "name": "proxy_audit_events"}


def queue_config(**exporter):
    cfg = harness.default_plugin_config()
    cfg["audit"]["exporter"]["shared_queue"] = SHARED_QUEUE
    cfg["audit"]["exporter"].update(exporter)
    return cfg


def shipper_config(**exporter):
    ex = {"cluster": "audit_sink", "flush_interval_ms": 100, "max_batch_events": 100, "shared_queue": SHARED_QUEUE}
    return {"audit": {"exporter": {**ex, **exporter}}}


def counter(envoy, name):
    return int(envoy.stats("proxy_audit").get(f"wasmcustom.proxy_audit.{name}", "0") or 0)


def test_singleton_shipper_carries_every_worker_event(envoy_factory, events, tmp_path):
    envoy = envoy_factory(queue_config(), concurrency=2, shipper=shipper_config())
    with ThreadPoolExecutor(16) as pool:
        ids = list(pool.map(lambda i: call(envoy.url, f"/shipped/{i}")[1]["x-proxy-audit-id"], range(600)))
    evs = events.wait_requests(600, timeout=60)
    assert {e["id"] for e in evs} == set(ids)
    settled_chains(events)
    rc, out = verify_cli(events.all(), tmp_path)
    assert rc == 0, out
    # The workers handed everything to the shipper and POSTed nothing themselves.
    shipper_starts = [e for e in events.all() if e["kind"] == "chain_start" and "/proxy_audit_shipper/" in e["chain"]["emitter"]]
    assert len(shipper_starts) == 1, "the shipping service is an emitter of its own"
    assert harness.wait_for(lambda: counter(envoy, "shipper.events_delivered") >= 600 + 2, 10)
    assert counter(envoy, "events_handed_off") >= 600
    assert counter(envoy, "events_delivered") == 0
    assert "no shipping service queue" not in envoy.log()


def test_shipper_outage_losses_are_declared_for_the_worker_chains(envoy_factory, events, sink, tmp_path):
    envoy = envoy_factory(queue_config(), concurrency=2,
                          shipper=shipper_config(max_buffered_events=40, max_batch_events=10, timeout_ms=500))
    evs = outage_then_recovery(envoy, sink, events)
    worker_chains = {e["chain"]["emitter"] for e in evs if e["kind"] == "access"}
    declared_for = {e["trail"].get("emitter") for e in evs if e["kind"] == "loss"}
    assert declared_for & worker_chains, f"the shipper must declare the workers' lost events: {declared_for}"
    for em, seqs in covered_by_losses(evs).items():
        assert seqs == set(range(max(seqs) + 1)), f"{em}: undeclared gap"
    rc, out = verify_cli(evs, tmp_path)
    assert rc == 0 and "declared by" in out, out
    # Without the shipper's loss events the worker chains have undeclared gaps.
    rc, out = verify_cli([e for e in evs if "emitter" not in e.get("trail", {})], tmp_path)
    assert rc == 1 and "missing" in out, out
    assert counter(envoy, "shipper.events_dropped") >= 1


def test_without_the_shipper_each_worker_ships_its_own_events(envoy_factory, events, tmp_path):
    envoy = envoy_factory(queue_config(), concurrency=2)
    for i in range(10):
        call(envoy.url, f"/alone/{i}")
    assert len(events.wait_requests(10)) == 10
    settled_chains(events)
    assert "no shipping service queue" in envoy.log()
    assert counter(envoy, "events_delivered") >= 10 and counter(envoy, "events_handed_off") == 0
