"""The README's examples are run: its plugin config, its event, its CLI lines, its key table."""
import hashlib
import json
import re
import subprocess

import pytest

import harness
from chaincheck import event_hash
from conftest import SCHEMA_PATH, assert_schema_valid

README = (harness.ROOT / "README.md").read_text()
SHARED_SCHEMA = harness.ROOT.parent / "shared" / "spec" / "audit-event.schema.json"
# The SHA-256 of the contract's schema (shared/spec/audit-event.schema.json), committed beside the
# copy: a clean clone without shared/ still checks the copy against it.
SCHEMA_DIGEST = SCHEMA_PATH.with_name(SCHEMA_PATH.name + ".sha256")
# What differs from one demo run to the next in the README's event: ids, time, chain links, the
# request id, the duration, the digest of the echoed response (it carries the request id), the port.
PER_RUN = [("id",), ("time",), ("chain", "emitter"), ("chain", "hash"), ("chain", "prev"), ("source", "request_id"),
           ("outcome", "duration_ms"), ("data", "response", "sha256")]


def block(tag):
    m = re.search(rf"<!-- readme-test: {tag} -->\n```\w*\n(.*?)```", README, re.S)
    assert m, f"README block {tag} missing"
    return m.group(1)


def leaf_paths(obj, prefix=""):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from leaf_paths(v, f"{prefix}.{k}" if prefix else k)
    elif isinstance(obj, list) and obj and isinstance(obj[0], dict) and prefix != "routes":
        yield prefix + "[]"
    else:
        yield prefix


def test_the_first_lines_are_the_two_commands():
    first = README.split("```sh\n", 1)[1].split("```", 1)[0].splitlines()
    assert [l.split()[0] for l in first] == ["scripts/demo", "scripts/test"]
    assert "scripts/test" in (harness.ROOT / ".ci" / "run").read_text()


def without_per_run_values(event):
    e = json.loads(json.dumps(event))
    for path in PER_RUN:
        node = e
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = "<per run>"
    host, _, _port = e["target"]["authority"].rpartition(":")
    e["target"]["authority"] = f"{host}:<port>"
    return e


def test_the_demo_runs_and_its_trail_verifies(tmp_path):
    """What `scripts/demo` runs after its setup (the setup is `scripts/bootstrap`, done by `scripts/test`).
    It uses envoy/envoy.yaml's ports when they are free, other free ports when not."""
    import sys
    trail = tmp_path / "trail.ndjson"
    p = subprocess.run([sys.executable, str(harness.ROOT / "examples" / "demo.py"), "--trail", str(trail)],
                       capture_output=True, text=True, timeout=180, cwd=harness.ROOT)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    assert p.stdout.count("OK: every chain holds") == 2 and '"kind": "access"' in p.stdout, p.stdout[-2000:]
    # jwt_authn verified the tokens; the forged one was denied and still audited; the events came
    # through the singleton shipping service, which is an emitter of its own.
    assert '"source": "jwt_authn"' in p.stdout and '"kind": "denied"' in p.stdout, p.stdout[-2000:]
    assert "emitter envoy/proxy_audit_shipper/" in p.stdout, p.stdout[-2000:]
    # The README's event is this run's event for the same request, but for what differs per run.
    events = [json.loads(line) for line in trail.read_text().splitlines()]
    (demo,) = [e for e in events if e["kind"] == "access" and e["action"]["path"] == "/patients/{id}/records?from"]
    assert without_per_run_values(json.loads(block("event"))) == without_per_run_values(demo), \
        "README event is stale; the demo's:\n" + json.dumps(demo, indent=2, sort_keys=True)


def test_readme_config_is_valid_and_runs_in_envoy(tmp_path, sink, upstream, events):
    """The README's complete config, as written, in a real Envoy: its identity, resources, purpose,
    per-route rules, actions and exporter each show in what the requests get and the events say."""
    from test_skeleton import call, token
    cfg = json.loads(block("plugin-config"))
    f = tmp_path / "cfg.json"
    f.write_text(json.dumps(cfg))
    p = subprocess.run([str(harness.ROOT / "target/release/proxy-audit"), "check-config", str(f)], capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0, p.stdout
    alice = token("alice", roles=["physician"], tenant="clinic-7")
    json_ct = {"content-type": "application/json"}
    with harness.Envoy(cfg, upstream.server_address[1], sink.server_address[1]) as envoy:
        read = call(envoy.url, "/patients/1274", headers={"authorization": f"Bearer {alice}", "x-purpose-of-use": "treatment"})
        service = call(envoy.url, "/records/9", "POST", {**json_ct, "authorization": f"Bearer {token('svc-batch')}"}, b"{}")
        pseudonymized = call(envoy.url, "/v1/notes", "POST", json_ct, json.dumps({"q": "mail jane.doe@example.com"}).encode())
        secret = call(envoy.url, "/notes", "POST", json_ct, json.dumps({"key": "AKIAIOSFODNN7EXAMPLE"}).encode())
        evs = {e["action"]["path"]: e for e in events.wait_requests(4, timeout=harness.periods(cfg["audit"]["exporter"]["flush_interval_ms"]))}
    assert [r[0] for r in (read, service, pseudonymized, secret)] == [200, 403, 200, 403]
    e = evs["/patients/{id}"]
    assert (e["actor"]["id"], e["actor"]["source"], e["actor"]["roles"], e["actor"]["tenant"]) == ("alice", "jwt_hs256", ["physician"], "clinic-7")
    assert (e["target"]["resource_id"], e["purpose"]) == ("patient:1274", "treatment")
    # /records/ requires an individual: a service without an on-behalf-of user is refused.
    e = evs["/records/9"]
    assert (e["kind"], e["actor"]["type"], e["outcome"]["status_code"]) == ("denied", "service", 403)
    assert json.loads(service[2])["error"]["code"] == e["outcome"]["reason"]
    # /v1/ pseudonymizes personal data; elsewhere a secret blocks the request.
    (forwarded,) = [r for r in upstream.state["requests"] if r["path"] == "/v1/notes"]
    assert "jane.doe" not in forwarded["body"] and re.search(r"pseu_[0-9a-f]{16}", forwarded["body"])
    assert [(f["entity"], f["action"]) for f in evs["/v1/notes"]["data"]["request"]["findings"]] == [("email", "pseudonymized")]
    assert (evs["/notes"]["kind"], evs["/notes"]["outcome"]["reason"]) == ("blocked", "secret_in_request")
    assert "/notes" not in [r["path"] for r in upstream.state["requests"]]
    # The exporter POSTed NDJSON to its path.
    with sink.store.lock:
        assert {(b["path"], b["content_type"]) for b in sink.store.raw_batches} == {("/v1/events", "application/x-ndjson")}


def test_every_config_key_is_in_the_reference_table():
    cfg = json.loads(block("plugin-config"))
    table = README.split("### Reference (every key)", 1)[1].split("\n\n", 2)[1]
    rows = table.splitlines()
    for path in leaf_paths(cfg):
        if path.startswith("routes"):
            continue
        parent, _, leaf = path.rpartition(".")
        ok = f"`{path}`" in table or any(f"`{parent}." in r and leaf.rstrip("[]") in r for r in rows)
        assert ok, f"{path} is not documented in the README's reference table"


def test_readme_event_is_schema_valid_with_a_correct_hash():
    ev = json.loads(block("event"))
    assert_schema_valid(ev)
    assert event_hash(ev) == ev["chain"]["hash"]


def test_readme_cli_lines_run():
    """Each line exits 0, or with the status its comment names (`# exit N, "TEXT"`), printing TEXT."""
    cli = str(harness.ROOT / "target" / "release" / "proxy-audit")
    lines = block("cli").strip().splitlines()
    assert sum(1 for line in lines if re.search(r'#\s*exit \d+, "', line)) == 1, "the truncation example states its exit"
    for line in lines:
        cmd, _, comment = line.partition("  #")
        cmd = cmd.replace("proxy-audit ", f"{cli} ")
        assert "||" not in cmd and "; " not in cmd, f"a README example must not hide its exit status: {line}"
        m = re.match(r'\s*exit (\d+), "([^"]+)"', comment)
        rc, text = (int(m.group(1)), m.group(2)) if m else (0, None)
        p = subprocess.run(["bash", "-c", f"set -o pipefail; {cmd}"], cwd=harness.ROOT, capture_output=True, text=True, timeout=60)
        assert p.returncode == rc, (line, p.stdout, p.stderr)
        assert p.stdout.strip(), line
        if text:
            assert text in p.stdout, (line, p.stdout)


def committed_digest():
    digest, name = SCHEMA_DIGEST.read_text().split()
    assert name == SCHEMA_PATH.name
    return digest


def test_schema_copy_is_the_contracts_by_its_committed_digest():
    """Holds on any clone: the copy's bytes are those whose digest was committed from the contract."""
    assert hashlib.sha256(SCHEMA_PATH.read_bytes()).hexdigest() == committed_digest()


def test_schema_copy_matches_the_contract():
    """Where the contract sits beside the clone (shared/spec, as for the developers and CI): the
    copy is byte for byte the contract's, and the committed digest is the contract's own."""
    if not SHARED_SCHEMA.exists():
        pytest.skip(f"no {SHARED_SCHEMA} beside this clone: the committed digest is checked instead")
    assert SHARED_SCHEMA.read_bytes() == SCHEMA_PATH.read_bytes()
    assert hashlib.sha256(SHARED_SCHEMA.read_bytes()).hexdigest() == committed_digest()


def test_readme_envoy_entries_run_in_envoy(sink, upstream, monkeypatch):
    """The README's minimal filter entry and shipping-service block, as written (the .wasm path
    pointed at the built one), in a real Envoy: events reach the log service through the shipper."""
    import yaml
    from test_deploy import walk_strings
    from test_skeleton import call
    local = lambda node: walk_strings(node, lambda s: str(harness.WASM) if s == "/etc/envoy/proxy_audit.wasm" else s)
    (filt,) = local(yaml.safe_load(block("envoy-filter")))
    (shipper,) = local(yaml.safe_load(block("shipper").split("bootstrap_extensions:", 1)[1]))
    plugin = json.loads(filt["typed_config"]["config"]["configuration"]["value"])
    plugin["audit"]["exporter"]["shared_queue"] = {}
    filt["typed_config"]["config"]["configuration"]["value"] = json.dumps(plugin)
    monkeypatch.setenv("PROXY_AUDIT_JWT_SECRET", harness.JWT_SECRET)
    monkeypatch.setenv("PROXY_AUDIT_PSEUDONYM_KEY", harness.PSEUDONYM_KEY)
    e = harness.Envoy({}, upstream.server_address[1], sink.server_address[1], extra_filters_before=[filt], with_filter=False)
    e.config["bootstrap_extensions"] = [shipper]
    e.config_path.write_text(json.dumps(e.config))
    with e:
        for i in range(3):
            assert call(e.url, f"/readme/{i}")[0] == 200
        # The shipper ships them, on its own flush interval (200 ms, the default, when it names none).
        shipped = json.loads(shipper["typed_config"]["config"]["configuration"]["value"])["audit"]["exporter"]
        flush_ms = shipped.get("flush_interval_ms", 200)
        assert harness.wait_for(lambda: len([x for x in sink.store.events if x["kind"] == "access"]) == 3, harness.periods(flush_ms))
        stats = e.stats("proxy_audit")
        assert int(stats.get("wasmcustom.proxy_audit.events_handed_off", 0)) >= 3, stats
    assert "panicked" not in e.log()

