"""Streaming hold-back: what the filter adds to time to first token, and the most it holds back.

Three 200-event OpenAI chat streams of short text events, one event per network read, ending
with the usage chunk `stream_usage: inject` asked for and `[DONE]`:

  words       pieces as tokenizers cut them, a space before the word (" quick", " brown", ...):
              a piece ends inside a word, which may still grow (into an address, a key)
  words-end   pieces that end at a boundary ("quick ", "brown ", ...)
  digits      four-digit numbers, a space before each (" 1482", " 1930", ...): none can start a
              spaced card, phone or id, so only the partial number at the end is held
  digits-3    three-digit numbers (" 812", " 845", ...): each may start a NANP number (3-3-4), so a
              group waits until the third after it shows three digits (three events)

Part 1, deterministic (the tests' wasmtime proxy-wasm host, `host-tests/wasmhost.py`): one response
body callback per event; after each, what reached the client. Reports how many events later the
first text event reached the client (0: in the callback it arrived in), and the most held back after
any callback, in bytes (bytes in minus bytes out) and in events.

Part 2, real time (Envoy 1.40, `--concurrency 1`, bare and with the filter): an upstream writes one
event every `--gap-ms` (TCP_NODELAY); the client times the first text event (time to first token)
and each event's arrival. Reports the time to first token the filter adds (median of `--runs`) and
the most events any event reached the client late by, and their bytes.

    .venv/bin/python bench/holdback.py [--baseline OLD.wasm] [--runs 3] [--gap-ms 10] [--no-envoy]

`--baseline` measures another build of the filter the same way (for a before/after table).
"""
import argparse
import http.client
import json
import pathlib
import socket
import statistics
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "host-tests"))
sys.path.insert(0, str(HERE))

import bench  # noqa: E402  (plugin config, token)
import harness  # noqa: E402
from fixtures import log_service  # noqa: E402
from wasmhost import WASM, WasmHost  # noqa: E402

ENV = {"PROXY_AUDIT_JWT_SECRET": harness.JWT_SECRET, "PROXY_AUDIT_PSEUDONYM_KEY": harness.PSEUDONYM_KEY}
EVENTS = 200
WORDS = ("The patient record shows a follow-up visit next week with the lab results back in range and the "
         "medication list reviewed for interactions before the appointment").split()


def pieces(kind):
    if kind == "words":
        return [(" " if k else "") + WORDS[k % len(WORDS)] for k in range(EVENTS)]
    if kind == "words-end":
        return [WORDS[k % len(WORDS)] + " " for k in range(EVENTS)]
    if kind == "digits":
        # Four-digit groups starting with 1: no card brand, phone or id starts so.
        return [f" 1{(k * 7919) % 1000:03d}" for k in range(EVENTS)]
    # Three-digit groups starting with 8: may start a phone or id, never complete one.
    return [f" 8{(k * 7919) % 100:02d}" for k in range(EVENTS)]


def frames(kind):
    """The stream's events: role, 200 text events, stop, usage, [DONE]."""
    chunk = lambda delta, finish=None: {"id": "chatcmpl-hold", "object": "chat.completion.chunk", "created": 1_800_000_000,
                                        "model": "gpt-4o-mini-2024-07-18",
                                        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    events = [chunk({"role": "assistant", "content": ""})]
    events += [chunk({"content": p}) for p in pieces(kind)]
    events.append(chunk({}, "stop"))
    events.append({**chunk({}), "choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": EVENTS, "total_tokens": 212}})
    return [f"data: {json.dumps(e, separators=(',', ':'))}\n\n".encode() for e in events] + [b"data: [DONE]\n\n"]


REQUEST = json.dumps({"model": "gpt-4o-mini", "stream": True, "messages": [{"role": "user", "content": "Go on."}]}).encode()
FIRST_TEXT = 1  # frames[1] is the first text event


def deterministic(wasm, kind, auth):
    host = WasmHost(wasm=wasm, env=ENV)
    assert host.start(bench.PLUGIN_CONFIG), host.log_text()
    s = host.new_stream()
    s.request_headers([(":method", "POST"), (":path", "/v1/chat/completions"), (":authority", "api.example.com"),
                       (":scheme", "http"), ("authorization", auth), ("content-type", "application/json")])
    s.request_body(REQUEST, end_of_stream=True)
    s.response_headers([(":status", "200"), ("content-type", "text/event-stream")])
    fs = frames(kind)
    pushed, first_lag, most_bytes, most_events = 0, None, 0, 0
    for k, f in enumerate(fs):
        s.response_body(f, end_of_stream=k == len(fs) - 1)
        pushed += len(f)
        out = bytes(s.downstream_body)
        released = out.count(b"\n\n")
        if first_lag is None and released > FIRST_TEXT:
            first_lag = k - FIRST_TEXT
        # The usage chunk is withheld for good: not held back.
        usage_gone = len(fs[-2]) if k >= len(fs) - 2 and b'"usage"' not in out else 0
        most_bytes = max(most_bytes, pushed - len(out) - usage_gone)
        most_events = max(most_events, k + 1 - released - (1 if usage_gone else 0))
    s.finish()
    assert out in (b"".join(fs), b"".join(fs[:-2] + fs[-1:])), "a clean stream passes unchanged (but for the usage chunk)"
    return first_lag, most_bytes, most_events


class Upstream(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, gap):
        self.gap = gap
        self.kind = "words"
        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_POST(self):
        if "chunked" in (self.headers.get("transfer-encoding") or ""):
            self._drain()
        else:
            self.rfile.read(int(self.headers.get("content-length") or 0))
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        for f in frames(self.server.kind):
            self.wfile.write(f"{len(f):x}\r\n".encode() + f + b"\r\n")
            self.wfile.flush()
            time.sleep(self.server.gap)
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _drain(self):
        while True:
            size = int(self.rfile.readline().split(b";")[0] or b"0", 16)
            self.rfile.read(size + 2)
            if size == 0:
                return


def timed(port, auth):
    """Arrival time (s, from sending the request) of each text frame."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    t0 = time.monotonic()
    c.request("POST", "/v1/chat/completions", REQUEST, {"content-type": "application/json", "authorization": auth})
    r = c.getresponse()
    buf, arrivals = b"", []
    while True:
        data = r.read1(65536)
        if not data:
            break
        now = time.monotonic() - t0
        buf += data
        while b"\n\n" in buf:
            frame, buf = buf.split(b"\n\n", 1)
            arrivals.append(now)
    c.close()
    return arrivals


def with_wasm(e, wasm):
    """Points an (unstarted) harness Envoy at another .wasm build."""
    text = e.config_path.read_text().replace(str(WASM), str(wasm))
    e.config_path.write_text(text)
    return e


def real_time(builds, kinds, runs, gap, auth):
    sink = log_service.serve_in_thread()
    up = Upstream(gap)
    results = {}
    try:
        for label, wasm in [("bare", None)] + builds:
            e = harness.Envoy(bench.PLUGIN_CONFIG, up.server_address[1], sink.server_address[1], concurrency=1,
                              with_filter=wasm is not None)
            if wasm is not None:
                with_wasm(e, wasm)
            e.start()
            try:
                for kind in kinds:
                    up.kind = kind
                    timed(e.port, auth)  # warm-up
                    per_run = [timed(e.port, auth) for _ in range(runs)]
                    results[(label, kind)] = [statistics.median(r[i] for r in per_run) for i in range(len(per_run[0]))]
            finally:
                e.stop()
    finally:
        up.shutdown()
        sink.shutdown()
    return results


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--baseline", type=pathlib.Path)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--gap-ms", type=float, default=10.0)
    ap.add_argument("--no-envoy", action="store_true")
    a = ap.parse_args()
    auth = f"Bearer {bench.token()}"
    builds = [("this build", WASM)] + ([("baseline", a.baseline)] if a.baseline else [])
    kinds = ["words", "words-end", "digits", "digits-3"]
    print(f"Stream hold-back, {EVENTS} text events per stream (`{' '.join(sys.argv)}`)\n")
    print("Deterministic (wasmtime host, one callback per event):\n")
    print("| build | stream | first text event reaches the client | most held back |")
    print("|---|---|---|---|")
    for label, wasm in builds:
        for kind in kinds:
            lag, most_bytes, most_events = deterministic(wasm, kind, auth)
            when = "in the event it arrived in" if lag == 0 else f"{lag} event{'s' if lag > 1 else ''} later"
            print(f"| {label} | {kind} | {when} | {most_bytes:,} bytes ({most_events} events) |")
    if a.no_envoy:
        return
    gap = a.gap_ms / 1000
    res = real_time(builds, kinds, a.runs, gap, auth)
    print(f"\nReal time (Envoy 1.40 --concurrency 1; upstream writes an event every {a.gap_ms:g} ms; medians of {a.runs} runs):\n")
    print("| build | stream | time to first token (bare Envoy) | added by the filter | most late, in events |")
    print("|---|---|---:|---:|---:|")
    for label, _ in builds:
        for kind in kinds:
            bare, mine = res[("bare", kind)], res[(label, kind)]
            ttft_bare, ttft = bare[FIRST_TEXT], mine[FIRST_TEXT]
            # The client gets one frame fewer (the usage chunk); compare the text events.
            late = [mine[i] - bare[i] for i in range(FIRST_TEXT, FIRST_TEXT + EVENTS)]
            print(f"| {label} | {kind} | {ttft_bare * 1000:.1f} ms | {(ttft - ttft_bare) * 1000:+.1f} ms | "
                  f"{max(late) / gap:.1f} |")


if __name__ == "__main__":
    main()
