"""How fast `proxy-audit verify` checks a trail, and how much memory it takes.

Writes synthetic signed trails of 1.1 KB access events (the event of a plain GET; 8 chains, a signed
checkpoint every 1,000 events, `verify/examples/gen_trail.rs`), then runs the release CLI on each:
`verify --key` on one thread and on every CPU, the same trail gzip-compressed, the trail given twice
(two sources carrying the same events: the copy history is kept), and as two shards (`--shard I/2
--format json`, then `--merge`). Every case runs REPEAT times (default 5), the cases interleaved;
reported: the best wall-clock rate, the best rate per CPU second (user + system time of the process,
which a machine shared with other work disturbs less than the wall clock), the speedup of the best
wall clock over one thread's, the peak RSS, and the load average before and after. Markdown to
stdout and to bench/results/<date>-verify.md.

    cargo build --release -p proxy-audit-cli && cargo build --release -p proxy-audit-verify --example gen_trail
    REPEAT=5 .venv/bin/python bench/verify_rate.py [EVENTS ...]      (default: 100000 400000)
"""
import datetime
import gzip
import os
import pathlib
import platform
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
CLI = ROOT / "target" / "release" / "proxy-audit"
GEN = ROOT / "target" / "release" / "examples" / "gen_trail"
EMITTERS = 8


def run(args, stdout=subprocess.DEVNULL):
    """Runs the CLI; returns (exit code, wall s, cpu s, peak RSS MB). The peak RSS comes from
    /usr/bin/time -f %M (the rusage of a child forked from Python counts Python's pages too)."""
    with tempfile.NamedTemporaryFile() as rss_file:
        start = time.perf_counter()
        p = subprocess.Popen(["/usr/bin/time", "-f", "%M", "-o", rss_file.name, str(CLI), *map(str, args)],
                             stdout=stdout, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(p.pid, 0)
        wall = time.perf_counter() - start
        p.returncode = os.waitstatus_to_exitcode(status)
        rss_kb = int(pathlib.Path(rss_file.name).read_text().split()[-1])
    return p.returncode, wall, usage.ru_utime + usage.ru_stime, rss_kb / 1024


def at_once(args, n):
    """Wall clock of n runs started together."""
    start = time.perf_counter()
    procs = [subprocess.Popen([str(CLI), *map(str, args)], stdout=subprocess.DEVNULL) for _ in range(n)]
    assert all(p.wait() == 0 for p in procs)
    return time.perf_counter() - start


def cpu_model():
    for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def main():
    sizes = [int(a) for a in sys.argv[1:]] or [100_000, 400_000]
    repeat = int(os.environ.get("REPEAT", "5"))
    for exe in (CLI, GEN):
        if not exe.exists():
            sys.exit(f"{exe} missing: cargo build --release -p proxy-audit-cli && "
                     "cargo build --release -p proxy-audit-verify --example gen_trail")
    cpus = os.cpu_count() or 1
    load_before = os.getloadavg()
    rows = []
    with tempfile.TemporaryDirectory() as d:
        d = pathlib.Path(d)
        for n in sizes:
            trail = d / f"trail-{n}.ndjson"
            with trail.open("wb") as f:
                subprocess.run([str(GEN), str(n), str(EMITTERS), "--key", str(d)], stdout=f, check=True)
            lines = sum(1 for _ in trail.open("rb"))
            mb = trail.stat().st_size / 1e6
            key = d / "bench.pub"
            gz = d / f"trail-{n}.ndjson.gz"
            with trail.open("rb") as src, gzip.open(gz, "wb", compresslevel=6) as dst:
                shutil.copyfileobj(src, dst)
            copy = d / f"copy-{n}.ndjson"
            shutil.copyfile(trail, copy)
            cases = [
                ("1 thread", ["verify", "--key", key, "--threads", "1", trail]),
                (f"{cpus} threads", ["verify", "--key", key, "--threads", cpus, trail]),
                (f"{cpus} threads, .gz", ["verify", "--key", key, "--threads", cpus, gz]),
                ("1 thread, the trail twice (2 sources, every event a copy)",
                 ["verify", "--key", key, "--threads", "1", trail, copy]),
            ]
            best = {label: (float("inf"), float("inf"), 0.0) for label, _ in cases}
            together = float("inf")
            for _ in range(repeat):
                for label, args in cases:
                    rc, wall, cpu, rss = run(args)
                    assert rc == 0, (label, rc)
                    w, c, r = best[label]
                    best[label] = (min(w, wall), min(c, cpu), max(r, rss))
                together = min(together, at_once(cases[0][1], cpus))
            one = best["1 thread"][0]
            # What the machine gives: CPUS one-thread runs at once, against one alone.
            rows.append((f"{lines:,}", f"{mb:.0f}", f"calibration: {cpus} one-thread runs at once (all their events)",
                         f"{cpus * lines / together:,.0f}", "", f"{cpus * one / together:.2f}", ""))
            for label, _ in cases:
                wall, cpu, rss = best[label]
                events = lines * (2 if "twice" in label else 1)
                rows.append((f"{lines:,}", f"{mb:.0f}", label, f"{events / wall:,.0f}", f"{events / cpu:,.0f}",
                             f"{one / wall:.2f}" if "twice" not in label else "", f"{rss:,.1f}"))
            # Two shards, each reading the whole trail and checking half the emitters, then merged.
            walls, cpus_used, rss_max, reports = [], [], [], []
            for i in range(2):
                out = d / f"shard-{i}.json"
                with out.open("wb") as f:
                    rc, wall, cpu, rss = run(["verify", "--key", key, "--threads", "1", "--shard", f"{i}/2",
                                              "--format", "json", trail], stdout=f)
                assert rc == 0, rc
                walls.append(wall), cpus_used.append(cpu), rss_max.append(rss), reports.append(out)
            rc, _, _, _ = run(["verify", "--merge", *reports])
            assert rc == 0, rc
            rows.append((f"{lines:,}", f"{mb:.0f}", "2 shards × 1 thread (slowest shard, one run)",
                         f"{lines / max(walls):,.0f}", f"{lines / max(cpus_used):,.0f}", "", f"{max(rss_max):,.1f}"))
    load_after = os.getloadavg()
    report = [
        f"# proxy-audit verify rate — {datetime.date.today()}",
        "",
        f"Machine: {cpus} CPUs, {cpu_model()}, shared with other work (load average "
        f"{load_before[0]:.1f} before, {load_after[0]:.1f} after). Command: `REPEAT={repeat} {' '.join(sys.argv)}`.",
        f"Trails: {EMITTERS} signed chains of 1.1 KB access events, a signed checkpoint every 1,000 events;",
        f"`verify --key` each time, best of {repeat} interleaved runs (events/s: events over the best wall clock,",
        "and over the least user + system CPU time; speedup: one thread's best wall clock over this one's; the",
        "calibration row runs one-thread verifications side by side: its speedup is the parallelism the machine",
        "had to give at the time, the ceiling for the threads rows).",
        "",
        "| events | MB | run | events/s (wall) | events/s per CPU second | speedup | peak RSS MB |",
        "|---:|---:|---|---:|---:|---:|---:|",
        *(f"| {' | '.join(r)} |" for r in rows),
        "",
    ]
    text = "\n".join(report)
    print(text)
    out = ROOT / "bench" / "results" / f"{datetime.date.today()}-verify.md"
    k = 2
    while out.exists():
        out = ROOT / "bench" / "results" / f"{datetime.date.today()}-verify-{k}.md"
        k += 1
    out.write_text(text)


if __name__ == "__main__":
    main()
