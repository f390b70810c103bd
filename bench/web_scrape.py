"""Web scrape benchmark: `syncdash run` of a `kind: web` source against a hand-written Playwright loop, same run.

Starts `python -m syncdash_demo.samplesite` in its own process (1,000 players: 50 list pages of 20 rows, each row's
profile page; every page renders its content from a script after --delay seconds, as JavaScript sites do),
then times whole processes with the same Debian Chromium:

  playwright c1  baseline: what the hand-built scrapers syncdash replaces do: one async Playwright page,
                 goto + wait_for + read rows, then each profile page in turn; rows kept in memory, nothing written
  syncdash c1    `syncdash run ratings` into a fresh SQLite database, `concurrency: 1`
  syncdash c4    the same with `concurrency: 4` (4 browser contexts for list and profile pages)

Pages per second counts list pages + profile pages (1,050 + the page that ends the walk). Peak RSS is that of the
whole process tree (Python, Playwright's driver and every Chromium process), sampled every 50 ms with psutil.
Each syncdash run is checked: exit code 0 and 1,000 rows with their profile fields in the table.

    python bench/web_scrape.py [--players 1000] [--delay 0.02] [--json]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil

HERE = Path(__file__).resolve().parent
SYNCDASH = [sys.executable, "-m", "syncdash"]
CHROMIUM = "/usr/bin/chromium"

CONFIG = """\
database: sqlite:///{db}
sources:
  - name: ratings
    kind: web
    url: {site}/players?page={{page}}
    pages: {{end: .empty}}
    wait_for: "table.players tbody tr"
    rows: "table.players tbody tr"
    concurrency: {concurrency}
    browser: {{executable: {chromium}}}
    table: ratings
    primary_key: [id]
    fields:
      id: {{selector: td.id, type: int}}
      name: {{selector: "td.name a", required: true}}
      profile_url: {{selector: "td.name a", attr: href}}
      elo: {{selector: td.elo, type: float, regex: "([0-9.]+)"}}
    detail:
      url_field: profile_url
      wait_for: .profile
      fields:
        games: {{selector: .games, type: int}}
        club: .club
"""

BASELINE = r"""
import asyncio, json, sys, time
from playwright.async_api import async_playwright
site, chromium = sys.argv[1], sys.argv[2]
ROWS = "(els) => els.map(e => [e.querySelector('td.id').textContent, e.querySelector('td.name a').href])"
async def main():
    t0 = time.perf_counter()
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=chromium, headless=True)
        page = await browser.new_page()
        rows, pages, n = [], 0, 1
        while True:
            await page.goto(f"{site}/players?page={n}")
            await page.wait_for_selector("table.players tbody tr, .empty", state="attached")
            pages += 1
            found = await page.eval_on_selector_all("table.players tbody tr", ROWS)
            if not found:
                break
            rows.extend(found)
            n += 1
        for _id, url in [r for r in rows]:
            await page.goto(url)
            await page.wait_for_selector(".profile", state="attached")
            await page.eval_on_selector(".games", "e => e.textContent")
            pages += 1
        await browser.close()
    print(json.dumps({"rows": len(rows), "pages": pages, "in_proc_s": time.perf_counter() - t0}))
asyncio.run(main())
"""


def tree_rss(proc: psutil.Process) -> int:
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def timed(cmd: list[str], cwd: Path) -> dict[str, Any]:
    """Run cmd; wall seconds, peak RSS of its process tree, exit code, stdout."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ps = psutil.Process(proc.pid)
    peak = 0
    out: dict[str, str] = {}

    def drain() -> None:
        out["stdout"], out["stderr"] = proc.communicate()

    t = threading.Thread(target=drain)
    t.start()
    while proc.poll() is None:
        try:
            peak = max(peak, tree_rss(ps))
        except psutil.Error:
            break
        time.sleep(0.05)
    t.join()
    return {"wall_s": time.perf_counter() - t0, "peak_rss_mb": peak / 2**20, "rc": proc.returncode, **out}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--players", type=int, default=1000)
    ap.add_argument("--delay", type=float, default=0.02, help="seconds each page's script waits before rendering")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    site_proc = subprocess.Popen([sys.executable, "-m", "syncdash_demo.samplesite", "--players", str(a.players),
                                  "--page-size", "20", "--delay", str(a.delay), "--lifetime", "1800"],
                                 stdout=subprocess.PIPE, text=True)
    try:
        assert site_proc.stdout is not None
        site = site_proc.stdout.readline().strip()
        pages = a.players // 20 + a.players + 1
        results: dict[str, dict[str, Any]] = {}
        with tempfile.TemporaryDirectory(prefix="web-bench-") as tmp:
            root = Path(tmp)
            r = timed([sys.executable, "-c", BASELINE, site, CHROMIUM], root)
            if r["rc"] != 0:
                sys.exit(f"baseline failed:\n{r['stderr']}")
            results["playwright c1"] = {**r, **json.loads(r["stdout"])}
            for c in (1, 4):
                d = root / f"c{c}"
                d.mkdir()
                (d / "syncdash.yaml").write_text(CONFIG.format(db=d / "s.db", site=site, concurrency=c,
                                                               chromium=CHROMIUM))
                r = timed([*SYNCDASH, "--config", str(d / "syncdash.yaml"), "run", "ratings", "--json"], d)
                if r["rc"] != 0:
                    sys.exit(f"syncdash c{c} failed (exit {r['rc']}):\n{r['stdout'][-2000:]}\n{r['stderr'][-2000:]}")
                con = sqlite3.connect(d / "s.db")
                n, with_club = con.execute("SELECT COUNT(*), COUNT(club) FROM ratings").fetchone()
                con.close()
                if n != a.players or with_club != a.players:
                    sys.exit(f"syncdash c{c}: {n} rows, {with_club} with a club; expected {a.players}")
                [res] = json.loads(r["stdout"])
                results[f"syncdash c{c}"] = {**r, "in_proc_s": res["duration_s"], "pages": pages}
    finally:
        site_proc.terminate()
        site_proc.wait(10)
    base = results["playwright c1"]["wall_s"]
    rows = []
    for name, r in results.items():
        rows.append({"method": name, "wall_s": round(r["wall_s"], 2), "in_proc_s": round(r["in_proc_s"], 2),
                     "pages_per_s": round(pages / r["wall_s"], 1), "vs_baseline": round(base / r["wall_s"], 2),
                     "peak_rss_mb": round(r["peak_rss_mb"])})
    out = sys.stderr if a.json else sys.stdout
    print(f"web scrape: {a.players // 20} list pages of 20 + {a.players} profile pages ({pages} pages), render "
          f"delay {a.delay * 1000:.0f} ms, Chromium {CHROMIUM}", file=out)
    print(f"{'method':<15} {'wall s':>8} {'in-proc s':>10} {'pages/s':>8} {'x baseline':>11} {'peak RSS MB':>12}",
          file=out)
    for r in rows:
        print(f"{r['method']:<15} {r['wall_s']:>8} {r['in_proc_s']:>10} {r['pages_per_s']:>8} {r['vs_baseline']:>11} "
              f"{r['peak_rss_mb']:>12}", file=out)
    print("baseline: playwright c1 (a hand-written async Playwright loop, one page at a time, nothing stored)",
          file=out)
    if a.json:
        print(json.dumps({"players": a.players, "pages": pages, "delay": a.delay, "results": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
