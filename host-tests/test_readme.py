"""The README's examples are run: its plugin config, its event, its CLI lines, its key table."""
import json
import re
import subprocess

import harness
from chaincheck import event_hash
from conftest import assert_schema_valid

README = (harness.ROOT / "README.md").read_text()
SHARED_SCHEMA = harness.ROOT.parent / "shared" / "spec" / "audit-event.schema.json"


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


def test_the_demo_runs_and_its_trail_verifies():
    """What `scripts/demo` runs after its setup (the setup is `scripts/bootstrap`, done by `scripts/test`)."""
    import sys
    p = subprocess.run([sys.executable, str(harness.ROOT / "examples" / "demo.py")], capture_output=True, text=True,
                       timeout=180, cwd=harness.ROOT)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    assert "OK: every chain holds" in p.stdout and '"kind": "access"' in p.stdout, p.stdout[-2000:]
    # jwt_authn verified the tokens; the forged one was denied and still audited; the events came
    # through the singleton shipping service, which is an emitter of its own.
    assert '"source": "jwt_authn"' in p.stdout and '"kind": "denied"' in p.stdout, p.stdout[-2000:]
    assert "emitter envoy/proxy_audit_shipper/" in p.stdout, p.stdout[-2000:]


def test_readme_config_is_valid_and_runs_in_envoy(tmp_path, sink, upstream):
    cfg = json.loads(block("plugin-config"))
    f = tmp_path / "cfg.json"
    f.write_text(json.dumps(cfg))
    p = subprocess.run([str(harness.ROOT / "target/release/proxy-audit"), "check-config", str(f)], capture_output=True, text=True)
    assert p.returncode == 0, p.stdout
    with harness.Envoy(cfg, upstream.server_address[1], sink.server_address[1]):
        pass


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
    cli = str(harness.ROOT / "target" / "release" / "proxy-audit")
    for line in block("cli").strip().splitlines():
        cmd = line.split("  #", 1)[0].replace("proxy-audit ", f"{cli} ")
        p = subprocess.run(["bash", "-c", f"set -o pipefail; {cmd}"], cwd=harness.ROOT, capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, (line, p.stdout, p.stderr)
        assert p.stdout.strip(), line


def test_schema_copy_matches_the_contract():
    if SHARED_SCHEMA.exists():
        assert json.loads(SHARED_SCHEMA.read_text()) == json.loads((harness.ROOT / "host-tests" / "audit-event.schema.json").read_text())


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
        assert harness.wait_for(lambda: len([x for x in sink.store.events if x["kind"] == "access"]) == 3, 10)
        stats = e.stats("proxy_audit")
        assert int(stats.get("wasmcustom.proxy_audit.events_handed_off", 0)) >= 3, stats
    assert "panicked" not in e.log()

