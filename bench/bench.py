"""End-to-end load benchmark: bare Envoy, Envoy + proxy-audit, Envoy + a Lua redactor, and the
floor: Envoy + a wasm filter that does nothing, and one that does only the contract's SHA-256 work.

Run through `bench/run` (it installs and builds what this needs). Everything is on
loopback: one upstream (`bench/upstream`, also the audit sink), then each Envoy
configuration in turn, `--concurrency 1`, driven by oha at fixed concurrency and at
a fixed rate, then a memory run through proxy-audit. Prints a Markdown report and
writes it to bench/results/<date>.md. Knobs (environment): see bench/README.md.
"""
import datetime
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "host-tests"))
import harness  # noqa: E402
import jwt  # noqa: E402  (PyJWT, pinned in host-tests/requirements.txt)

SECONDS = int(os.environ.get("BENCH_SECONDS", "20"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "32"))
REQUESTS = int(os.environ.get("BENCH_REQUESTS", "100000"))
RATE = os.environ.get("BENCH_RATE")  # requests/s for every payload; default: a fraction of bare Envoy's
RATE_FRACTION = float(os.environ.get("BENCH_RATE_FRACTION", "0.5"))
PAYLOADS = os.environ.get("BENCH_PAYLOADS", "small,chat,stream").split(",")
SSE_GAP_US = int(os.environ.get("BENCH_SSE_GAP_US", "0"))  # pause between streamed events at the upstream
# Envoy configurations, in the order they run; bare always runs (every ratio is to it).
ALL_KINDS = ("bare", "proxy-audit", "lua", "wasm-noop", "wasm-digest")
_ASKED = [k for k in os.environ.get("BENCH_KINDS", ",".join(ALL_KINDS)).split(",") if k]
if set(_ASKED) - set(ALL_KINDS):
    raise SystemExit(f"BENCH_KINDS: unknown {sorted(set(_ASKED) - set(ALL_KINDS))}; known: {','.join(ALL_KINDS)}")
KINDS = tuple(k for k in ALL_KINDS if k == "bare" or k in _ASKED)
LABELS = {"wasm-noop": "wasm no-op", "wasm-digest": "wasm digest floor"}
OHA = os.environ.get("BENCH_OHA", str(ROOT / ".bench-tools" / "bin" / "oha"))
UPSTREAM = ROOT / "target" / "release" / "bench-upstream"
# The floor filter (bench/floor): no-op and digest-only modes, see bench/README.md.
FLOOR_WASM = ROOT / "target" / "wasm32-wasip1" / "release" / "proxy_audit_bench_floor.wasm"
SSE_EVENTS = 200
EMAIL = "jane.roe@example.com"

# Envoy on one core, the load generator and the upstream on the other (when there are two).
PIN = shutil.which("taskset") is not None and (os.cpu_count() or 1) >= 2
ENVOY_CPU, LOAD_CPU = os.environ.get("BENCH_ENVOY_CPU", "0"), os.environ.get("BENCH_LOAD_CPU", "1")

PLUGIN_CONFIG = {
    "identity": {"jwt": {"hs256_secret_env": "PROXY_AUDIT_JWT_SECRET"}, "service_subjects": ["^svc-"]},
    "classification": {"entities": "all", "request": True, "response": True,
                       "actions": {"pii": "redact", "phi": "redact", "pci": "mask", "secret": "redact"}},
    "ai": {"enabled": True, "stream_usage": "inject"},
    "audit": {
        "exporter": {"type": "http", "cluster": "audit_sink", "path": "/v1/events", "format": "ndjson",
                     "flush_interval_ms": 200, "max_batch_events": 200, "max_buffered_events": 10000},
        "resources": [{"path": "/patients/{id}", "type": "patient"}],
    },
}

# BENCH_HOLD=1: the filter holds headers while it reads a body it may rewrite
# (envoy.allow_on_headers_stop_iteration, with Envoy's PluginConfig knob of the same name set
# by the harness), to measure what the hold costs against the same run without it.
if os.environ.get("BENCH_HOLD") == "1":
    PLUGIN_CONFIG["envoy"] = {"allow_on_headers_stop_iteration": True}

# The peer: Envoy's Lua filter buffering both bodies and redacting emails and US SSNs.
LUA = r"""
local function redact(s)
  s = s:gsub("[%w._%%+-]+@[%w.-]+%.%a%a+", "[REDACTED:email]")
  return (s:gsub("%f[%d]%d%d%d%-%d%d%-%d%d%d%d%f[%D]", "[REDACTED:us_ssn]"))
end

local function rewrite(handle)
  local body = handle:body()
  if body == nil or body:length() == 0 then return end
  local old = body:getBytes(0, body:length())
  local new = redact(old)
  if new ~= old then
    body:setBytes(new)
  end
end

function envoy_on_request(handle) rewrite(handle) end
function envoy_on_response(handle) rewrite(handle) end
"""

LUA_FILTER = {
    "name": "envoy.filters.http.lua",
    "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua",
                     "default_source_code": {"inline_string": LUA}},
}

SENTENCES = [
    "Please summarize the discharge notes for the follow-up visit next Tuesday.",
    "The lab results from March show the hemoglobin level back within the normal range.",
    "Draft a short, friendly reminder about the appointment and the fasting instructions.",
    "List the medications with dose and frequency, and flag any interaction risks.",
]
PII = [f"Reach the patient at {EMAIL}, SSN 123-45-6789.", "Billing contact: billing.desk@example.com, SSN 234-56-7890."]


def text(size, pii_every):
    out, i = [], 0
    while sum(len(s) + 1 for s in out) < size:
        out.append(PII[i // pii_every % len(PII)] if i % pii_every == pii_every - 1 else SENTENCES[i % len(SENTENCES)])
        i += 1
    return " ".join(out)


def bodies(d):
    """Writes the request and response bodies; returns the payload table."""
    chat = {"model": "gpt-4o-mini", "stream": False, "messages": [
        {"role": "system", "content": "You are a careful clinical assistant."},
        *({"role": "user" if k % 2 == 0 else "assistant", "content": text(1290, 6)} for k in range(6))]}
    chat_body = json.dumps(chat).encode()
    response = {"id": "chatcmpl-bench", "object": "chat.completion", "created": 1_800_000_000, "model": "gpt-4o-mini-2024-07-18",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text(16_100, 8)}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 2100, "completion_tokens": 3900, "total_tokens": 6000}}
    # The client asks for usage itself (the upstream always sends the usage chunk, as OpenAI does when
    # asked): with the filter's injection the chunk would be taken back from a client that did not ask.
    stream_req = {"model": "gpt-4o-mini", "stream": True, "stream_options": {"include_usage": True},
                  "messages": [{"role": "user", "content": "Write the visit summary."}]}
    chunk = lambda delta, finish=None: {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1_800_000_000,
                                        "model": "gpt-4o-mini-2024-07-18",
                                        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    events = [chunk({"role": "assistant", "content": ""})]
    words = ["The ", "patient ", "record ", "shows ", "a ", "follow-up ", "visit ", "next ", "week. "]
    for i in range(SSE_EVENTS - 4):
        piece = f"Contact {EMAIL} " if i % 50 == 17 else "SSN 123-45-6789 " if i % 50 == 41 else words[i % len(words)]
        events.append(chunk({"content": piece}))
    events.append(chunk({}, "stop"))
    events.append({**chunk({}), "choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 196, "total_tokens": 208}})
    sse = "".join(f"data: {json.dumps(e, separators=(',', ':'))}\n\n" for e in events) + "data: [DONE]\n\n"
    (d / "chat.json").write_bytes(chat_body)
    (d / "response.json").write_text(json.dumps(response))
    (d / "stream.json").write_text(json.dumps(stream_req))
    (d / "stream.sse").write_text(sse)
    return {
        "small": {"label": "small GET", "method": "GET", "path": "/patients/p-1042", "body": None},
        "chat": {"label": f"chat {len(chat_body) // 1024} KB → {len(json.dumps(response)) // 1024} KB",
                 "method": "POST", "path": "/v1/chat/completions", "body": d / "chat.json"},
        "stream": {"label": f"stream {SSE_EVENTS} SSE events", "method": "POST", "path": "/v1/chat/completions",
                   "body": d / "stream.json"},
    }


def pinned(cpu):
    return ["taskset", "-c", cpu] if PIN else []


def token():
    now = int(time.time())
    claims = {"sub": "dr-alice", "iss": "https://idp.example.com", "aud": "proxy-audit", "roles": ["physician"],
              "tenant": "clinic-7", "iat": now, "exp": now + 86400}
    return jwt.encode(claims, harness.JWT_SECRET, algorithm="HS256")


def cpu_seconds(pid):
    """User + system CPU time of a process, all its threads (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def oha(url, p, auth, seconds=None, requests=None, rate=None, pid=None):
    """One oha run; with `pid`, also that process's CPU time per answered request."""
    cmd = [*pinned(LOAD_CPU), OHA, "--no-tui", "--output-format", "json", "-c", str(CONNECTIONS),
           "-m", p["method"], "-H", f"authorization: Bearer {auth}"]
    cmd += ["-z", f"{seconds}s"] if seconds else ["-n", str(requests)]
    if rate:
        cmd += ["-q", str(rate), "--latency-correction"]
    if p["body"]:
        cmd += ["-H", "content-type: application/json", "-D", str(p["body"])]
    cpu = cpu_seconds(pid) if pid else 0.0
    out = subprocess.run(cmd + [url + p["path"]], capture_output=True, text=True, check=True).stdout
    cpu = cpu_seconds(pid) - cpu if pid else float("nan")
    r = json.loads(out)
    codes = r.get("statusCodeDistribution", {})
    errors = {k: v for k, v in (r.get("errorDistribution") or {}).items() if "deadline" not in k}
    lat = r.get("latencyPercentiles", {})
    answered = sum(codes.values())
    return {
        "rps": answered / r["summary"]["total"] if r["summary"]["total"] else 0.0,
        "p50": (lat.get("p50") or 0) * 1000, "p99": (lat.get("p99") or 0) * 1000,
        "cpu_us": cpu * 1e6 / answered if answered else float("nan"),
        "busy": cpu / r["summary"]["total"] if r["summary"]["total"] else float("nan"),
        "bad": sum(v for k, v in codes.items() if k != "200") + sum(errors.values()),
    }


def fetch(url, p, auth):
    data = p["body"].read_bytes() if p["body"] else None
    req = urllib.request.Request(url + p["path"], data=data, method=p["method"],
                                 headers={"authorization": f"Bearer {auth}", "content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.status, r.read()


class Upstream:
    def __init__(self, d):
        self.proc = subprocess.Popen([*pinned(LOAD_CPU), str(UPSTREAM), str(d), "0", str(SSE_GAP_US)],
                                     stdout=subprocess.PIPE, text=True)
        self.port = int(self.proc.stdout.readline().split()[1])
        self.url = f"http://127.0.0.1:{self.port}"

    def stats(self):
        with urllib.request.urlopen(self.url + "/__stats", timeout=5) as r:
            return json.loads(r.read())

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


def floor_filter(mode):
    """The floor filter (bench/floor) in `mode`, loaded as proxy-audit is (envoy.filters.http.wasm, V8)."""
    f = harness.wasm_filter({"mode": mode}, wasm=FLOOR_WASM, stop_iteration=False)
    f["name"] = "bench_floor"
    c = f["typed_config"]["config"]
    c["name"] = c["root_id"] = c["vm_config"]["vm_id"] = "bench_floor"
    return f


def start_envoy(kind, upstream):
    opts = {"bare": {"with_filter": False}, "proxy-audit": {},
            "lua": {"with_filter": False, "extra_filters_before": [LUA_FILTER]},
            "wasm-noop": {"with_filter": False, "extra_filters_before": [floor_filter("noop")]},
            "wasm-digest": {"with_filter": False, "extra_filters_before": [floor_filter("digest")]}}[kind]
    e = harness.Envoy(PLUGIN_CONFIG, upstream.port, upstream.port, concurrency=1, **opts).start()
    if PIN:
        subprocess.run(["taskset", "-a", "-pc", ENVOY_CPU, str(e.proc.pid)], check=True, capture_output=True)
    return e


def smoke(kind, e, up, payloads, auth):
    """One request of each payload: answered; redacted both ways by proxy-audit and lua, unchanged
    both ways through the others."""
    redacts = kind in ("proxy-audit", "lua")
    for name, p in payloads.items():
        before = up.stats()["pii_requests"]
        status, body = fetch(e.url, p, auth)
        leaked_up = up.stats()["pii_requests"] - before
        if status != 200:
            raise SystemExit(f"{kind}: {name} answered {status}")
        if name == "stream" and body.count(b"data:") != SSE_EVENTS:
            raise SystemExit(f"{kind}: stream carried {body.count(b'data:')} events, not {SSE_EVENTS}")
        if name == "chat":
            json.loads(body)
        if name != "small" and redacts and (EMAIL.encode() in body or leaked_up):
            raise SystemExit(f"{kind}: {name} not redacted (response has the email: {EMAIL.encode() in body}, "
                             f"request reached the upstream with it: {bool(leaked_up)})")
        if name == "chat" and not redacts and not (EMAIL.encode() in body and leaked_up):
            raise SystemExit(f"{kind}: {name} body changed on the way")


def memory_sample(e, done):
    """Envoy's RSS (/proc), its heap (admin /memory) and the filter's own counters.
    Envoy 1.40 has no wasm VM memory stat: V8's linear memory shows in the RSS only."""
    time.sleep(0.3)  # one exporter flush (200 ms), which publishes the filter's stats
    rss = next(int(line.split()[1]) for line in Path(f"/proc/{e.proc.pid}/status").read_text().splitlines()
               if line.startswith("VmRSS:"))
    with urllib.request.urlopen(f"http://127.0.0.1:{e.admin_port}/memory", timeout=5) as r:
        heap = int(json.loads(r.read()).get("allocated", 0))
    st = {k.rsplit(".", 1)[-1]: v for k, v in e.stats("wasmcustom.proxy_audit").items()}
    return {"requests": done, "rss_kb": rss, "heap": heap, **{k: st.get(k, "-") for k in
            ("buffer_depth", "events_emitted", "events_delivered", "events_dropped")}}


def memory_run(up, payloads, auth):
    """BENCH_REQUESTS chat requests through a fresh Envoy + proxy-audit, sampled every tenth."""
    p = payloads["chat"] if "chat" in payloads else next(iter(payloads.values()))
    e = start_envoy("proxy-audit", up)
    try:
        fetch(e.url, p, auth)
        time.sleep(0.5)
        step, done = max(1, REQUESTS // 10), 0
        rows = [memory_sample(e, 0)]
        while done < REQUESTS:
            n = min(step, REQUESTS - done)
            oha(e.url, p, auth, requests=n)
            done += n
            rows.append(memory_sample(e, done))
            print(f"   memory      {done:7} requests  RSS {rows[-1]['rss_kb'] / 1024:.1f} MiB", file=sys.stderr, flush=True)
        return p["label"], rows
    finally:
        e.stop()


def main():
    started = datetime.datetime.now()
    work = Path(tempfile.mkdtemp(prefix="proxy-audit-bench-"))
    payloads = {k: v for k, v in bodies(work).items() if k in PAYLOADS}
    auth = token()
    up = Upstream(work)
    sat, fixed, rates, notes = {}, {}, {}, []
    try:
        for name, p in payloads.items():
            sat[("upstream", name)] = oha(up.url, p, auth, seconds=SECONDS, pid=up.proc.pid)
        for kind in KINDS:
            e = start_envoy(kind, up)
            try:
                smoke(kind, e, up, payloads, auth)
                for name, p in payloads.items():
                    oha(e.url, p, auth, seconds=1)  # warm-up
                    sat[(kind, name)] = r = oha(e.url, p, auth, seconds=SECONDS, pid=e.proc.pid)
                    if kind == "bare":
                        rates[name] = int(RATE) if RATE else max(10, int(r["rps"] * RATE_FRACTION))
                    fixed[(kind, name)] = oha(e.url, p, auth, seconds=SECONDS, rate=rates[name], pid=e.proc.pid)
                    print(f"   {kind:12} {name:7} {r['rps']:9.0f} req/s  p99 {r['p99']:.2f} ms", file=sys.stderr, flush=True)
                if kind == "proxy-audit":
                    time.sleep(0.5)
                    st = {k.rsplit(".", 1)[-1]: v for k, v in e.stats("wasmcustom.proxy_audit").items()}
                    notes.append(f"proxy-audit exporter: {st.get('events_emitted')} events emitted, "
                                 f"{st.get('events_delivered')} delivered, {st.get('events_dropped')} dropped; "
                                 f"the sink counted {up.stats()['events']}")
            finally:
                e.stop()
        mem_label, mem = memory_run(up, payloads, auth) if "proxy-audit" in KINDS else (None, [])
    finally:
        up.stop()
        shutil.rmtree(work, ignore_errors=True)
    report = render(started, payloads, sat, fixed, rates, mem_label, mem, notes)
    print(report)
    out_dir = ROOT / "bench" / "results"
    out_dir.mkdir(exist_ok=True)
    out = out_dir / f"{started:%Y-%m-%d}.md"
    n = 2
    while out.exists():
        out, n = out_dir / f"{started:%Y-%m-%d}-{n}.md", n + 1
    out.write_text(report)
    print(f"(written to {out.relative_to(ROOT)})", file=sys.stderr)


def cpu_model():
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def tool_version(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True).stdout.strip().splitlines()[0].strip()
    except (OSError, IndexError):
        return "?"


def envoy_version():
    m = re.search(r"/(\d+\.\d+\.\d+)/", tool_version([harness.ENVOY, "--version"]))
    return m.group(1) if m else "?"


def render(started, payloads, sat, fixed, rates, mem_label, mem, notes):
    knobs = " ".join(f"{k}={v}" for k, v in sorted(os.environ.items()) if k.startswith("BENCH_"))
    wasm = harness.WASM.stat().st_size
    ms = lambda v: f"{v:.2f}"
    L = [f"# proxy-audit load benchmark, {started:%Y-%m-%d %H:%M}", "",
         f"- machine: `nproc` = {os.cpu_count()}, {cpu_model()}, {platform.system()} {platform.release()}",
         f"- command: `{(knobs + ' ') if knobs else ''}bench/run`",
         f"- date: {started.isoformat(timespec='seconds')}",
         f"- Envoy {envoy_version()} `--concurrency 1`" + (f" on CPU {ENVOY_CPU}; load generator and upstream on CPU {LOAD_CPU} (taskset)" if PIN else " (no pinning)"),
         f"- load: {tool_version([OHA, '--version'])}, HTTP/1.1 keep-alive, {CONNECTIONS} connections, {SECONDS} s per run",
         f"- `.wasm`: {wasm:,} bytes ({wasm / 2**20:.2f} MiB; target ≤ 1.5 MiB)",
         f"- configurations: {', '.join(LABELS.get(k, k) for k in KINDS)}"
         + ("" if KINDS == ALL_KINDS else " (`BENCH_KINDS`)")]
    if any(k in KINDS for k in ("wasm-digest", "wasm-noop")):
        L.append(f"- floor `.wasm` (`bench/floor`): {FLOOR_WASM.stat().st_size:,} bytes")
    L.append("")
    L += ["## Saturation (fixed concurrency)", "",
          "CPU = user + system time of the Envoy process (of the upstream in `upstream alone` rows), all threads "
          "(`/proc/<pid>/stat`): per answered request, and as a share of one core over the run.", "",
          "| payload | config | req/s | vs bare | p50 ms | p99 ms | added p99 ms | CPU µs/req | CPU % | errors |",
          "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, p in payloads.items():
        bare = sat[("bare", name)]
        for kind in ("upstream", *KINDS):
            r = sat[(kind, name)]
            vs = "" if kind == "upstream" else f"{r['rps'] / bare['rps']:.2f}" if bare["rps"] else "-"
            added = ms(r["p99"] - bare["p99"]) if kind not in ("upstream", "bare") else ""
            label = "upstream alone" if kind == "upstream" else LABELS.get(kind, kind)
            L.append(f"| {p['label']} | {label} | {r['rps']:.0f} | {vs} | {ms(r['p50'])} | {ms(r['p99'])} | {added} "
                     f"| {r['cpu_us']:.0f} | {r['busy']:.0%} | {r['bad']} |")
    idle = [f"{LABELS.get(k, k)} / {p['label']}" for name, p in payloads.items() for k in KINDS
            if sat[(k, name)]["busy"] < 0.9]
    if idle:
        L += ["", f"Envoy used < 90% of its core in: {'; '.join(idle)}. There the limit was elsewhere (the load "
              "generator and upstream, or other processes on the machine), so req/s understates Envoy's capacity."]
    L += ["", f"## Fixed rate ({RATE + ' req/s' if RATE else f'{RATE_FRACTION} × bare Envoy saturation'}, "
          "latency corrected for coordinated omission)", "",
          "`*` = the configuration did not sustain the rate (achieved < 95%): its latencies are queueing.", "",
          "| payload | rate req/s | config | achieved req/s | p50 ms | p99 ms | added p50 ms | added p99 ms | CPU µs/req | errors |",
          "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    sustained = lambda k, n: fixed[(k, n)]["rps"] >= 0.95 * rates[n]
    for name, p in payloads.items():
        bare = fixed[("bare", name)]
        for kind in KINDS:
            r = fixed[(kind, name)]
            added = ("", "") if kind == "bare" else (ms(r["p50"] - bare["p50"]), ms(r["p99"] - bare["p99"]))
            L.append(f"| {p['label']} | {rates[name]} | {LABELS.get(kind, kind)} | {r['rps']:.0f}{'' if sustained(kind, name) else ' *'} "
                     f"| {ms(r['p50'])} | {ms(r['p99'])} | {added[0]} | {added[1]} | {r['cpu_us']:.0f} | {r['bad']} |")
    L += ["", f"## Per streamed SSE event (stream case minus small-GET case, over bare Envoy, / {SSE_EVENTS})", ""]
    per_event = {}
    if "stream" in payloads and "small" in payloads:
        for kind in KINDS[1:]:
            added = lambda key, n: fixed[(kind, n)][key] - fixed[("bare", n)][key]
            per_event[kind] = (added("cpu_us", "stream") - added("cpu_us", "small")) / SSE_EVENTS
            lat = "n/a (rate not sustained)"
            if all(sustained(k, n) for k in ("bare", kind) for n in ("stream", "small")):
                lat = f"{(added('p50', 'stream') - added('p50', 'small')) * 1000 / SSE_EVENTS:.1f} µs"
            L.append(f"- {LABELS.get(kind, kind)}: {per_event[kind]:.1f} µs of Envoy CPU per event (fixed-rate runs); p50 latency per event: {lat}")
        L.append(f"- upstream pause between events: {SSE_GAP_US} µs (`BENCH_SSE_GAP_US`; 0 lets Envoy read several events at once)")
    else:
        L.append("- needs the `small` and `stream` payloads")
    if any(k in KINDS for k in ("wasm-digest", "wasm-noop")):
        L += ["", "## Against bare Envoy, with the floor: saturation throughput ÷ bare (Envoy CPU µs added per request)", "",
              "`wasm digest floor` = a proxy-wasm filter (`bench/floor`, V8) doing only the contract's SHA-256 work "
              "(raw-body, prompt and completion digests, the event hash; no event shipped); `wasm no-op` = one that "
              "returns Continue from every callback. Both are loaded as proxy-audit is.", "",
              "| payload | " + " | ".join(LABELS.get(k, k) for k in KINDS[1:]) + " |",
              "|---|" + "---:|" * (len(KINDS) - 1)]
        for name, p in payloads.items():
            bare = sat[("bare", name)]
            cells = [f"{sat[(k, name)]['rps'] / bare['rps']:.2f} ({sat[(k, name)]['cpu_us'] - bare['cpu_us']:+.0f} µs)"
                     if bare["rps"] else "-" for k in KINDS[1:]]
            L.append(f"| {p['label']} | " + " | ".join(cells) + " |")
    if mem:
        L += ["", f"## Memory: Envoy + proxy-audit over {mem[-1]['requests']:,} requests ({mem_label})", "",
              "RSS from /proc/<pid>/status (includes the V8 VM's linear memory; Envoy 1.40 has no wasm memory stat), "
              "heap = tcmalloc `allocated` from the admin `/memory`, the rest from the filter's `wasmcustom.proxy_audit.*` stats.", "",
              "| requests | RSS MiB | heap MiB | buffer depth | events emitted | delivered | dropped |", "|---:|---:|---:|---:|---:|---:|---:|"]
        for m in mem:
            L.append(f"| {m['requests']:,} | {m['rss_kb'] / 1024:.1f} | {m['heap'] / 2**20:.1f} | {m['buffer_depth']} | "
                     f"{m['events_emitted']} | {m['events_delivered']} | {m['events_dropped']} |")
        if len(mem) > 2:
            a, b = mem[1], mem[-1]
            L.append(f"\nFrom {a['requests']:,} to {b['requests']:,} requests: RSS {(b['rss_kb'] - a['rss_kb']) / 1024:+.1f} MiB, "
                     f"heap {(b['heap'] - a['heap']) / 2**20:+.1f} MiB "
                     f"({(b['rss_kb'] - a['rss_kb']) * 1024 / max(1, b['requests'] - a['requests']):+.1f} RSS bytes/request).")
    L += ["", "## Targets (issue 8)", ""]
    check = lambda ok: "ok" if ok else "MISSED"
    if "chat" in payloads and "proxy-audit" in KINDS:
        c_sat = sat[("proxy-audit", "chat")]["rps"] / max(1e-9, sat[("bare", "chat")]["rps"])
        c_p99 = fixed[("proxy-audit", "chat")]["p99"] - fixed[("bare", "chat")]["p99"]
        L.append(f"- 8 KB chat, added p99 at fixed rate ≤ 1 ms: {c_p99:.2f} ms {check(c_p99 <= 1)}")
        L.append(f"- 8 KB chat, saturation ≥ 75% of bare Envoy: {c_sat:.0%} {check(c_sat >= 0.75)}")
    if "proxy-audit" in per_event:
        L.append(f"- ≤ 50 µs per streamed SSE event: {per_event['proxy-audit']:.1f} µs {check(per_event['proxy-audit'] <= 50)}")
    L.append(f"- `.wasm` ≤ 1.5 MB: {wasm / 1e6:.2f} MB {check(wasm <= 1.5e6)}")
    if mem:
        L.append(f"- memory flat over {mem[-1]['requests']:,} requests: see the memory table")
    L.append("- classifier ≥ 300 MB/s natively: `cargo bench -p proxy-audit-core --bench classify`")
    L += ["", "## Targets (issue 15): saturation throughput ÷ bare Envoy", ""]
    for name, target in (("small", 0.85), ("chat", 0.35), ("stream", 0.50)):
        if name not in payloads or "proxy-audit" not in KINDS or not sat[("bare", name)]["rps"]:
            continue
        share = lambda k: sat[(k, name)]["rps"] / sat[("bare", name)]["rps"]
        floor = [f"{LABELS[k]} {share(k):.2f}" for k in ("wasm-digest", "wasm-noop") if k in KINDS]
        L.append(f"- {payloads[name]['label']} ≥ {target:.2f}: proxy-audit {share('proxy-audit'):.2f} "
                 f"{check(share('proxy-audit') >= target)}" + (f" ({', '.join(floor)})" if floor else ""))
    L += [f"- {n}" for n in notes]
    return "\n".join(L) + "\n"


if __name__ == "__main__":
    main()
