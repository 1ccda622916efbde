#!/usr/bin/env python3
"""Runs W1-W3 on our backtest and on NautilusTrader 1.231.0, side by side, and prints events/s of the run phase,
wall time of the whole command, peak RSS and the ratios; then a 100-point W1 sweep on 1 and on all cores.

    python3 bench/compare_nautilus.py [--ticks 1000000] [--repeat 3] [--nautilus-python PATH]

Needs a release build (`cargo build --release`) and a venv with nautilus_trader==1.231.0 and pyarrow
(BENCHMARKS.md says how). Data is generated once under $HOME/.cache/tradingsystem/bench-data.
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
BIN = TARGET / "release" / "tradingsystem"


def run_measured(cmd):
    """Runs cmd under wait4 to get its own peak RSS (ru_maxrss, KB on Linux)."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # The outputs are a few KB (a JSON summary, a line of timing): they fit the pipe, so reading after exit is safe.
    _, status, rusage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    out, err = p.stdout.read(), p.stderr.read()
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{' '.join(map(str, cmd))} failed:\n{err}")
    return out, err, wall, rusage.ru_maxrss / 1024.0


def ensure_data(ticks):
    base = Path.home() / ".cache" / "tradingsystem" / "bench-data" / f"{ticks}"
    for kind in ["quotes", "trades"]:
        d = base / kind
        if not (d / "market" / kind).exists():
            subprocess.run(
                [BIN, "market", "generate", "--symbol", "PETR4", "--kind", kind, "--ticks", str(ticks),
                 "--start", "2025-03-10", "--seed", "42", "--out", d],
                check=True,
            )
    return base


OURS = {
    "W1": ["--strategy", "sma_cross", "--param", "fast=1", "--param", "slow=100", "--param", "hold_ticks=1000",
           "--param", "price=mid"],
    "W2": ["--strategy", "noop"],
    "W3": ["--strategy", "sma_cross", "--param", "fast=1", "--param", "slow=100", "--param", "hold_ticks=1000",
           "--param", "price=trade"],
}


def ours(workload, data):
    kind = "trades" if workload == "W3" else "quotes"
    cmd = [BIN, "backtest", "--symbols", "PETR4", "--data", data / kind / "market", *OURS[workload]]
    out, err, wall, rss = run_measured(cmd)
    m = re.search(r"(\d+) events in ([0-9.]+) s \(streamed: reading ([0-9.]+) s, run phase ([0-9.]+) s", err)
    events, total, reading, run = int(m.group(1)), float(m.group(2)), float(m.group(3)), float(m.group(4))
    orders = json.loads(out)["orders"]
    return {"events": events, "eps": events / run, "eps_with_reading": events / total, "reading": reading,
            "run": run, "wall": wall, "rss": rss, "orders": orders}


def nautilus(workload, data, python):
    kind = "trades" if workload == "W3" else "quotes"
    cmd = [python, "-W", "ignore", ROOT / "bench" / "nautilus" / "nautilus_w.py", workload, data / kind / "market"]
    out, err, wall, rss = run_measured(cmd)
    r = json.loads(out.strip().splitlines()[-1])
    return {"events": r["events"], "eps": r["events_per_second"], "run": r["run_seconds"], "wall": wall, "rss": rss,
            "orders": r["orders"]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ticks", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--nautilus-python", default=str(Path.home() / ".cache/tradingsystem/nautilus-venv/bin/python"))
    ap.add_argument("--skip-nautilus", action="store_true")
    a = ap.parse_args()
    if not BIN.exists():
        sys.exit(f"{BIN} not found: cargo build --release first (CARGO_TARGET_DIR is honoured)")
    data = ensure_data(a.ticks)
    rows = []
    for w in ["W1", "W2", "W3"]:
        us = [ours(w, data) for _ in range(a.repeat)]
        them = [] if a.skip_nautilus else [nautilus(w, data, a.nautilus_python) for _ in range(a.repeat)]
        med = lambda runs, k: statistics.median(r[k] for r in runs) if runs else float("nan")
        rows.append((w, us, them, med))
        print(
            f"{w}: ours {med(us, 'eps') / 1e6:.2f} M events/s run phase ({med(us, 'eps_with_reading') / 1e6:.2f} M with "
            f"reading; reading {med(us, 'reading'):.3f} s vs run {med(us, 'run'):.3f} s), {med(us, 'wall'):.2f} s wall, "
            f"{med(us, 'rss'):.0f} MB, {us[0]['orders']} orders | nautilus {med(them, 'eps') / 1e3:.1f} k events/s, "
            f"{med(them, 'wall'):.2f} s wall, {med(them, 'rss'):.0f} MB, {them[0]['orders'] if them else '-'} orders | "
            f"run phase x{med(us, 'eps') / med(them, 'eps'):.0f}, with reading x{med(us, 'eps_with_reading') / med(them, 'eps'):.0f}, "
            f"wall x{med(them, 'wall') / med(us, 'wall'):.0f}, RSS 1/{med(them, 'rss') / med(us, 'rss'):.1f}",
            flush=True,
        )
    # The sweep: 100 points of W1 (slow = 50..545), one core, then every core.
    sweep = [BIN, "backtest", "--symbols", "PETR4", "--data", data / "quotes" / "market", "--strategy", "sma_cross",
             "--param", "fast=1", "--param", "slow=50:545:5", "--param", "hold_ticks=1000", "--param", "price=mid"]
    cores = os.cpu_count() or 1
    times = {}
    for jobs in sorted({1, cores}):
        _, err, wall, rss = run_measured([*sweep, "--jobs", str(jobs)])
        m = re.search(r"(\d+) runs on (\d+) thread\(s\) in ([0-9.]+) s", err)
        times[jobs] = float(m.group(3))
        print(f"sweep of 100 W1 runs on {jobs} core(s): {times[jobs]:.2f} s of runs, {wall:.2f} s wall, {rss:.0f} MB",
              flush=True)
    if cores > 1:
        print(f"sweep speed-up on {cores} cores: x{times[1] / times[cores]:.2f}")


if __name__ == "__main__":
    main()
