"""Screenshots of the console for the README: `make screenshots` (or `.venv/bin/python screenshots/generate.py`).

Builds the deterministic store the snapshot tests use (tests/console_fixtures.py: fixed clock, two active runs,
errors, an update with before/after, a flow half way, a searchable table), opens each screen the snapshot tests
cover in a read-only console (`host=False`: nothing is scheduled) the same way they reach it, plus a dry run's
plan, and saves screenshots/<name>.svg, then screenshots/<name>.png. Same data, same pictures: regenerate after
a UI change and commit both.

PNGs come from a headless Chromium (Debian's `chromium`, or $CHROMIUM) with the window sized to the SVG's
viewBox, else from `rsvg-convert` (Debian: librsvg2-bin); `--png-with` picks one. Neither needs the network:
the copy handed to the renderer drops Rich's web-font URLs, so text uses Fira Code when installed and the
system monospace font otherwise (Rich pins every text run's width, so columns line up either way).

    python screenshots/generate.py [--only dashboard,errors] [--no-png] [--png-with chromium|rsvg]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib
from collections.abc import Callable
from contextlib import chdir
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from console_fixtures import (  # noqa: E402
    SCREENS,
    WIDE,
    dashboard_ready,
    make_app,
    on_screen,
    press,
    repaint,
    rows,
    steps,
    text,
    until,
)

# ---- the dry run: not a snapshot test (it reads a real file and records a run), so it is set up here ----

PRICES_CSV = "sku,price\nA-100,4.50\nA-101,12.00\nB-200,3.10\nB-201,7.25\nC-300,19.99\nC-301,0.99\n"


def _prices_file(root: Path) -> None:
    (root / "data").mkdir(parents=True, exist_ok=True)
    (root / "data" / "prices.csv").write_text(PRICES_CSV, encoding="utf-8")


def _dry_run_shown(p: Any) -> bool:
    return (on_screen(p, "DryRunScreen") and "would apply" in text(p, "#plan-summary")
            and rows(p, "#plan-sample") > 0)


# name: (terminal size, how to get there, set-up of the app's directory before it opens)
EXTRA: dict[str, tuple[Any, Callable[[Any], Any], Callable[[Path], None]]] = {
    # the fifth source (prices, never run): `d` plans it against data/prices.csv: six inserts. (An invalid row
    # would add a warning naming the file by its absolute path, a temporary directory of this machine.)
    "dry_run": (WIDE, steps(dashboard_ready, press("down", "down", "down", "down", "d"),
                            until(_dry_run_shown, "the dry run's plan"), repaint), _prices_file),
}

# README order first; every snapshot screen (console_fixtures.SCREENS) and the extras
SHOTS = ["dashboard", "run_detail", "flow_dashboard", "browse", "browse_search", "row_history", "errors",
         "source_detail", "history", "dry_run", "help", "flow_run_detail", "dashboard_80x24", "browse_80x24",
         "browse_search_80x24", "row_history_80x24", "errors_80x24", "help_80x24"]
assert set(SHOTS) == set(SCREENS) | set(EXTRA), "SHOTS must list every snapshot screen and extra"


async def shoot(name: str, workdir: Path, out: Path) -> Path:
    root = workdir / name
    root.mkdir(parents=True)
    if name in EXTRA:
        size, get_there, prepare = EXTRA[name]
        scenario: list[Any] = []
        prepare(root)
    else:
        size, get_there, *scenario = SCREENS[name]
    with chdir(root):  # the config names syncdash.yaml: its relative paths (data/...) resolve from here
        app = make_app(root, *scenario)
        async with app.run_test(size=size) as pilot:
            await get_there(pilot)
            await pilot.wait_for_scheduled_animations()
            await pilot.pause()
            path = Path(app.save_screenshot(f"{name}.svg", path=str(out)))
    # Rich gives every export a random id (terminal-<n>-...): a stable one per name keeps unchanged screens
    # byte-identical across runs, so only real UI changes show up in git
    stable = zlib.crc32(name.encode())
    path.write_text(re.sub(r"\bterminal-\d+-", f"terminal-{stable}-", path.read_text(encoding="utf-8")),
                    encoding="utf-8")
    return path


def shoot_retrying(name: str, workdir: Path, out: Path, attempts: int = 3) -> Path:
    """shoot(), again in a fresh app if the console raised: a snapshot that reaches the dashboard while the
    app shuts down can fail it (NoMatches '#sources'), after the picture was taken, on a loaded machine."""
    for attempt in range(1, attempts + 1):
        try:
            return asyncio.run(shoot(name, workdir / str(attempt), out))
        except Exception as e:
            if attempt == attempts:
                raise
            print(f"note: {name}: the console raised {type(e).__name__}: {e}; taking it again")
    raise AssertionError("unreachable")


# ---- SVG -> PNG ----

# glyphs Textual draws that common monospace fonts lack, and a look-alike they have (the header's icon)
LOOKALIKES = {"\u2b58": "\u25cb"}


def missing_glyphs(chars: str) -> set[str]:
    """The characters no installed font covers (fontconfig), so the PNG shows a look-alike, not a box."""
    fc = shutil.which("fc-list")
    if fc is None:
        return set()
    return {c for c in chars
            if not subprocess.run([fc, f":charset={ord(c):x}", "family"], capture_output=True, text=True).stdout}


def render_copy(svg: Path, tmp: Path, swap: set[str]) -> Path:
    """The SVG as the renderers should see it: no web-font URLs (no network here; the local() sources stay),
    xml:space="preserve" (rsvg-convert otherwise drops the non-breaking spaces Rich pads cells with, shifting
    every styled cell a column left), and look-alikes for glyphs no installed font has."""
    svg_text = svg.read_text(encoding="utf-8")
    svg_text = re.sub(r',\s*url\("[^"]*"\) format\("[^"]*"\)', "", svg_text)
    svg_text = svg_text.replace("<svg ", '<svg xml:space="preserve" ', 1)
    for c in swap:
        svg_text = svg_text.replace(c, LOOKALIKES[c])
    copy = tmp / svg.name
    copy.write_text(svg_text, encoding="utf-8")
    return copy


def viewbox(svg: Path) -> tuple[int, int]:
    m = re.search(r'viewBox="0 0 ([\d.]+) ([\d.]+)"', svg.read_text(encoding="utf-8")[:500])
    if m is None:
        raise SystemExit(f"{svg}: no viewBox")
    return round(float(m[1])), round(float(m[2]))


def png_size(png: Path) -> tuple[int, int]:
    head = png.read_bytes()[:24]
    if head[:8] != b"\x89PNG\r\n\x1a\n":
        raise SystemExit(f"{png}: not a PNG")
    w, h = struct.unpack(">II", head[16:24])
    return w, h


def chromium_png(copy: Path, png: Path, size: tuple[int, int], browser: str, profile: Path) -> None:
    """A headless Chromium screenshot of the SVG, the window exactly its viewBox (the SVG has no width/height,
    so it fills the window 1:1), transparent outside its rounded corners."""
    w, h = size
    cmd = [browser, "--headless", "--disable-gpu", "--no-sandbox", "--hide-scrollbars", "--mute-audio",
           "--force-device-scale-factor=1", "--default-background-color=00000000", f"--user-data-dir={profile}",
           f"--window-size={w},{h}", f"--screenshot={png}", copy.as_uri()]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if done.returncode != 0 or not png.exists():
        raise SystemExit(f"chromium failed on {copy.name} (exit {done.returncode}):\n{done.stderr[-2000:]}")


def rsvg_png(copy: Path, png: Path, rsvg: str) -> None:
    subprocess.run([rsvg, "--format=png", "-o", str(png), str(copy)], check=True, timeout=120)


def find_chromium() -> str | None:
    for name in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if name and (found := shutil.which(name)):
            return found
    return None


def has_fira_code() -> bool | None:
    fc = shutil.which("fc-match")
    if fc is None:
        return None
    found = subprocess.run([fc, "-f", "%{family}", "Fira Code"], capture_output=True, text=True).stdout
    return "Fira Code" in found


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", help="comma-separated names: " + ", ".join(SHOTS))
    ap.add_argument("--no-png", action="store_true", help="SVGs only")
    ap.add_argument("--png-with", choices=["auto", "chromium", "rsvg"], default="auto",
                    help="the SVG -> PNG renderer (auto: Chromium if found, else rsvg-convert)")
    ap.add_argument("--out", default=str(HERE))
    args = ap.parse_args()
    names = args.only.split(",") if args.only else SHOTS
    unknown = [n for n in names if n not in SHOTS]
    if unknown:
        ap.error(f"unknown screenshot(s): {', '.join(unknown)}; known: {', '.join(SHOTS)}")
    os.environ.pop("NO_COLOR", None)
    # the default theme, whatever this user picked in their own console
    os.environ["SYNCDASH_CONSOLE_DIR"] = tempfile.mkdtemp(prefix="syncdash-shots-")
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)

    browser = rsvg = None
    if not args.no_png:
        browser = find_chromium() if args.png_with in ("auto", "chromium") else None
        rsvg = shutil.which("rsvg-convert") if args.png_with == "rsvg" or (
            args.png_with == "auto" and browser is None) else None
        if browser is None and rsvg is None:
            want = {"chromium": "chromium ($CHROMIUM)", "rsvg": "rsvg-convert (Debian: librsvg2-bin)"}.get(
                args.png_with, "chromium or rsvg-convert")
            print(f"note: {want} not found: SVGs only, no PNGs")
        elif has_fira_code() is False:
            print("note: Fira Code is not installed (Debian: fonts-firacode): the PNGs use the system monospace")

    shown = Path.cwd()
    with tempfile.TemporaryDirectory(prefix="syncdash-shots-") as tmp_name:
        tmp = Path(tmp_name)
        swap = missing_glyphs("".join(LOOKALIKES)) if browser or rsvg else set()
        for name in names:
            svg = shoot_retrying(name, tmp / "apps", out)
            made = [svg]
            if browser or rsvg:
                png = svg.with_suffix(".png")
                copy = render_copy(svg, tmp, swap)
                if browser:
                    chromium_png(copy, png, viewbox(svg), browser, tmp / "chromium-profile")
                elif rsvg:
                    rsvg_png(copy, png, rsvg)
                if png_size(png) != viewbox(svg):
                    raise SystemExit(f"{png}: {png_size(png)} pixels, the SVG's viewBox is {viewbox(svg)}")
                made.append(png)
            print("  ".join(str(p.relative_to(shown) if p.is_relative_to(shown) else p) for p in made))
    return 0


if __name__ == "__main__":
    sys.exit(main())
