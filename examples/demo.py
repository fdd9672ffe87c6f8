"""The local demo: Envoy + proxy-audit + a log service + an upstream, no Docker.

Runs `envoy/envoy.yaml` as a user would (jwt_authn → proxy-audit → router, with the
singleton shipping service), sends sample requests with real RS256 JWTs (PyJWT, signed
with the DEMO ONLY key that envoy/compose/jwks.json publishes), prints the audit events
the log service received, and verifies their hash chains with `proxy-audit verify`.
Started by `scripts/demo`.
"""
import json
import os
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

LISTEN, ADMIN, UPSTREAM, SINK = 10000, 9901, 9080, 9411


def send(method, path, headers=None, body=None):
    req = urllib.request.Request(f"http://127.0.0.1:{LISTEN}{path}", data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.headers.get("x-proxy-audit-id"), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("x-proxy-audit-id"), e.read()


def main():
    sink = log_service.serve_in_thread(SINK)
    upstream = echo_upstream.serve_in_thread(UPSTREAM)
    env = {**os.environ, "PROXY_AUDIT_PSEUDONYM_KEY": harness.PSEUDONYM_KEY}
    log = open(Path(tempfile.gettempdir()) / "proxy-audit-demo-envoy.log", "wb")
    envoy = subprocess.Popen([harness.ENVOY, "-c", "envoy/envoy.yaml", "--concurrency", "1", "--log-level", "warn"],
                             cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        if not harness.wait_for(lambda: _ready(), timeout=30):
            sys.exit(f"Envoy did not start; see {log.name}")
        print(f"Envoy with proxy-audit on :{LISTEN} → upstream :{UPSTREAM}; events → log service :{SINK}\n")
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
            status, audit_id, _ = send(method, path, headers, body)
            print(f"  {method:6} {path:42} → {status}  x-proxy-audit-id: {audit_id}")
        harness.wait_for(lambda: len([e for e in sink.store.events if e["kind"] != "chain_start"]) >= len(samples), 10)
        events = list(sink.store.events)
        print(f"\nThe log service received {len(events)} events:\n")
        for e in events:
            print(json.dumps(e, indent=2, sort_keys=True))
        trail = Path(tempfile.gettempdir()) / "proxy-audit-demo-trail.ndjson"
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
        time.sleep(0.5)
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


def _ready():
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{ADMIN}/ready", timeout=1) as r:
            return r.status == 200
    except OSError:
        return False


if __name__ == "__main__":
    sys.exit(main())
