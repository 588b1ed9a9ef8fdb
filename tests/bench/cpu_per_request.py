#!/usr/bin/env python3
"""Runs one load command (wrk or pgbench) and prints one line of figures:

  rate=<requests/s> p50_ms=<…> p99_ms=<…> service_us=<…> postgres_us=<…> loadgen_us=<…>

where *_us are CPU microseconds (user + system) per request spent by the
admin service process, by this cluster's PostgreSQL (postmaster, live
backends and the ones reaped during the run) and by the load generator
itself. CPU per request is what the two cores are shared by, so it shows
where the time goes even when other work on the machine disturbs the rates.

usage: cpu_per_request.py POSTMASTER_PID SERVICE_PID|0 -- COMMAND…
"""
import os
import re
import subprocess
import sys
import time

HZ = os.sysconf("SC_CLK_TCK")


def ticks(pid, with_children=False):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:  # gone between listing and reading: counted when reaped
        return 0
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    return utime + stime + ((cutime + cstime) if with_children else 0)


def postgres(postmaster):
    total = ticks(postmaster, with_children=True)
    with open(f"/proc/{postmaster}/task/{postmaster}/children") as f:
        for child in f.read().split():
            total += ticks(int(child))
    return total


def ms(text):
    m = re.match(r"([\d.]+)(us|ms|s)$", text)
    if not m:
        return float("nan")
    v = float(m.group(1))
    return {"us": v / 1000, "ms": v, "s": v * 1000}[m.group(2)]


def main():
    postmaster, service = int(sys.argv[1]), int(sys.argv[2])
    cmd = sys.argv[sys.argv.index("--") + 1:]
    pg0, svc0 = postgres(postmaster), ticks(service) if service else 0
    before = os.times()
    run = subprocess.run(cmd, capture_output=True, text=True)
    after = os.times()
    time.sleep(0.5)  # let the postmaster reap the backends of pgbench's connections
    pg1, svc1 = postgres(postmaster), ticks(service) if service else 0
    out = run.stdout
    if run.returncode != 0:
        sys.exit(f"{cmd[0]} failed: {run.stderr.strip()}")
    wrk = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if wrk:
        rate = float(wrk.group(1))
        total = int(re.search(r"(\d+) requests in", out).group(1))
        bad = re.search(r"(Non-2xx or 3xx responses|Socket errors):.*", out)
        if bad:
            sys.exit(f"wrk: {bad.group(0)}")
        p50 = ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))
        p99 = ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))
    else:
        rate = float(re.search(r"tps = ([\d.]+)", out).group(1))
        total = int(re.search(r"number of transactions actually processed: (\d+)", out).group(1))
        if re.search(r"number of failed transactions: [1-9]", out):
            sys.exit("pgbench: failed transactions")
        lat = re.search(r"latency average = ([\d.]+) ms", out)
        p50 = float(lat.group(1)) if lat else float("nan")
        p99 = float("nan")
    loadgen = (after.children_user + after.children_system) - (
        before.children_user + before.children_system
    )
    us = lambda seconds: seconds / total * 1e6
    print(
        f"rate={rate:.0f} p50_ms={p50:.2f} p99_ms={p99:.2f} "
        f"service_us={us((svc1 - svc0) / HZ):.1f} postgres_us={us((pg1 - pg0) / HZ):.1f} "
        f"loadgen_us={us(loadgen):.1f}"
    )


main()
