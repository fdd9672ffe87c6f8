"""The local demo: Envoy + proxy-audit + a log service + an upstream, no Docker.

Runs `envoy/envoy.yaml` as a user would (jwt_authn → proxy-audit → router, with the
singleton shipping service), sends sample requests with real RS256 JWTs (PyJWT, signed
with the DEMO ONLY key that envoy/compose/jwks.json publishes), prints the audit events
the log service received, and verifies their hash chains with `proxy-audit verify`.
Started by `scripts/demo`.

Ports: the ones `envoy/envoy.yaml` names (listener :10000, admin :9901, upstream :9080, log service
:9411) when all four are free; when one is taken (another demo, a test run), four free loopback
ports instead, in a copy of that config with only the ports changed, and the demo says which.
`--trail FILE` keeps the trail there (default: a fresh temporary directory).
"""
import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "host-tests"))
sys.path.insert(0, str(ROOT / "envoy" / "compose"))

import harness  # noqa: E402
from mint_token import mint  # noqa: E402
from fixtures import echo_upstream, log_service  # noqa: E402

CONFIG = ROOT / "envoy" / "envoy.yaml"
# The ports envoy/envoy.yaml names.
DEFAULT_PORTS = {"listen": 10000, "admin": 9901, "upstream": 9080, "sink": 9411}


def port_free(port):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def pick_ports():
    """The config's own ports when all are free, else free ones (the OS picks them)."""
    if all(port_free(p) for p in DEFAULT_PORTS.values()):
        return dict(DEFAULT_PORTS)
    return {name: harness.free_port() for name in DEFAULT_PORTS}


def config_for(ports, workdir):
    """envoy/envoy.yaml itself, or a copy with each of its ports replaced by the one picked."""
    if ports == DEFAULT_PORTS:
        return CONFIG
    import yaml
    swap = {DEFAULT_PORTS[name]: port for name, port in ports.items()}

    def walk(node):
        if isinstance(node, dict):
            return {k: (swap.get(v, v) if k == "port_value" else walk(v)) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node
    path = workdir / "envoy.json"
    path.write_text(json.dumps(walk(yaml.safe_load(CONFIG.read_text())), indent=1))
    return path


def send(port, method, path, headers=None, body=None):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.headers.get("x-proxy-audit-id"), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("x-proxy-audit-id"), e.read()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trail", type=Path, help="where to write the trail (NDJSON)")
    args = ap.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="proxy-audit-demo-"))
    ports = pick_ports()
    config = config_for(ports, workdir)
    sink = log_service.serve_in_thread(ports["sink"])
    upstream = echo_upstream.serve_in_thread(ports["upstream"])
    env = {**os.environ, "PROXY_AUDIT_PSEUDONYM_KEY": harness.PSEUDONYM_KEY}
    log = open(workdir / "envoy.log", "wb")
    # --base-id: a second Envoy on this machine (another demo, a test) needs its own shared memory.
    envoy = subprocess.Popen([harness.ENVOY, "-c", str(config), "--concurrency", "1", "--log-level", "warn",
                              "--base-id", str(ports["admin"])],
                             cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        if not harness.wait_for(lambda: _ready(ports["admin"]), timeout=30):
            sys.exit(f"Envoy did not start; see {log.name}")
        if config != CONFIG:
            print(f"(ports of {CONFIG.relative_to(ROOT)} taken: running a copy on other ports, {config})")
        print(f"Envoy with proxy-audit on :{ports['listen']} → upstream :{ports['upstream']}; "
              f"events → log service :{ports['sink']}\n")
        alice = mint("alice", roles=["physician"], tenant="clinic-7", jti="demo-1")
        samples = [
            ("GET", "/patients/1274/records?from=2024-01-01", {"authorization": f"Bearer {alice}", "x-purpose-of-use": "treatment"}, None),
            ("POST", "/patients/1274/notes", {"authorization": f"Bearer {alice}", "content-type": "application/json"},
             json.dumps({"note": "BP 120/80, call back on jane.doe@example.com"}).encode()),
            ("GET", "/billing/invoices", {"authorization": f"Bearer {mint('svc-billing')}"}, None),
            ("GET", "/status/403", {"authorization": "Bearer forged.token.value"}, None),
            ("DELETE", "/patients/99", {}, None),
        ]
        for method, path, headers, body in samples:
            status, audit_id, _ = send(ports["listen"], method, path, headers, body)
            print(f"  {method:6} {path:42} → {status}  x-proxy-audit-id: {audit_id}")
        harness.wait_for(lambda: len([e for e in sink.store.events if e["kind"] != "chain_start"]) >= len(samples), 10)
        events = list(sink.store.events)
        print(f"\nThe log service received {len(events)} events:\n")
        for e in events:
            print(json.dumps(e, indent=2, sort_keys=True))
        trail = args.trail or workdir / "trail.ndjson"
        trail.write_text("".join(json.dumps(e) + "\n" for e in events))
        cli = ROOT / "target" / "release" / "proxy-audit"
        # Envoy still runs: its chains have no end record yet, so they are verified as live.
        print(f"\n$ proxy-audit verify --live {trail}")
        rc = subprocess.run([str(cli), "verify", "--live", str(trail)]).returncode
        print(f"(exit {rc})")
        if rc != 0:
            return rc
        # Stop Envoy: each plugin instance ends its chain; what it could not deliver any more goes to
        # Envoy's log (`proxy-audit: record` lines), and the access log on stdout has every event.
        envoy.terminate()
        envoy.wait(10)
        log.close()
        # What Envoy POSTed as it stopped is in once the log service has finished handling it.
        harness.wait_for(lambda: sink.store.in_flight == 0, timeout=10)
        trail.write_text("".join(json.dumps(e) + "\n" for e in sink.store.events))
        print(f"\nEnvoy stopped. $ proxy-audit verify {trail} {log.name}")
        rc = subprocess.run([str(cli), "verify", str(trail), log.name]).returncode
        print(f"(exit {rc})")
        return rc
    finally:
        if envoy.poll() is None:
            envoy.terminate()
            envoy.wait(10)
        sink.shutdown()
        upstream.shutdown()


def _ready(admin):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{admin}/ready", timeout=1) as r:
            return r.status == 200
    except OSError:
        return False


if __name__ == "__main__":
    sys.exit(main())
