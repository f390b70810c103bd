"""Which Chromium a web source launches, and how: found in a fixed order so `syncdash doctor` and a run agree.

Order: the source's `browser.executable`, $SYNCDASH_CHROMIUM, a Chromium or Chrome on PATH, then the browsers
`playwright install chromium` put in Playwright's cache. Playwright's own download is last because distro
Chromium is what servers have, and `playwright install` needs network access many of them lack.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from syncdash.errors import SourceError

ON_PATH = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
# every browser syncdash starts carries this switch (Chromium ignores unknown ones): tests and `doctor`
# find leftovers by it, and it names the process that started them
OWNER_SWITCH = "--syncdash-owner"


class BrowserNotFound(SourceError):
    """No Chromium to drive; the message says how to install one."""

    error_type = "config"
    retryable = False


@dataclass(frozen=True)
class Browser:
    path: str
    how: str  # which rule found it: "browser.executable", "SYNCDASH_CHROMIUM", "PATH", "playwright"


INSTALL_HINT = (
    "install one: Debian/Ubuntu `sudo apt install chromium`, macOS `brew install --cask chromium` (or Google "
    "Chrome), anywhere with network access `python -m playwright install chromium`; or point browser.executable "
    "(or $SYNCDASH_CHROMIUM) at a Chromium or Chrome binary")


def _usable(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


def _playwright_browsers() -> list[str]:
    """Chromium builds under Playwright's cache ($PLAYWRIGHT_BROWSERS_PATH or its per-OS default)."""
    root = os.environ.get("PLAYWRIGHT_BROWSERS_PATH")
    if root in (None, "", "0"):
        home = Path.home()
        root = str({"darwin": home / "Library/Caches/ms-playwright",
                    "win32": home / "AppData/Local/ms-playwright"}.get(sys.platform, home / ".cache/ms-playwright"))
    found = []
    for d in sorted(Path(root).glob("chromium*"), reverse=True):
        for rel in ("chrome-linux/chrome", "chrome-linux64/chrome",
                    "chrome-headless-shell-linux64/chrome-headless-shell",
                    "chrome-mac/Chromium.app/Contents/MacOS/Chromium", "chrome-win/chrome.exe"):
            p = d / rel
            if _usable(str(p)):
                found.append(str(p))
    return found


def find_browser(executable: str | None = None, *, source: str | None = None) -> Browser:
    who = f"source {source}: " if source else ""
    if executable:
        path = shutil.which(executable) or executable
        if not _usable(path):
            raise BrowserNotFound(f"{who}browser.executable {executable!r} is not an executable file; "
                                  f"{INSTALL_HINT}")
        return Browser(path, "browser.executable")
    env = os.environ.get("SYNCDASH_CHROMIUM")
    if env:
        path = shutil.which(env) or env
        if not _usable(path):
            raise BrowserNotFound(f"{who}SYNCDASH_CHROMIUM={env!r} is not an executable file; {INSTALL_HINT}")
        return Browser(path, "SYNCDASH_CHROMIUM")
    for name in ON_PATH:
        found = shutil.which(name)
        if found:
            return Browser(found, "PATH")
    for path in _playwright_browsers():
        return Browser(path, "playwright")
    raise BrowserNotFound(f"{who}no Chromium or Chrome found (looked at browser.executable, $SYNCDASH_CHROMIUM, "
                          f"{', '.join(ON_PATH)} on PATH, and Playwright's browsers); {INSTALL_HINT}")


def browser_version(path: str) -> str:
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError) as e:
        return f"unknown ({e})"
    return (out.stdout or out.stderr).strip() or f"unknown (exit {out.returncode})"


def owned_processes(owner: str | None = None) -> list[int]:
    """PIDs of live browser processes syncdash started (all owners, or one): leftovers are a bug."""
    me = f"{OWNER_SWITCH}={owner}" if owner else OWNER_SWITCH
    pids = []
    for d in Path("/proc").glob("[0-9]*"):
        try:
            cmd = (d / "cmdline").read_bytes().split(b"\0")
            status = (d / "stat").read_text()
        except OSError:
            continue
        if status.split(") ", 1)[-1].startswith("Z"):
            continue  # a zombie is gone already; only its parent's wait() is missing
        if any(a.decode(errors="replace").startswith(me) for a in cmd):
            pids.append(int(d.name))
    return pids
