#!/usr/bin/env python3
"""kbatch report and kbatch serve at scale: the two figures of the web layer.

1. report on 1,000,000 keyword-like items. A deterministic keyword list with volumes
   (modifier + product + qualifier phrases with a Zipf-like volume) goes through
   `kbatch create --embedder lexical`; then, each three times (medians):
   - `kbatch report` wall time, against the reference `kbatch export --clusters` on the same
     project (the same committed snapshot, read and sorted, written as CSV);
   - the file's size;
   - Chromium's render: headless Chromium opens the file and dumps the DOM; the report's
     script writes `performance.now()` into `data-rendered-ms` once the treemap, table and
     charts are built (time from navigation start), and the whole Chromium process is timed
     against the reference, Chromium on a one-line HTML file.
2. serve under load. A job (`POST /api/projects`, an upload of --load-items of the same
   keywords) runs alone, then again with 200 client threads sending GET /api/projects/{p}
   together once every --interval-ms (200 concurrent requests a tick; 0: back to back) while
   it runs: p50/p99 latency, errors, and the job's wall time (its record's start and end)
   against the same job alone, in the same run.

    scripts/bench_web.py [--items 1000000] [--load-items 150000] [--reps 3] [--interval-ms 1000]
                         [--skip-report] [--skip-serve]

Needs /usr/bin/chromium and the release binary (KBATCH_BIN to use another); the load client is
examples/serve_load.rs (built here with cargo).
"""

import argparse
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KBATCH = os.environ.get("KBATCH_BIN") or os.path.join(ROOT, "target", "release", "kbatch")
CHROMIUM = "/usr/bin/chromium"

MODIFIERS = """best cheap buy new used discount top rated affordable premium luxury vintage
modern small large portable wireless electric manual organic natural handmade custom
professional beginner kids mens womens waterproof lightweight heavy duty compact outdoor
indoor""".split()
PRODUCTS = ["""running shoes hiking boots yoga mat coffee maker espresso machine blender
toaster air fryer rice cooker slow cooker stand mixer knife set cast iron skillet frying pan
dutch oven water bottle backpack tent sleeping bag camping stove headlamp bike helmet
mountain bike road bike electric scooter skateboard treadmill dumbbells kettlebell rowing
machine office chair standing desk monitor keyboard mouse laptop tablet headphones earbuds
speaker smart watch fitness tracker phone case charger power bank camera lens tripod drone
printer router vacuum cleaner robot vacuum air purifier humidifier dehumidifier space
heater fan mattress pillow duvet sofa bookshelf desk lamp rug curtains plant pot garden hose
lawn mower leaf blower drill saw toolbox paint brush ladder"""]
PRODUCTS = sorted(set(" ".join(PRODUCTS).split()))


def keywords(n, seed=7):
    """n distinct keyword-like phrases with volumes, the same for the same n and seed."""
    rng = random.Random(seed)
    words = PRODUCTS
    quals = ["for sale", "near me", "reviews", "2024", "under 100", "online", "for women",
             "for men", "for kids", "for beginners", "reddit", "comparison", "deals", "price",
             "black friday", "on sale", "clearance", "repair", "parts", "replacement",
             "how to clean", "how to use", "guide", "size chart", "warranty", "alternatives",
             "brands", "uk", "usa", "cheap"]
    seen = set()
    out = []
    while len(out) < n:
        parts = []
        if rng.random() < 0.7:
            parts.append(rng.choice(MODIFIERS))
        if rng.random() < 0.3:
            parts.append(rng.choice(MODIFIERS))
        parts.append(rng.choice(words))
        parts.append(rng.choice(words))
        if rng.random() < 0.6:
            parts.append(rng.choice(quals))
        if rng.random() < 0.2:
            parts.append(str(rng.randint(1, 999)))
        k = " ".join(parts)
        if k in seen:
            continue
        seen.add(k)
        volume = int(10 * (1.0 / rng.random()) ** 1.2) // 10 * 10
        out.append((k, min(volume, 1_000_000)))
    return out


def write_csv(path, rows):
    with open(path, "w") as f:
        f.write("Keyword,Volume\n")
        for k, v in rows:
            f.write(f"{k},{v}\n")


def run(args, **kw):
    return subprocess.run(args, check=True, capture_output=True, text=True, **kw)


def timed(args, **kw):
    start = time.perf_counter()
    out = run(args, **kw)
    return time.perf_counter() - start, out


def cpu_timed(args, **kw):
    """Wall time, the child's CPU time (user + system), and its output."""
    import resource
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall, out = timed(args, **kw)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, out


def chromium(url, profile, extra=()):
    return [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
            "--disable-background-networking", "--no-first-run",
            f"--user-data-dir={profile}", "--window-size=1280,2000", *extra, url]


def bench_report(work, n):
    db = os.path.join(work, "report.sqlite")
    data = os.path.join(work, f"keywords_{n}.csv")
    if not os.path.exists(data):
        write_csv(data, keywords(n))
    if not os.path.exists(db):
        wall, _ = timed([KBATCH, "--db", db, "create", "--project", "p", "--input", data,
                         "--embedder", "lexical", "--batch-size", "10000", "--quiet"])
        print(f"create: {n:,} keywords in {wall:.1f} s")
    status = json.loads(run([KBATCH, "--db", db, "status", "--project", "p", "--json"]).stdout)
    print(f"project: {status['items_total']:,} keywords, {status['n_clusters']} topics, "
          f"{status.get('groups', 0):,} groups")
    html = os.path.join(work, "report.html")
    blank = os.path.join(work, "blank.html")
    with open(blank, "w") as f:
        f.write("<!doctype html><title>blank</title><p>blank</p>\n")
    writes, exports, renders, rendered_ms, blanks = [], [], [], [], []
    write_cpu, export_cpu = [], []
    for i in range(3):
        t, c, _ = cpu_timed([KBATCH, "--db", db, "export", "--project", "p", "--clusters",
                             "--output", os.path.join(work, "clusters.csv")])
        exports.append(t)
        export_cpu.append(c)
        t, c, out = cpu_timed([KBATCH, "--db", db, "report", "--project", "p", "--output", html])
        writes.append(t)
        write_cpu.append(c)
        profile = os.path.join(work, f"chromium-{i}")
        shutil.rmtree(profile, ignore_errors=True)
        t, _ = timed(chromium("file://" + blank, profile + "-blank", ["--dump-dom"]))
        blanks.append(t)
        t, dom = timed(chromium("file://" + html, profile, ["--dump-dom"]))
        renders.append(t)
        m = re.search(r'data-rendered-ms="(\d+)"', dom.stdout)
        assert m, "the report did not render"
        rendered_ms.append(int(m.group(1)))
    size = os.path.getsize(html)
    med = statistics.median
    print(out.stderr.strip())
    print(f"report write: median {med(writes):.2f} s (runs {', '.join(f'{x:.2f}' for x in writes)}); "
          f"reference export --clusters {med(exports):.2f} s: ratio {med(writes) / med(exports):.2f}; "
          f"CPU (user + sys) {med(write_cpu):.2f} s against {med(export_cpu):.2f} s; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"report size: {size / 1e6:.2f} MB")
    print(f"chromium: report rendered at {med(rendered_ms)} ms after navigation start "
          f"(runs {', '.join(map(str, rendered_ms))}); whole process {med(renders):.2f} s against "
          f"{med(blanks):.2f} s for a one-line page: ratio {med(renders) / med(blanks):.2f}")


def serve_job(base, data, name):
    """Uploads `data` as project `name`; returns the job id."""
    boundary = "bench-boundary-91c2"
    fields = {"project": name, "embedder": "lexical", "batch-size": "2000"}
    body = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in fields.items())
    with open(data, "rb") as f:
        body += (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
                 f'filename="k.csv"\r\n\r\n').encode() + f.read() + f"\r\n--{boundary}--\r\n".encode()
    req = urllib.request.Request(base + "/api/projects", data=body, method="POST", headers={
        "Content-Type": f"multipart/form-data; boundary={boundary}"})
    with urllib.request.urlopen(req) as r:
        return json.load(r)["job_id"]


def job(base, id):
    with urllib.request.urlopen(f"{base}/api/jobs/{id}") as r:
        return json.load(r)


def wait_job(base, id):
    while True:
        j = job(base, id)
        if j["state"] != "running":
            return j
        time.sleep(0.2)


def job_wall(j):
    from datetime import datetime
    parse = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00"))
    return (parse(j["finished_at"]) - parse(j["started_at"])).total_seconds()


def bench_serve(work, n, reps, interval_ms):
    data = os.path.join(work, f"keywords_{n}.csv")
    if not os.path.exists(data):
        write_csv(data, keywords(n))
    run(["cargo", "build", "--release", "--quiet", "--example", "serve_load"], cwd=ROOT)
    load = os.path.join(ROOT, "target", "release", "examples", "serve_load")
    db = os.path.join(work, "serve.sqlite")
    for stale in (db, db + ".uploads"):
        shutil.rmtree(stale, ignore_errors=True) if os.path.isdir(stale) else (
            os.path.exists(stale) and os.remove(stale))
    server = subprocess.Popen([KBATCH, "--db", db, "serve", "--addr", "127.0.0.1:0"],
                              stderr=subprocess.PIPE, text=True)
    try:
        line = server.stderr.readline()
        base = line.split("listening on ", 1)[1].strip()
        walls = {"alone": [], "loaded": []}
        reports = []
        for i in range(reps):
            id = serve_job(base, data, f"alone{i}")
            walls["alone"].append(job_wall(wait_job(base, id)))
            id = serve_job(base, data, f"loaded{i}")
            out = run([load, "--url", f"{base}/api/projects/loaded{i}", "--clients", "200",
                       "--interval-ms", str(interval_ms), "--job", f"{base}/api/jobs/{id}"])
            reports.append(json.loads(out.stdout))
            walls["loaded"].append(job_wall(wait_job(base, id)))
    finally:
        server.terminate()
        server.wait()
    med = statistics.median
    for r in reports:
        print(f"load: {r['requests']:,} GETs from 200 clients (together every {interval_ms} ms) over {r['seconds']:.1f} s, "
              f"{r['errors']} errors, p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms, "
              f"max {r['max_ms']:.1f} ms")
    alone, loaded = med(walls["alone"]), med(walls["loaded"])
    print(f"job wall ({n:,} keywords): alone {alone:.1f} s (runs {walls['alone']}), under load "
          f"{loaded:.1f} s (runs {walls['loaded']}): +{100 * (loaded / alone - 1):.1f}%")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=1_000_000)
    ap.add_argument("--load-items", type=int, default=150_000)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--interval-ms", type=int, default=1000)
    ap.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "kbatch-bench-web"))
    ap.add_argument("--skip-report", action="store_true")
    ap.add_argument("--skip-serve", action="store_true")
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    if not a.skip_report:
        bench_report(a.work, a.items)
    if not a.skip_serve:
        bench_serve(a.work, a.load_items, a.reps, a.interval_ms)


if __name__ == "__main__":
    sys.exit(main())
