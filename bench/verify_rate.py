"""How fast `proxy-audit verify` checks a trail, and how much memory it takes.

Writes synthetic signed trails of 1.1 KB access events (the event of a plain GET; 8 chains, a signed
checkpoint every 1,000 events, `verify/examples/gen_trail.rs`), then runs the release CLI on each:
`verify --key` on one thread and on every CPU, the same trail gzip-compressed, and as two shards
(`--shard I/2 --format json`, then `--merge`). Reports events per second (wall clock and per CPU
second: user + system time of the process, which a machine shared with other work disturbs less)
and the peak RSS. Markdown to stdout and to bench/results/<date>-verify.md.

    cargo build --release -p proxy-audit-cli && cargo build --release -p proxy-audit-verify --example gen_trail
    .venv/bin/python bench/verify_rate.py [EVENTS ...]      (default: 100000 400000)
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
    """Runs the CLI; returns (exit code, wall s, cpu s, peak RSS MB)."""
    start = time.perf_counter()
    p = subprocess.Popen([str(CLI), *map(str, args)], stdout=stdout, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - start
    p.returncode = os.waitstatus_to_exitcode(status)
    return p.returncode, wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def cpu_model():
    for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def main():
    sizes = [int(a) for a in sys.argv[1:]] or [100_000, 400_000]
    for exe in (CLI, GEN):
        if not exe.exists():
            sys.exit(f"{exe} missing: cargo build --release -p proxy-audit-cli && "
                     "cargo build --release -p proxy-audit-verify --example gen_trail")
    cpus = os.cpu_count() or 1
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
            cases = [
                ("1 thread", ["verify", "--key", key, "--threads", "1", trail]),
                (f"{cpus} threads", ["verify", "--key", key, trail]),
                (f"{cpus} threads, .gz", ["verify", "--key", key, gz]),
            ]
            for label, args in cases:
                rc, wall, cpu, rss = run(args)
                assert rc == 0, (label, rc)
                rows.append((f"{lines:,}", f"{mb:.0f}", label, f"{lines / wall:,.0f}", f"{lines / cpu:,.0f}", f"{rss:,.0f}"))
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
            rows.append((f"{lines:,}", f"{mb:.0f}", "2 shards × 1 thread (slowest shard)",
                         f"{lines / max(walls):,.0f}", f"{lines / max(cpus_used):,.0f}", f"{max(rss_max):,.0f}"))
    report = [
        f"# proxy-audit verify rate — {datetime.date.today()}",
        "",
        f"Machine: {cpus} CPUs, {cpu_model()}. Command: `{' '.join(sys.argv)}`. Trails: {EMITTERS} signed chains of",
        "1.1 KB access events, a signed checkpoint every 1,000 events; `verify --key` each time.",
        "",
        "| events | MB | run | events/s (wall) | events/s per CPU second | peak RSS MB |",
        "|---:|---:|---|---:|---:|---:|",
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
