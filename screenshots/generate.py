"""Screenshots of the console for the README: `make screenshots` (or `.venv/bin/python screenshots/generate.py`).

Builds the deterministic store the snapshot tests use (tests/console_fixtures.py: fixed clock, two active runs,
errors, an update with before/after), opens each screen in a read-only console (`host=False`: nothing runs) and
saves screenshots/<name>.svg, then screenshots/<name>.png with `rsvg-convert` when it is installed
(Debian: `apt-get install librsvg2-bin fonts-firacode`; without Fira Code the PNG text falls back to a
proportional font and no longer lines up). Same data, same pictures: regenerate after a UI change and commit.

    python screenshots/generate.py [--only dashboard,errors] [--no-png]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from console_fixtures import SCREENS, make_app  # noqa: E402

# README order; every name is a console_fixtures.SCREENS entry
SHOTS = ["dashboard", "run_detail", "browse", "row_history", "errors", "source_detail", "history", "dashboard_80x24",
         "browse_80x24", "help", "flow_dashboard", "flow_run_detail"]


async def shoot(name: str, workdir: Path, out: Path) -> Path:
    size, get_there, *scenario = SCREENS[name]
    app = make_app(workdir / name, *scenario)
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


def to_png(svg: Path, rsvg: str) -> Path:
    """rsvg-convert drops the leading non-breaking spaces Rich pads cells with unless whitespace is preserved,
    which shifts every styled cell left by one column: convert a copy that says xml:space="preserve"."""
    png = svg.with_suffix(".png")
    text = svg.read_text(encoding="utf-8").replace("<svg ", '<svg xml:space="preserve" ', 1)
    with tempfile.NamedTemporaryFile("w", suffix=".svg", encoding="utf-8", delete=False) as tmp:
        tmp.write(text)
    try:
        subprocess.run([rsvg, "--format=png", "-o", str(png), tmp.name], check=True)
    finally:
        os.unlink(tmp.name)
    return png


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
    ap.add_argument("--out", default=str(HERE))
    args = ap.parse_args()
    names = args.only.split(",") if args.only else SHOTS
    unknown = [n for n in names if n not in SCREENS]
    if unknown:
        ap.error(f"unknown screenshot(s): {', '.join(unknown)}; known: {', '.join(SHOTS)}")
    os.environ.pop("NO_COLOR", None)
    # the default theme, whatever this user picked in their own console
    os.environ["SYNCDASH_CONSOLE_DIR"] = tempfile.mkdtemp(prefix="syncdash-shots-")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    rsvg = None if args.no_png else shutil.which("rsvg-convert")
    if not args.no_png and rsvg is None:
        print("note: rsvg-convert not found (Debian: apt-get install librsvg2-bin): SVGs only, no PNGs")
    elif rsvg and has_fira_code() is False:
        print("note: the Fira Code font is not installed (Debian: apt-get install fonts-firacode): PNG text will "
              "use a fallback font and may not line up")

    with tempfile.TemporaryDirectory(prefix="syncdash-shots-") as tmp:
        for name in names:
            svg = asyncio.run(shoot(name, Path(tmp), out))
            made = [svg]
            if rsvg:
                made.append(to_png(svg, rsvg))
            print("  ".join(str(p.relative_to(Path.cwd()) if p.is_relative_to(Path.cwd()) else p) for p in made))
    return 0


if __name__ == "__main__":
    sys.exit(main())
