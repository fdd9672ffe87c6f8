"""The benchmark's floor filter (bench/floor) in a real Envoy, loaded as bench/bench.py loads it:
it configures in the mode it is given, refuses any other, and passes requests and answers through
unchanged (the bench compares its throughput with bare Envoy's, so it must carry the same bytes)."""
import json
import subprocess
import sys
import urllib.request

import pytest

import harness

sys.path.insert(0, str(harness.ROOT / "bench"))
import bench  # noqa: E402  (floor_filter, FLOOR_WASM: the configuration the benchmark runs)


@pytest.fixture(scope="module", autouse=True)
def floor_wasm():
    subprocess.run(["cargo", "build", "--quiet", "--release", "--target", "wasm32-wasip1", "-p", "proxy-audit-bench-floor"],
                   cwd=harness.ROOT, check=True, timeout=600)
    assert bench.FLOOR_WASM.exists()


def floor_envoy(envoy_factory, mode):
    return envoy_factory(with_filter=False, extra_filters_before=[bench.floor_filter(mode)], concurrency=1)


def post(url, path, body, headers):
    req = urllib.request.Request(url + path, method="POST", data=body, headers={"content-type": "application/json", **headers})
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.status, r.headers.get("content-type"), r.read()


# Large enough to reach the filter in several body callbacks.
BODY = json.dumps({"model": "m", "messages": [{"role": "user", "content": f"line {i} " * 40} for i in range(400)]}).encode()


@pytest.mark.parametrize("mode", ["noop", "digest"])
def test_the_floor_filter_carries_bodies_through_unchanged(envoy_factory, upstream, mode):
    envoy = floor_envoy(envoy_factory, mode)
    assert f"bench floor: {mode.capitalize()}" in harness.wait_for(lambda: envoy.log() if "bench floor:" in envoy.log() else "")
    status, ctype, body = post(envoy.url, "/v1/chat/completions", BODY, {"x-echo-body": "raw"})
    assert (status, ctype, body) == (200, "application/json", BODY)
    seen = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{upstream.server_address[1]}/__requests", timeout=10).read())
    assert [(r["method"], r["path"], r["body"]) for r in seen] == [("POST", "/v1/chat/completions", BODY.decode())]
    chunks = [f"data: {json.dumps({'n': i})}\n\n" for i in range(20)] + ["data: [DONE]\n\n"]
    status, ctype, body = post(envoy.url, "/v1/chat/completions", json.dumps({"chunks": chunks}).encode(), {"x-echo-sse": "1"})
    assert (status, ctype, body) == (200, "text/event-stream", "".join(chunks).encode())


def test_an_unknown_mode_is_refused(envoy_factory):
    with pytest.raises(RuntimeError, match="bench floor: configuration must be `noop` or `digest`"):
        floor_envoy(envoy_factory, "fast")
