"""Where a callback's wasm instructions go, stage by stage.

`bench/wasm_profile.py` counts instructions per callback; this splits them further. It runs a
profiling build of the filter whose core marks the end of each stage (`proxy_audit_core::stages`,
the `stages` feature: each mark logs the stage's name through the host) on the same host, payloads
and configuration, and gives each stage the fuel burnt since the mark before it (or since the
callback began). Deterministic, like the callback counts. A mark itself costs a few dozen
instructions (the hook and the log call's glue): the `(marks)` row says how many.

    cargo build --release --target wasm32-wasip1 --manifest-path plugin/Cargo.toml \\
        --features stages --target-dir target/stages
    .venv/bin/python bench/wasm_stages.py [payload: small | chat | stream, default stream] [requests, default 5]
"""
import collections
import pathlib
import sys
import tempfile

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "host-tests"))
sys.path.insert(0, str(HERE))

import bench  # noqa: E402
import wasm_profile  # noqa: E402
from wasmhost import WasmHost  # noqa: E402

STAGES_WASM = HERE.parent / "target" / "stages" / "wasm32-wasip1" / "release" / "proxy_audit.wasm"
TRACE = 0


class Staged(wasm_profile.Metered):
    """Gives the fuel between two stage marks (trace logs) to the later one, within a callback."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.stages = collections.Counter()
        self.marks = 0
        self._callback = None
        self._last = None
        self._prev = None

    def call(self, name, *args, context=None):
        if self._callback is not None:  # a nested call: counted in the outer one
            return super().call(name, *args, context=context)
        self._callback, self._last, self._prev = name, self.store.get_fuel(), "start"
        try:
            return super().call(name, *args, context=context)
        finally:
            self._stage("end")
            self._callback = None

    def _stage(self, label):
        fuel = self.store.get_fuel()
        self.stages[(self._callback, f"{self._prev} → {label}")] += self._last - fuel
        self._last, self._prev = fuel, label

    def proxy_log(self, level, ptr, size):
        if level == TRACE and self._callback is not None:
            self.marks += 1
            self._stage(self.text(ptr, size))
            return 0
        return super().proxy_log(level, ptr, size)

    proxy_log.__annotations__ = WasmHost.proxy_log.__annotations__  # the wasm signature


def main():
    key = sys.argv[1] if len(sys.argv) > 1 else "stream"
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    if not STAGES_WASM.exists():
        raise SystemExit(f"{STAGES_WASM} is missing: see this script's docstring for the build")
    with tempfile.TemporaryDirectory() as d:
        payloads, response, sse, auth = wasm_profile.payload_set(pathlib.Path(d))
        p = payloads[key]
        host = Staged(wasm=STAGES_WASM, env=wasm_profile.ENV)
        assert host.start(bench.PLUGIN_CONFIG), host.log_text()
        wasm_profile.one_request(host, p, auth, response, sse)  # warm-up
        for c in host.pending_calls():
            host.respond(c, 200)
        host.stages.clear()
        host.marks = 0
        for _ in range(n):
            wasm_profile.one_request(host, p, auth, response, sse)
        events = bench.SSE_EVENTS if key == "stream" else 1
        unit = "per streamed event" if key == "stream" else "per request"
        total = sum(host.stages.values())
        print(f"{p['label']}: wasm instructions {unit} by stage ({n} requests, `{sys.argv[0]} {key} {n}`, "
              f"{STAGES_WASM.name} built with --features stages)\n")
        print(f"| callback | stage (from the mark before → this mark) | instructions {unit} |")
        print("|---|---|---:|")
        for (cb, stage), fuel in sorted(host.stages.items(), key=lambda kv: -kv[1]):
            if fuel // (n * events):
                print(f"| `{cb}` | {stage} | {fuel // (n * events):,} |")
        print(f"| | (marks) | {host.marks // (n * events)} |")
        print(f"| | **all** | **{total // (n * events):,}** |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
