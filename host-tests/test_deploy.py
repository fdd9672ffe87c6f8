"""The deployment files: the standalone envoy/envoy.yaml, the docker-compose stack (checked on paper, then the same topology run
without Docker), the Istio manifests (against Istio's CRD models, strictly) and the Wasm OCI image.
"""
import copy
import importlib.util
import json
import re
import subprocess

import pytest
import yaml

import harness
from conftest import assert_schema_valid
from test_skeleton import call

ROOT = harness.ROOT
COMPOSE_DIR = ROOT / "envoy" / "compose"
ISTIO_DIR = ROOT / "envoy" / "istio"
CLI = ROOT / "target" / "release" / "proxy-audit"


def load_yaml(path):
    return yaml.safe_load(path.read_text())


def compose():
    return load_yaml(COMPOSE_DIR / "docker-compose.yaml")


def bootstrap_wasm_path():
    """The .wasm path scripts/bootstrap builds (its `wasm=...` line), relative to the repo root."""
    m = re.search(r"^wasm=(\S+)$", (ROOT / "scripts" / "bootstrap").read_text(), re.M)
    assert m, "scripts/bootstrap no longer names the built .wasm"
    return m.group(1)


def bind_mounts(service):
    """[(host path resolved against the compose file's directory, container path)] of one service."""
    out = []
    for v in service.get("volumes", []):
        if isinstance(v, dict):
            assert v.get("type", "bind") == "bind", v
            src, dst = v["source"], v["target"]
        else:
            src, dst = v.split(":")[:2]
        assert src.startswith((".", "/")), f"{v}: only bind mounts are expected in the demo stack"
        out.append(((COMPOSE_DIR / src).resolve(), dst))
    return out


def walk_strings(node, fn):
    """A copy of a JSON-like tree with fn applied to every string value."""
    if isinstance(node, dict):
        return {k: walk_strings(v, fn) for k, v in node.items()}
    if isinstance(node, list):
        return [walk_strings(v, fn) for v in node]
    return fn(node) if isinstance(node, str) else node


def compose_envoy_config():
    """envoy/compose/envoy.yaml with every in-container path replaced by the host file the compose
    file mounts there (so what is validated and run is exactly what the container would see)."""
    envoy = compose()["services"]["envoy"]
    mounts = {dst: str(src) for src, dst in bind_mounts(envoy)}
    cfg = walk_strings(load_yaml(COMPOSE_DIR / "envoy.yaml"), lambda s: mounts.get(s, s))
    leftovers = []
    walk_strings(cfg, lambda s: leftovers.append(s) if s.startswith("/etc/") else s)
    assert not leftovers, f"in-container paths that the compose file does not mount: {leftovers}"
    return cfg


def wasm_plugin_config(cfg):
    (wasm,) = [f for f in hcm(cfg)["http_filters"] if f["name"] == "proxy_audit"]
    return wasm["typed_config"]["config"]


def hcm(cfg):
    return cfg["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]


def cluster_endpoints(cfg):
    """{cluster name: (address, port)} of the static clusters (one endpoint each)."""
    out = {}
    for c in cfg["static_resources"]["clusters"]:
        (lb,) = c["load_assignment"]["endpoints"][0]["lb_endpoints"]
        sa = lb["endpoint"]["address"]["socket_address"]
        out[c["name"]] = (sa["address"], sa["port_value"])
    return out


# ---------------------------------------------------------------------------------------------
# (a) the compose file


def test_compose_services_and_pinned_images():
    services = compose()["services"]
    assert set(services) == {"envoy", "otel-collector", "upstream"}
    assert services["envoy"]["image"] == "envoyproxy/envoy:v1.40.0"
    assert re.fullmatch(r"otel/opentelemetry-collector-contrib:\d+\.\d+\.\d+", services["otel-collector"]["image"])
    assert services["upstream"]["image"] == "python:3.11-slim"


def test_compose_bind_mounts_exist():
    wasm_rel = bootstrap_wasm_path()
    seen_wasm = False
    for name, service in compose()["services"].items():
        for src, dst in bind_mounts(service):
            if src.suffix == ".wasm":
                # The one mount allowed to be missing in a fresh checkout: the build artifact.
                assert src == (ROOT / wasm_rel).resolve(), f"{name}: {src} is not what scripts/bootstrap builds ({wasm_rel})"
                seen_wasm = True
                continue
            assert src.exists(), f"{name}: bind mount source {src} (→ {dst}) does not exist"
    assert seen_wasm, "the envoy service must mount the built filter"


def test_compose_commands_name_mounted_configs():
    services = compose()["services"]
    targets = {name: {dst: src for src, dst in bind_mounts(s)} for name, s in services.items()}
    envoy_cmd = services["envoy"]["command"]
    envoy_cfg = envoy_cmd[envoy_cmd.index("-c") + 1]
    assert targets["envoy"][envoy_cfg] == (COMPOSE_DIR / "envoy.yaml").resolve()
    (col_arg,) = [a for a in services["otel-collector"]["command"] if a.startswith("--config=")]
    assert targets["otel-collector"][col_arg.split("=", 1)[1]] == (COMPOSE_DIR / "otel-collector.yaml").resolve()
    assert targets["envoy"]["/etc/envoy/jwks.json"] == (COMPOSE_DIR / "jwks.json").resolve()
    up_cmd = " ".join(services["upstream"]["command"])
    assert targets["upstream"]["/app/echo_upstream.py"] == (ROOT / "host-tests" / "fixtures" / "echo_upstream.py").resolve()
    assert "/app/echo_upstream.py" in up_cmd and "--host 0.0.0.0" in up_cmd


def test_compose_secrets_reach_the_vm_by_environment():
    env = compose()["services"]["envoy"]["environment"]
    cfg = compose_envoy_config()
    vm = wasm_plugin_config(cfg)["vm_config"]
    keys = vm["environment_variables"]["host_env_keys"]
    assert set(keys) == set(env) == {"PROXY_AUDIT_JWT_SECRET", "PROXY_AUDIT_PSEUDONYM_KEY"}
    for k in keys:
        assert env[k].startswith("${" + k + ":?"), f"{k} must come from the caller's environment, required"
    plugin = json.loads(wasm_plugin_config(cfg)["configuration"]["value"])
    assert plugin["identity"]["jwt"]["hs256_secret_env"] in keys
    assert plugin["audit"]["pseudonym_key_env"] in keys


def test_compose_topology_is_consistent():
    """Envoy's clusters name the compose services on the ports they listen on."""
    services = compose()["services"]
    cfg = load_yaml(COMPOSE_DIR / "envoy.yaml")
    eps = cluster_endpoints(cfg)
    assert eps["audit_sink"][0] == "otel-collector" and eps["audit_sink"][0] in services
    assert eps["upstream"][0] == "upstream" and eps["upstream"][0] in services
    assert f"--port {eps['upstream'][1]}" in " ".join(services["upstream"]["command"])
    col = load_yaml(COMPOSE_DIR / "otel-collector.yaml")
    assert col["receivers"]["otlp"]["protocols"]["http"]["endpoint"] == f"0.0.0.0:{eps['audit_sink'][1]}"
    plugin = json.loads(wasm_plugin_config(cfg)["configuration"]["value"])
    ex = plugin["audit"]["exporter"]
    assert (ex["cluster"], ex["format"], ex["path"]) == ("audit_sink", "otlp", "/v1/logs")
    published = {p.split(":")[-1] for p in services["envoy"]["ports"]}
    listen = cfg["static_resources"]["listeners"][0]["address"]["socket_address"]
    assert str(listen["port_value"]) in published and listen["address"] == "0.0.0.0"


def test_compose_jwks_matches_the_demo_key():
    spec = importlib.util.spec_from_file_location("mint_token", COMPOSE_DIR / "mint_token.py")
    mint = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mint)
    assert "DEMO ONLY" in (COMPOSE_DIR / "demo-signing-key.pem").read_text().split("-----BEGIN")[0]
    import jwt
    (key,) = json.loads((COMPOSE_DIR / "jwks.json").read_text())["keys"]
    assert key["kid"] == mint.KID and "d" not in key, "jwks.json holds the public key only"
    pub = jwt.algorithms.RSAAlgorithm.from_jwk(json.dumps(key))
    claims = jwt.decode(mint.mint("dana"), pub, algorithms=["RS256"], audience=mint.AUDIENCE, issuer=mint.ISSUER)
    assert claims["sub"] == "dana"
    provider = hcm(load_yaml(COMPOSE_DIR / "envoy.yaml"))["http_filters"][0]["typed_config"]["providers"]["demo_idp"]
    assert (provider["issuer"], provider["audiences"], provider["payload_in_metadata"]) == (mint.ISSUER, [mint.AUDIENCE], "payload")


# ---------------------------------------------------------------------------------------------
# (b) the compose Envoy config passes `envoy --mode validate`


def test_compose_envoy_config_validates(tmp_path):
    path = tmp_path / "compose-envoy.json"
    path.write_text(json.dumps(compose_envoy_config()))
    ok, out = harness.validate(path)
    assert ok, out[-4000:]


# ---------------------------------------------------------------------------------------------
# (c) the Collector config (no Python package validates Collector configs: structural checks)

KNOWN_COMPONENTS = {
    "receivers": {"otlp"},
    "processors": {"batch", "memory_limiter"},
    "exporters": {"file", "debug", "otlphttp", "otlp"},
}


def test_collector_config_is_consistent():
    col = load_yaml(COMPOSE_DIR / "otel-collector.yaml")
    assert set(col) <= {"receivers", "processors", "exporters", "extensions", "connectors", "service"}
    used = {kind: set() for kind in KNOWN_COMPONENTS}
    pipelines = col["service"]["pipelines"]
    assert pipelines, "no pipeline"
    for name, p in pipelines.items():
        assert name.split("/")[0] in {"logs", "traces", "metrics"}, name
        assert set(p) <= {"receivers", "processors", "exporters"}, p
        assert p.get("receivers") and p.get("exporters"), f"{name}: a pipeline needs receivers and exporters"
        for kind in ("receivers", "processors", "exporters"):
            for comp in p.get(kind, []):
                assert comp in (col.get(kind) or {}), f"pipeline {name} names undefined {kind[:-1]} {comp}"
                used[kind].add(comp)
    for kind, known in KNOWN_COMPONENTS.items():
        for comp in col.get(kind) or {}:
            assert comp.split("/")[0] in known, f"unknown {kind[:-1]} type {comp}"
            assert comp in used[kind], f"{kind[:-1]} {comp} is defined but in no pipeline"
    assert "logs" in pipelines and {"file/trail", "debug"} <= set(pipelines["logs"]["exporters"])
    assert pipelines["logs"]["receivers"] == ["otlp"]
    # The trail lands in a mounted directory (./trail), not in the container's (read-only) image.
    trail = col["exporters"]["file/trail"]["path"]
    mounts = {dst: src for src, dst in bind_mounts(compose()["services"]["otel-collector"])}
    parent = trail.rsplit("/", 1)[0]
    assert mounts.get(parent) == (COMPOSE_DIR / "trail").resolve(), f"{trail} is not under a mounted directory"
    assert (COMPOSE_DIR / "trail").is_dir()


# ---------------------------------------------------------------------------------------------
# (d) the same topology without Docker: fixtures stand in for the collector and the upstream


def local_topology(cfg, listen_port, admin_port, service_ports):
    """Compose config → loopback: listener/admin on free ports, compose service names → 127.0.0.1."""
    cfg = copy.deepcopy(cfg)
    cfg["admin"]["address"]["socket_address"] = {"address": "127.0.0.1", "port_value": admin_port}
    cfg["static_resources"]["listeners"][0]["address"]["socket_address"] = {"address": "127.0.0.1", "port_value": listen_port}
    for c in cfg["static_resources"]["clusters"]:
        c["type"] = "STATIC"
        for lb in c["load_assignment"]["endpoints"][0]["lb_endpoints"]:
            sa = lb["endpoint"]["address"]["socket_address"]
            sa["port_value"] = service_ports[sa["address"]]
            sa["address"] = "127.0.0.1"
    return cfg


def compose_topology(sink, upstream, monkeypatch):
    """An Envoy (not started) running envoy/compose/envoy.yaml against the fixtures."""
    monkeypatch.setenv("PROXY_AUDIT_JWT_SECRET", harness.JWT_SECRET)
    monkeypatch.setenv("PROXY_AUDIT_PSEUDONYM_KEY", harness.PSEUDONYM_KEY)
    envoy = harness.Envoy({}, upstream.server_address[1], sink.server_address[1])
    cfg = local_topology(compose_envoy_config(), envoy.port, envoy.admin_port,
                         {"otel-collector": sink.server_address[1], "upstream": upstream.server_address[1]})
    envoy.config_path.write_text(json.dumps(cfg, indent=1))
    return envoy


def test_compose_readme_curl_lines_show_redaction_and_events(sink, upstream, events):
    """The TOKEN and curl lines of envoy/compose/README.md, run as written by bash (only the
    address changed) against the compose topology: redaction shows, and every request is audited."""
    text = (COMPOSE_DIR / "README.md").read_text()
    script = text.split("```sh\n", 1)[1].split("```", 1)[0]
    lines = script[script.index("TOKEN="):].split("\n\ndocker compose", 1)[0]
    assert lines.count("curl ") == 4, lines
    with pytest.MonkeyPatch.context() as mp:
        envoy = compose_topology(sink, upstream, mp)
        with envoy:
            p = subprocess.run(["bash", "-c", "set -e\n" + lines.replace("localhost:10000", f"127.0.0.1:{envoy.port}")],
                               cwd=ROOT, capture_output=True, text=True, timeout=60)
            assert p.returncode == 0, p.stdout + p.stderr
            evs = events.wait_requests(4)
    out = p.stdout
    assert "[REDACTED:EMAIL]" in out and "[REDACTED:US_SSN]" in out and "jane.doe" not in out, out
    assert out.count("x-proxy-audit-id:") == 2 and "HTTP/1.1 401" in out, out  # the two `curl -i` answered 200
    assert sorted(e["outcome"]["status_code"] for e in evs) == [200, 200, 200, 401]
    (note,) = [e for e in evs if e["action"]["path"].endswith("/notes")]
    assert {f["entity"] for f in note["data"]["request"]["findings"]} == {"email", "us_ssn"}


def test_compose_topology_runs_without_docker(sink, upstream, events, monkeypatch, tmp_path):
    envoy = compose_topology(sink, upstream, monkeypatch)
    spec = importlib.util.spec_from_file_location("mint_token", COMPOSE_DIR / "mint_token.py")
    mint = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mint)
    token = mint.mint("dana", roles=["nurse"], tenant="ward-3")
    with envoy:
        status, headers, _ = call(envoy.url, "/patients/1274/records",
                                  headers={"authorization": f"Bearer {token}", "x-purpose-of-use": "treatment"})
        assert status == 200
        audit_id = headers["x-proxy-audit-id"]
        assert call(envoy.url, "/open")[0] == 200
        assert call(envoy.url, "/x", headers={"authorization": "Bearer not.a.token"})[0] == 401
        evs = events.wait_requests(3)
        # The access log on Envoy's stdout: flushed every harness.FILE_FLUSH_MS.
        assert harness.wait_for(lambda: audit_id in envoy.log(), harness.periods(harness.FILE_FLUSH_MS))
        log = envoy.log()
    assert len(evs) == 3
    for e in evs:
        assert_schema_valid(e)
    (ok,) = [e for e in evs if e["id"] == audit_id]
    a = ok["actor"]
    assert (a["id"], a["type"], a["verified"], a["source"], a["roles"], a["tenant"]) == \
        ("dana", "user", True, "jwt_authn", ["nurse"], "ward-3")
    assert ok["target"]["resource_id"] == "patient:1274" and ok["purpose"] == "treatment"
    assert sorted(e["outcome"]["status_code"] for e in evs) == [200, 200, 401]
    # The events arrived as OTLP/HTTP JSON on /v1/logs, as the collector would receive them.
    with sink.store.lock:
        batches = list(sink.store.raw_batches)
    assert batches and all(b["path"] == "/v1/logs" and "json" in b["content_type"] for b in batches)
    # The access log joins the request to its audit event and actor.
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert any(r["audit_id"] == audit_id and r["actor"] == "dana" and r["status"] == 200 for r in lines), log[-3000:]
    # The collector's file exporter writes one OTLP JSON request per line: the CLI verifies that trail.
    trail = tmp_path / "audit-trail.jsonl"
    trail.write_text("".join(json.dumps(json.loads(b["body"])) + "\n" for b in batches))
    p = subprocess.run([str(CLI), "verify", "--live", str(trail)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    # Envoy has stopped: a chain whose end record reached the collector is closed, any other is open.
    evs_all = [json.loads(r["body"]["stringValue"]) for b in batches
               for rl in json.loads(b["body"])["resourceLogs"] for sl in rl["scopeLogs"] for r in sl["logRecords"]]
    ended = {e["chain"]["emitter"] for e in evs_all if e.get("trail", {}).get("reason") == "end"}
    open_chains = {e["chain"]["emitter"] for e in evs_all} - ended
    p = subprocess.run([str(CLI), "verify", str(trail)], capture_output=True, text=True, timeout=60)
    assert p.returncode == (1 if open_chains else 0), p.stdout + p.stderr
    assert all(f"OPEN emitter {e}:" in p.stdout for e in open_chains), p.stdout


# ---------------------------------------------------------------------------------------------
# (e) the Istio manifests against Istio's CRD models (cloudcoil-models-istio, generated from the CRDs)


@pytest.fixture(scope="module")
def istio_models():
    try:
        from cloudcoil.models.istio.extensions import v1alpha1 as extensions
        from cloudcoil.models.istio.networking import v1 as networking
        from cloudcoil.models.istio.security import v1 as security
    except ImportError as e:  # pragma: no cover
        pytest.fail(f"{e}: install host-tests/requirements.txt (cloudcoil-models-istio)")
    return {
        ("extensions.istio.io/v1alpha1", "WasmPlugin"): extensions.WasmPlugin,
        ("security.istio.io/v1", "RequestAuthentication"): security.RequestAuthentication,
        ("networking.istio.io/v1", "ServiceEntry"): networking.ServiceEntry,
    }


MANIFESTS = ["wasmplugin.yaml", "requestauthentication.yaml", "serviceentry.yaml"]


def validate_manifest(models, doc):
    """Strict: unknown fields anywhere (metadata, spec, nested) and wrong enums are errors."""
    model = models.get((doc.get("apiVersion"), doc.get("kind")))
    assert model is not None, f"no Istio model for {doc.get('apiVersion')} {doc.get('kind')}"
    return model.model_validate(doc, extra="forbid")


@pytest.mark.parametrize("name", MANIFESTS)
def test_istio_manifest_validates(istio_models, name):
    doc = load_yaml(ISTIO_DIR / name)
    obj = validate_manifest(istio_models, doc)
    assert obj.metadata.name and obj.metadata.namespace


def set_path(doc, path, value=None, rename=None):
    node = doc
    for p in path[:-1]:
        node = node[p]
    if rename:
        node[rename] = node.pop(path[-1])
    else:
        node[path[-1]] = value
    return doc


@pytest.mark.parametrize("name,path,rename,value", [
    ("wasmplugin.yaml", ["spec", "failStrategy"], "failStrategey", None),
    ("wasmplugin.yaml", ["spec", "vmConfig", "env", 0, "valueFrom"], "valueForm", None),
    ("wasmplugin.yaml", ["spec", "phase"], None, "AUTHORIZATION"),
    ("requestauthentication.yaml", ["spec", "jwtRules", 0, "jwksUri"], "jwksUrl", None),
    ("serviceentry.yaml", ["spec", "resolution"], "resolutoin", None),
    ("serviceentry.yaml", ["metadata", "name"], "nmae", None),
])
def test_istio_validation_rejects_mistakes(istio_models, name, path, rename, value):
    doc = set_path(load_yaml(ISTIO_DIR / name), path, value, rename)
    with pytest.raises(Exception) as err:
        validate_manifest(istio_models, doc)
    assert (rename or path[-1]) in str(err.value)


def check_config(tmp_path, plugin_config):
    f = tmp_path / "plugin-config.json"
    f.write_text(json.dumps(plugin_config))
    return subprocess.run([str(CLI), "check-config", str(f)], capture_output=True, text=True, timeout=60)


def test_wasmplugin_plugin_config_passes_check_config(tmp_path):
    plugin = load_yaml(ISTIO_DIR / "wasmplugin.yaml")["spec"]["pluginConfig"]
    p = check_config(tmp_path, plugin)
    assert p.returncode == 0, p.stdout + p.stderr
    # The same check catches a misspelled key (so exit 0 above means something).
    plugin["audit"]["exporter"]["fromat"] = plugin["audit"]["exporter"].pop("format")
    p = check_config(tmp_path, plugin)
    assert p.returncode == 1 and "fromat" in p.stdout + p.stderr


def test_istio_manifests_fit_together():
    wp = load_yaml(ISTIO_DIR / "wasmplugin.yaml")
    ra = load_yaml(ISTIO_DIR / "requestauthentication.yaml")
    se = load_yaml(ISTIO_DIR / "serviceentry.yaml")
    spec, plugin = wp["spec"], wp["spec"]["pluginConfig"]
    # Ordering: after Istio's jwt_authn (AUTHN), whose payload key is "payload".
    assert (spec["phase"], spec["type"], spec["failStrategy"]) == ("AUTHZ", "HTTP", "FAIL_CLOSE")
    assert plugin["identity"]["jwt"]["jwt_authn_payload_key"] == "payload"
    assert spec["url"].startswith("oci://") and re.fullmatch(r"[0-9a-f]{64}", spec["sha256"])
    # Same workloads, same namespace.
    assert ra["spec"]["selector"] == spec["selector"] and ra["metadata"]["namespace"] == wp["metadata"]["namespace"]
    # The exporter's cluster is Istio's name for the ServiceEntry host: outbound|<port>||<host>.
    (host,) = se["spec"]["hosts"]
    (port,) = se["spec"]["ports"]
    ex = plugin["audit"]["exporter"]
    assert ex["cluster"] == f"outbound|{port['number']}||{host}" and ex["authority"] == host
    assert (ex["format"], ex["path"], port["protocol"]) == ("otlp", "/v1/logs", "HTTP")
    # Every environment variable the config names comes from the host, nothing inline.
    named = {plugin["identity"]["jwt"]["hs256_secret_env"], plugin["audit"]["pseudonym_key_env"]}
    env = {e["name"]: e for e in spec["vmConfig"]["env"]}
    assert set(env) == named and all(e["valueFrom"] == "HOST" and "value" not in e for e in env.values())


# ---------------------------------------------------------------------------------------------
# (f) the Wasm OCI image


def test_dockerfile_oci_copies_the_built_wasm_as_plugin_wasm():
    dockerfile = ROOT / "envoy" / "Dockerfile.oci"
    instrs = [line.split(None, 1) for line in dockerfile.read_text().splitlines()
              if line.strip() and not line.lstrip().startswith("#") and not line.startswith(" ")]
    ops = [i[0].upper() for i in instrs]
    assert instrs[0] == ["FROM", "scratch"]
    assert ops.count("COPY") == 1 and set(ops) <= {"FROM", "COPY", "LABEL"}
    (copy_args,) = [i[1].split() for i in instrs if i[0].upper() == "COPY"]
    src, dst = copy_args
    assert src == bootstrap_wasm_path() == "target/wasm32-wasip1/release/proxy_audit.wasm"
    assert dst in ("./plugin.wasm", "/plugin.wasm"), "Istio looks for a file named plugin.wasm"
    # The Dockerfile-specific ignore file keeps the context to that one file.
    ignore = [line for line in (ROOT / "envoy" / "Dockerfile.oci.dockerignore").read_text().splitlines()
              if line and not line.startswith("#")]
    assert ignore == ["*", "!" + src]


# ---------------------------------------------------------------------------------------------
# The standalone envoy/envoy.yaml (validated by test_skeleton, run end to end by the demo test in
# test_readme): its parts fit together.

STANDALONE = ROOT / "envoy" / "envoy.yaml"


def wasm_config_value(wasm_config):
    return json.loads(wasm_config["configuration"]["value"])


def test_standalone_envoy_yaml_fits_together(tmp_path):
    cfg = load_yaml(STANDALONE)
    h = hcm(cfg)
    names = [f["name"] for f in h["http_filters"]]
    assert names == ["envoy.filters.http.jwt_authn", "proxy_audit", "envoy.filters.http.router"], names
    jwt_authn = h["http_filters"][0]["typed_config"]["providers"]["demo_idp"]
    filt = h["http_filters"][1]["typed_config"]["config"]
    plugin = wasm_config_value(filt)
    # jwt_authn hands proxy-audit the verified payload under the key the filter reads.
    assert jwt_authn["payload_in_metadata"] == plugin["identity"]["jwt"]["jwt_authn_payload_key"] == "payload"
    # The demo JWKS is the compose stack's, matching the demo signing key's issuer and audience.
    jwks = ROOT / jwt_authn["local_jwks"]["filename"]
    assert jwks.resolve() == (COMPOSE_DIR / "jwks.json").resolve()
    spec = importlib.util.spec_from_file_location("mint_token", COMPOSE_DIR / "mint_token.py")
    mint_token = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mint_token)
    assert (jwt_authn["issuer"], jwt_authn["audiences"]) == (mint_token.ISSUER, [mint_token.AUDIENCE])
    # The access log carries the filter-state keys the filter sets.
    fmt = h["access_log"][0]["typed_config"]["log_format"]["json_format"]
    for key in ("audit_id", "actor_id", "ai_provider", "ai_input_tokens", "event"):
        assert any(f"FILTER_STATE(wasm.proxy_audit.{key}:PLAIN)" in v for v in fmt.values()), key
    # The singleton shipping service reads the queue the workers hand their events to.
    (ext,) = cfg["bootstrap_extensions"]
    assert ext["name"] == "envoy.bootstrap.wasm" and ext["typed_config"]["singleton"] is True
    svc = ext["typed_config"]["config"]
    assert svc["root_id"] == harness.SHIPPER_ROOT_ID
    shipper = wasm_config_value(svc)
    queue = plugin["audit"]["exporter"]["shared_queue"]
    assert queue == {"vm_id": svc["vm_config"]["vm_id"], "name": shipper["audit"]["exporter"]["shared_queue"]["name"]}
    # Both VMs load the .wasm scripts/bootstrap builds; both configs pass check-config.
    for vm in (filt["vm_config"], svc["vm_config"]):
        assert vm["code"]["local"]["filename"] == bootstrap_wasm_path()
    for c in (plugin, shipper):
        p = check_config(tmp_path, c)
        assert p.returncode == 0, p.stdout + p.stderr
    # Both ship to the log-service cluster the file defines.
    clusters = cluster_endpoints(cfg)
    assert plugin["audit"]["exporter"]["cluster"] == shipper["audit"]["exporter"]["cluster"] == "audit_sink"
    assert "audit_sink" in clusters and h["route_config"]["virtual_hosts"][0]["routes"][0]["route"]["cluster"] in clusters
