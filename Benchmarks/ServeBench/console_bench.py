#!/usr/bin/env python3
"""The web console's cost (issue 13 targets: < 150 KB of binary, < 1 MB of RSS, first paint of / < 100 ms on
loopback), measured against a running `loupe serve` started here:

  python3 Benchmarks/ServeBench/console_bench.py [LOUPE_BIN] [LOADS]      (default .build/release/loupe, 10)

- size: the page's bytes as served (GET / with Accept: text/html — the HTML with its CSS and JS inline, all of
  the console's embedded assets) and the bytes of the binary's symbols that belong to the console
  (nm -S: ConsolePage/ConsoleScript/ConsoleStyle/ConsoleRoutes/StatusSampler);
- rss: VmRSS of the server after a warm-up of 200 /predict requests, then after headless Chromium has loaded
  the page, rendered the model card and polled /api/status for 10 s (the difference is the console's cost);
- first paint: LOADS fresh navigations to / in headless Chromium (selenium), Performance API `first-paint` and
  `first-contentful-paint` (ms from navigation start), median and max.
Prints one JSON line. Needs chromium, chromium-driver, python selenium (scripts/install-test-deps.sh).
"""
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "Tests", "EndToEndTests", "python"))
from console_browser_check import start_browser  # noqa: E402  (the tests' own headless Chromium set-up)

PORT = 18760


def rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def get(path, headers=None, data=None):
    req = urllib.request.Request(f"http://127.0.0.1:{PORT}{path}", data=data, headers=headers or {})
    with urllib.request.urlopen(req) as r:
        return r.read()


def console_symbol_bytes(binary):
    try:
        out = subprocess.run(["nm", "-S", "--defined-only", "-C", binary], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    total = 0
    for line in out.splitlines():
        parts = line.split(None, 3)
        if len(parts) == 4 and any(k in parts[3] for k in ("ConsolePage", "ConsoleScript", "ConsoleStyle", "ConsoleRoutes", "StatusSampler")):
            total += int(parts[1], 16)
    return total


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, ".build/release/loupe")
    loads = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    server = subprocess.Popen([binary, "serve", "--port", str(PORT), "--models", os.path.join(ROOT, "models"), "--log-level", "warning",
                               "--set", "shutdown.drain_delay_ms=0"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                get("/health/ready")
                break
            except OSError:
                time.sleep(0.05)
        page = get("/", {"Accept": "text/html"})
        pixels = bytes(784)
        for _ in range(200):
            get("/predict", {"Content-Type": "application/octet-stream"}, pixels)
        time.sleep(0.5)
        before = rss_kib(server.pid)
        browser = start_browser()
        try:
            browser.get(f"http://127.0.0.1:{PORT}/")
            time.sleep(10)   # the model card, the curves and three /api/status refreshes
            after = rss_kib(server.pid)
            paints = {"first-paint": [], "first-contentful-paint": []}
            for _ in range(loads):
                browser.get("about:blank")
                browser.get(f"http://127.0.0.1:{PORT}/")
                deadline = time.time() + 5
                while time.time() < deadline:
                    entries = browser.execute_script(
                        "return performance.getEntriesByType('paint').map(e => [e.name, e.startTime])")
                    if len(entries) >= 2:
                        break
                    time.sleep(0.05)
                for name, start in entries:
                    paints.setdefault(name, []).append(start)
        finally:
            browser.quit()
        result = {
            "page_bytes": len(page),
            "console_symbol_bytes": console_symbol_bytes(binary),
            "rss_kib_before": before, "rss_kib_after_console": after, "rss_kib_added": after - before,
            "loads": loads,
            "load_average": open("/proc/loadavg").read().split()[0],
        }
        for name, values in paints.items():
            if values:
                result[name + "_ms_median"] = round(statistics.median(values), 1)
                result[name + "_ms_max"] = round(max(values), 1)
        print(json.dumps(result))
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
