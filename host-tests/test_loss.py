"""Nothing lost unannounced, through a real Envoy, for every way a proxy stops: SIGTERM during a
log-service outage, a graceful drain, a config reload with the log service down past the drain
bound, and sustained overload followed by a stop.

Each test counts the answered requests from Envoy's own access log and asserts the invariant:
every one is in the log service's trail, recovered from the second path (the access log's
sealed event, Envoy's log `proxy-audit: record` lines), or inside a declared loss; and
`proxy-audit verify` fails, naming the emitter, whenever that is not so (a chain without its end
record is open)."""
import http.client
import json
import re
import subprocess
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import harness
from test_skeleton import call

CLI = harness.ROOT / "target" / "release" / "proxy-audit"
# The filter's tick: the exporter's flush_interval_ms (100 ms in the harness default config).
# Waits below are conditions bounded by a number of these periods, or by the intervals Envoy and
# the filter are configured with; no guessed windows.
FLUSH_MS = harness.default_plugin_config()["audit"]["exporter"]["flush_interval_ms"]
TICK_S = FLUSH_MS / 1000
# How long a retired plugin instance keeps shipping what it holds (plugin/src/outbox.rs).
DRAIN_MS = int(re.search(r"const DRAIN_MS: u64 = ([0-9_]+);",
                         (harness.ROOT / "plugin" / "src" / "outbox.rs").read_text()).group(1).replace("_", ""))
# Requests a test wants answered under load before it acts (the tests assert at least 50).
UNDER_LOAD = 50


def verify(*files, live=False):
    args = [str(CLI), "verify", *(["--live"] if live else []), *map(str, files)]
    p = subprocess.run(args, capture_output=True, text=True, timeout=120)
    return p.returncode, p.stdout + p.stderr


class Load:
    """Requests from `workers` threads until stopped; connection errors (Envoy going away) are
    expected and ignored. Counts what the client saw answered."""

    def __init__(self, envoy, workers=6, prefix="/load"):
        self.envoy, self.prefix, self.stop_flag = envoy, prefix, threading.Event()
        self.answered, self.lock = [], threading.Lock()
        self.pool = ThreadPoolExecutor(workers)
        self.futures = [self.pool.submit(self._run, w) for w in range(workers)]

    def _run(self, w):
        i = 0
        while not self.stop_flag.is_set():
            try:
                status, headers, _ = call(self.envoy.url, f"{self.prefix}/{w}/{i}")
                with self.lock:
                    self.answered.append(headers.get("x-proxy-audit-id"))
            except (OSError, urllib.error.URLError, http.client.HTTPException):
                time.sleep(0.01)
            i += 1

    def count(self):
        with self.lock:
            return len(self.answered)

    def stop(self):
        self.stop_flag.set()
        for f in self.futures:
            f.result(timeout=30)
        self.pool.shutdown()
        return self.answered


def sigterm(envoy):
    envoy.proc.terminate()
    envoy.proc.wait(30)
    envoy.log_file.close()


def access_log(envoy):
    """Answered requests as Envoy logged them: audit id -> (emitter, seq) of the sealed event."""
    out = {}
    for line in envoy.access_log_path.read_text().splitlines():
        if not line.startswith("{"):
            continue
        rec = json.loads(line)
        if rec.get("status") in (None, 0, "-"):
            continue
        ev = json.loads(rec["event"])
        out[ev["id"]] = (ev["chain"]["emitter"], ev["chain"]["seq"])
    return out


def records_in_envoy_log(envoy):
    marker = "proxy-audit: record "
    return [json.loads(l.split(marker, 1)[1]) for l in envoy.log().splitlines() if marker in l]


def unaccounted(answered, events):
    """Answered requests that are neither in `events` nor inside a loss they declare."""
    have = {e["id"] for e in events}
    declared = {}
    for e in events:
        if e["kind"] == "loss":
            target = e["trail"].get("emitter", e["chain"]["emitter"])
            declared.setdefault(target, []).append((e["trail"]["first_seq"], e["trail"]["last_seq"]))
    return {i: at for i, at in answered.items()
            if i not in have and not any(a <= at[1] <= b for a, b in declared.get(at[0], []))}


def write_trail(tmp_path, events, name="sink.ndjson"):
    path = tmp_path / name
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    return path


def test_sigterm_during_an_outage_loses_nothing_unannounced(envoy_factory, sink, tmp_path):
    envoy = envoy_factory(access_log=True)
    # The chain_starts of both workers and the main thread's VM arrive: a chain none of whose
    # events reached the log service is invisible there (the second path still has it).
    assert harness.wait_for(lambda: len({e["chain"]["emitter"] for e in sink.store.events}) >= 3, 10)
    sink.store.fail_status, sink.store.fail_until = 503, time.time() + 3600
    load = Load(envoy)
    # Under way: requests answered, and the log service has refused their events.
    assert harness.wait_for(lambda: load.count() >= UNDER_LOAD and sink.store.refused >= 1, harness.periods(FLUSH_MS)), \
        (load.count(), sink.store.refused)
    sigterm(envoy)  # while the load runs and the log service refuses everything
    client_answered = load.stop()
    answered = access_log(envoy)
    assert len(answered) >= 50 and set(filter(None, client_answered)) <= set(answered)
    delivered = list(sink.store.events)
    trail = write_trail(tmp_path, delivered)

    # The log service alone: the tails are gone, and verify says so, naming each worker chain.
    missing = unaccounted(answered, delivered)
    assert missing, "the outage kept events from the log service"
    rc, out = verify(trail)
    assert rc == 1, out
    for emitter in {at[0] for at in missing.values()}:
        assert f"OPEN emitter {emitter}" in out, out

    # Envoy's log: each retiring worker's loss declaration and end record.
    records = records_in_envoy_log(envoy)
    assert {r["trail"].get("reason") for r in records} >= {"end", "undelivered_at_stop"}, records
    assert "retiring with" in envoy.log()
    # With it, every answered request is delivered or inside a declared loss, and the chains close.
    assert not unaccounted(answered, delivered + records)
    rc, out = verify(trail, envoy.log_path)
    assert rc == 0 and "OPEN" not in out and "LOSS" in out, out
    # With the access log too, the lost events themselves are recovered.
    rc, out = verify(trail, envoy.log_path, envoy.access_log_path)
    assert rc == 0 and "PRESENT" in out, out
    recovered = {json.loads(json.loads(l)["event"])["id"] for l in envoy.access_log_path.read_text().splitlines()}
    assert set(answered) <= recovered | {e["id"] for e in delivered}


def test_graceful_drain_then_stop_delivers_everything(envoy_factory, sink, tmp_path):
    drain_s = 2
    envoy = envoy_factory(access_log=True, extra_args=["--drain-time-s", str(drain_s), "--drain-strategy", "immediate"])
    load = Load(envoy)
    assert harness.wait_for(lambda: load.count() >= UNDER_LOAD, harness.periods(FLUSH_MS)), load.count()
    # What an orchestrator does before stopping Envoy (Istio's pilot-agent posts the same).
    req = urllib.request.Request(f"http://127.0.0.1:{envoy.admin_port}/drain_listeners?graceful&skip_exit", method="POST")
    assert urllib.request.urlopen(req, timeout=10).status == 200
    time.sleep(drain_s)  # the load goes on for the configured drain time
    load.stop()
    answered = access_log(envoy)
    assert len(answered) >= 50
    # The filter's timer still runs while Envoy drains: everything reaches the log service.
    ids = lambda: {e["id"] for e in sink.store.events}  # noqa: E731
    assert harness.wait_for(lambda: set(answered) <= ids(), 20 * TICK_S + 10), len(set(answered) - ids())
    sigterm(envoy)
    delivered = list(sink.store.events)
    trail = write_trail(tmp_path, delivered)
    # Stopped after the drain, the end records are in Envoy's log; nothing was undelivered.
    records = records_in_envoy_log(envoy)
    assert [r for r in records if r["trail"].get("reason") == "end"]
    # A stop declares what was still buffered (a checkpoint sealed since the last tick, say);
    # after the drain, every seq so declared is present after all.
    present = {(e["chain"]["emitter"], e["chain"]["seq"]) for e in delivered + records}
    for r in (r for r in records if r["kind"] == "loss"):
        target = r["trail"].get("emitter", r["chain"]["emitter"])
        assert all((target, s) in present for s in range(r["trail"]["first_seq"], r["trail"]["last_seq"] + 1)), r
    rc, out = verify(trail, envoy.log_path)
    assert rc == 0 and "OPEN" not in out, out


def test_reload_with_the_log_service_down_past_the_drain_bound(envoy_factory, sink, tmp_path):
    cfg = harness.default_plugin_config()
    envoy = envoy_factory(cfg, access_log=True, lds=True, extra_args=["--drain-time-s", "1"])
    assert harness.wait_for(lambda: len({e["chain"]["emitter"] for e in sink.store.events}) >= 3, 10)
    old = {e["chain"]["emitter"] for e in sink.store.events}
    sink.store.fail_status, sink.store.fail_until = 503, time.time() + 3600
    for i in range(60):
        assert call(envoy.url, f"/before/{i}")[0] == 200
    # A config change: same VM, new plugin configuration → a new instance; the old one retires.
    cfg2 = harness.default_plugin_config()
    cfg2["audit"]["checkpoint_interval_ms"] = 59_000  # any change of the plugin configuration
    envoy.reload(cfg2)

    def updates():
        return int(envoy.stats("listener_manager.lds.update_success").get("listener_manager.lds.update_success", 0))
    assert harness.wait_for(lambda: updates() >= 2, 20), "Envoy took the new listener config"
    reloaded = time.time()
    for i in range(60):
        assert call(envoy.url, f"/after/{i}")[0] == 200
    # Down for longer than a retiring instance keeps shipping on its own (DRAIN_MS, counted from
    # the reload Envoy took), plus ten ticks.
    time.sleep(max(0.0, reloaded + DRAIN_MS / 1000 + 10 * TICK_S - time.time()))
    sink.store.fail_until = time.time()
    answered = access_log(envoy)
    ids = lambda: {e["id"] for e in sink.store.events}  # noqa: E731
    assert harness.wait_for(lambda: set(answered) <= ids(), 30), len(set(answered) - ids())
    delivered = list(sink.store.events)
    emitters = {e["chain"]["emitter"] for e in delivered}
    new = emitters - old
    assert new, "the new instances started chains of their own"
    assert "retired with" not in envoy.log(), "nothing was given up"
    # The retired chains closed (their end records came through the new instances); the new ones are
    # live. Without --live, exactly the new chains (and the main thread's) are open.
    ends = {e["chain"]["emitter"] for e in delivered if e.get("trail", {}).get("reason") == "end"}
    workers_old = {at[0] for i, at in answered.items() if at[0] in old}
    assert workers_old and workers_old <= ends, (workers_old, ends)
    trail = write_trail(tmp_path, delivered)
    rc, out = verify(trail, live=True)
    assert rc == 0, out
    rc, out = verify(trail)
    assert rc == 1 and not any(f"OPEN emitter {e}:" in out for e in workers_old), out
    # Stats per instance: each counts its own events once (they were double-counted per VM).
    stats = envoy.stats("proxy_audit.events_emitted")
    emitted = int(stats["wasmcustom.proxy_audit.events_emitted"])
    distinct = len({(e["chain"]["emitter"], e["chain"]["seq"]) for e in delivered})
    assert emitted <= distinct + 4, (emitted, distinct)  # + records sealed since the last delivery
    assert emitted >= len(answered)


def test_overload_declares_losses_while_it_lasts_then_stop(envoy_factory, sink, tmp_path):
    cfg = harness.default_plugin_config()
    cfg["audit"]["exporter"].update({"max_buffered_events": 30, "max_batch_events": 10})
    envoy = envoy_factory(cfg, access_log=True)
    harness.wait_for(lambda: len(sink.store.events) >= 2, 10)
    sink.store.delay = 0.5  # a slow log service: at most 20 events per second per worker
    start = time.time()
    load = Load(envoy, workers=8)

    def declared_during():
        with sink.store.lock:
            return [t for t, kinds in sink.store.arrivals if t > start and "loss" in kinds]
    # Declarations reach the log service while the overload lasts, not only after: the load runs
    # until three have arrived (each batch takes the log service's delay).
    assert harness.wait_for(lambda: len(declared_during()) >= 3, harness.periods(sink.store.delay * 1000)), \
        sink.store.arrivals[-5:]
    answered_by_client = len(load.stop())
    assert int(envoy.stats("proxy_audit.events_dropped")["wasmcustom.proxy_audit.events_dropped"]) > 0
    assert "buffer full:" in envoy.log()
    sink.store.delay = 0
    time.sleep(4 * TICK_S)
    sigterm(envoy)
    answered = access_log(envoy)
    assert len(answered) >= answered_by_client * 0.9
    delivered = list(sink.store.events)
    records = records_in_envoy_log(envoy)
    missing = unaccounted(answered, delivered + records)
    assert not missing, f"{len(missing)} answered requests neither delivered nor declared lost"
    trail = write_trail(tmp_path, delivered)
    rc, out = verify(trail, envoy.log_path)
    assert rc == 0 and "LOSS" in out, out
    # The log service alone holds when the end records reached it (Envoy sends what on_done
    # POSTs if its loop still turns), and otherwise fails naming the open chains.
    rc, out = verify(trail)
    ended = {e["chain"]["emitter"] for e in delivered if e.get("trail", {}).get("reason") == "end"}
    emitters = {e["chain"]["emitter"] for e in delivered}
    complete = emitters <= ended and not unaccounted(answered, delivered)
    assert (rc == 0) == complete, out
    for emitter in emitters - ended:
        assert f"OPEN emitter {emitter}" in out, out
