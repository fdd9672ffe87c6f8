"""Where the filter's own time goes: wasm instructions per callback, by payload.

Runs the built .wasm in the wasmtime proxy-wasm host of the tests (host-tests/wasmhost.py) with
fuel metering on (one unit of fuel = one wasm instruction), drives the same three payloads as
bench/run through it, and prints the instructions each callback executed, per request. This counts
only the filter's code; what Envoy spends on host calls and V8 around it is the rest of the
end-to-end figure.

    .venv/bin/python bench/wasm_profile.py [requests per payload, default 50]
    .venv/bin/python bench/wasm_profile.py --check               # the regression gate of scripts/test
    .venv/bin/python bench/wasm_profile.py --write-baseline [n]  # bench/results/wasm-baseline.json
    .venv/bin/python bench/wasm_profile.py --signing [requests, default 50]
    .venv/bin/python bench/wasm_profile.py --floor [requests, default 50]

`--floor` runs the floor filter (`bench/floor`, built by `cargo build --release --target
wasm32-wasip1 -p proxy-audit-bench-floor`) through the same host and payloads, in `digest` mode
(the contract's mandatory SHA-256 work alone) and in `noop` mode, and prints its instructions per
request beside proxy-audit's.

`--signing` measures what a signed checkpoint costs: the small GET with a checkpoint after every
event (`audit.checkpoint_every_events: 1`), unsigned and then signed (`audit.signing`); the
difference per request is the cost of one Ed25519 signature in the filter.
"""
import collections
import json
import pathlib
import sys
import tempfile

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "host-tests"))
sys.path.insert(0, str(HERE))

import bench  # noqa: E402  (payloads, plugin config, token)
import harness  # noqa: E402
from wasmhost import WasmHost  # noqa: E402

ENV = {"PROXY_AUDIT_JWT_SECRET": harness.JWT_SECRET, "PROXY_AUDIT_PSEUDONYM_KEY": harness.PSEUDONYM_KEY}


class Metered(WasmHost):
    """Attributes the fuel each export call burns to that export."""

    def __init__(self, **kw):
        super().__init__(fuel=True, **kw)
        self.burned = collections.Counter()

    def call(self, name, *args, context=None):
        before = self.store.get_fuel()
        try:
            return super().call(name, *args, context=context)
        finally:
            self.burned[name] += before - self.store.get_fuel()


def one_request(host, p, auth, response, sse):
    s = host.new_stream()
    headers = [(":method", p["method"]), (":path", p["path"]), (":authority", "api.example.com"),
               (":scheme", "http"), ("authorization", auth), ("x-request-id", "r-1"), ("user-agent", "bench")]
    if p["body"] is None:
        s.request_headers(headers, end_of_stream=True)
    else:
        s.request_headers(headers + [("content-type", "application/json")])
        s.request_body(p["body"].read_bytes(), end_of_stream=True)
    if sse is not None and p is sse["payload"]:
        s.response_headers([(":status", "200"), ("content-type", "text/event-stream")])
        frames = sse["bytes"].split(b"\n\n")
        for k, f in enumerate(frames):
            s.response_body(f + b"\n\n" if f else b"", end_of_stream=k == len(frames) - 1)
    else:
        s.response_headers([(":status", "200"), ("content-type", "application/json")])
        s.response_body(response if p["body"] else b'{"id": "p-1042", "name": "redacted"}', end_of_stream=True)
    s.finish()


SIGNING_KEY = "BQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQU="  # base64 of 32 bytes of 5: a bench key only


def signing(n):
    """Instructions per request with a checkpoint per event, unsigned vs signed."""
    with tempfile.TemporaryDirectory() as d:
        payloads = bench.bodies(pathlib.Path(d))
        p = payloads["small"]
        auth = f"Bearer {bench.token()}"
        totals = {}
        for label, signed in (("unsigned", False), ("signed", True)):
            cfg = json.loads(json.dumps(bench.PLUGIN_CONFIG))
            cfg["audit"]["checkpoint_every_events"] = 1
            env = dict(ENV)
            if signed:
                cfg["audit"]["signing"] = {"key_env": "PROXY_AUDIT_SIGNING_KEY", "key_id": "bench"}
                env["PROXY_AUDIT_SIGNING_KEY"] = SIGNING_KEY
            host = Metered(env=env)
            assert host.start(cfg), host.log_text()
            one_request(host, p, auth, b"", None)
            for c in host.pending_calls():
                host.respond(c, 200)
            host.burned.clear()
            for _ in range(n):
                one_request(host, p, auth, b"", None)
            host.tick()
            for c in host.pending_calls():
                host.respond(c, 200)
            totals[label] = sum(host.burned.values()) // n
        per_sig = totals["signed"] - totals["unsigned"]
        print(f"small GET, a checkpoint per event ({n} requests, `{sys.argv[0]} --signing`)\n")
        print("| | instructions per request |")
        print("|---|---:|")
        print(f"| unsigned checkpoints | {totals['unsigned']:,} |")
        print(f"| signed checkpoints | {totals['signed']:,} |")
        print(f"| **one Ed25519 signature** | **{per_sig:,}** |")
        print(f"| per event at the default `checkpoint_every_events` (1,000) | {per_sig // 1000:,} |")


def payload_set(d):
    """The payloads of bench/run written into folder `d`: (payloads, JSON answer, SSE answer, the
    Authorization header's value)."""
    payloads = bench.bodies(d)
    response = (d / "response.json").read_bytes()
    sse = {"payload": payloads["stream"], "bytes": (d / "stream.sse").read_bytes()}
    return payloads, response, sse, f"Bearer {bench.token()}"


def measure(n, wasm=harness.WASM, config=None):
    """{payload key: {"label", "callbacks": {callback: per request}, "total": per request}} for the
    `wasm` module with plugin configuration `config` (default: proxy-audit with bench.PLUGIN_CONFIG)."""
    config = bench.PLUGIN_CONFIG if config is None else config
    out = {}
    with tempfile.TemporaryDirectory() as d:
        payloads, response, sse, auth = payload_set(pathlib.Path(d))
        for key, p in payloads.items():
            host = Metered(wasm=wasm, env=ENV)
            assert host.start(config), host.log_text()
            one_request(host, p, auth, response, sse)  # warm-up: first-use allocations
            for c in host.pending_calls():
                host.respond(c, 200)
            host.burned.clear()
            for _ in range(n):
                one_request(host, p, auth, response, sse)
            host.tick()
            for c in host.pending_calls():
                host.respond(c, 200)
            callbacks = {name: fuel // n for name, fuel in host.burned.items() if fuel // n}
            out[key] = {"label": p["label"], "callbacks": callbacks, "total": sum(host.burned.values()) // n}
    return out


BASELINE = HERE / "results" / "wasm-baseline.json"
TOLERANCE = 0.10


def check():
    """The regression gate (scripts/test): fails when a payload's wasm instructions per request grow
    more than 10% over the committed baseline (bench/results/wasm-baseline.json), measured with as
    many requests per payload as the baseline (the count is deterministic)."""
    base = json.loads(BASELINE.read_text())
    now = measure(base["requests_per_payload"])
    failed = False
    for key, b in base["payloads"].items():
        got = now[key]["total"]
        limit = int(b["total"] * (1 + TOLERANCE))
        verdict = "ok" if got <= limit else "REGRESSION"
        failed |= got > limit
        print(f"{b['label']}: {got:,} wasm instructions per request (baseline {b['total']:,}, limit {limit:,}) {verdict}")
    return 1 if failed else 0


def floor(n):
    """proxy-audit's instructions per request beside the floor filter's (digest and no-op modes)."""
    if not bench.FLOOR_WASM.exists():
        raise SystemExit(f"{bench.FLOOR_WASM} is missing: cargo build --release --target wasm32-wasip1 "
                         "-p proxy-audit-bench-floor")
    audit, digest, noop = measure(n), measure(n, bench.FLOOR_WASM, "digest"), measure(n, bench.FLOOR_WASM, "noop")
    print(f"wasm instructions per request ({n} requests per payload, `{sys.argv[0]} --floor`)\n")
    print("| payload | proxy-audit | digest floor | no-op filter | proxy-audit ÷ digest floor |")
    print("|---|---:|---:|---:|---:|")
    for key, m in audit.items():
        d, z = digest[key]["total"], noop[key]["total"]
        print(f"| {m['label']} | {m['total']:,} | {d:,} | {z:,} | {m['total'] / max(1, d):.1f} |")
    print("\ndigest floor by callback:\n")
    print("| payload | callback | instructions per request |")
    print("|---|---|---:|")
    for key, m in digest.items():
        for name, per in sorted(m["callbacks"].items(), key=lambda kv: -kv[1]):
            print(f"| {m['label']} | `{name}` | {per:,} |")


def main():
    if sys.argv[1:2] == ["--floor"]:
        floor(int(sys.argv[2]) if len(sys.argv) > 2 else 50)
        return 0
    if sys.argv[1:2] == ["--signing"]:
        signing(int(sys.argv[2]) if len(sys.argv) > 2 else 50)
        return 0
    if sys.argv[1:2] == ["--check"]:
        return check()
    if sys.argv[1:2] == ["--write-baseline"]:
        n = int(sys.argv[2]) if len(sys.argv) > 2 else 20
        BASELINE.write_text(json.dumps({"requests_per_payload": n, "payloads": measure(n)}, indent=1) + "\n")
        print(f"wrote {BASELINE}")
        return 0
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 50
    print(f"wasm instructions per request ({n} requests per payload, `{sys.argv[0]}`)\n")
    print("| payload | callback | instructions per request |")
    print("|---|---|---:|")
    for key, m in measure(n).items():
        for name, per in sorted(m["callbacks"].items(), key=lambda kv: -kv[1]):
            print(f"| {m['label']} | `{name}` | {per:,} |")
        print(f"| {m['label']} | **all** | **{m['total']:,}** |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
