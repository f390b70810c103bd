"""A real local website whose data exists only after JavaScript runs: the web source's demo, test and bench site.

Every page arrives as an empty shell plus a script that renders the rows after `delay` seconds, so a scraper that
does not wait for the DOM sees nothing, exactly as on the sites `kind: web` is for. It is stdlib only and runs
in-process (tests, `syncdash demo`) or as `python -m syncdash_demo.samplesite` (benchmark).

Pages:
- `/players?page=N`: a table of `page_size` players, numbered pages; past the last page a 404 that renders
  `<p class="empty">` (either ends a `{page}` walk).
- `/app`: one page whose "Next" button re-renders the table in place (the URL never changes).
- `/players/ID`: a player's profile (games, club), rendered late too.
Faults per path substring: `fail(path, 503, times=2)` answers an HTTP error; `never(path)` serves a page that never
renders its rows; `missing_name` lists ids whose row lacks its name cell.
"""

from __future__ import annotations

import argparse
import html
import json
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

__all__ = ["SampleSite", "main", "make_players"]

CLUBS = ("Harbour CC", "Northside", "Old Town", "Riverside", "Westgate")


def make_players(n: int) -> list[dict[str, Any]]:
    return [{"id": i, "name": f"Player {i:04d}", "elo": round(1500 + (i * 37) % 900 + 0.5, 1),
             "games": (i * 13) % 200, "club": CLUBS[i % len(CLUBS)]} for i in range(1, n + 1)]


_SHELL = """<!doctype html><html><head><meta charset="utf-8"><title>{title}</title></head>
<body><h1>{title}</h1><div id="root">loading…</div>
<script id="data" type="application/json">{data}</script>
<script>
const D = JSON.parse(document.getElementById('data').textContent);
{script}
</script></body></html>"""

_ROWS_JS = """
function rows(list) {
  return list.map(p => '<tr><td class="id">' + p.id + '</td>' +
    (p.name === null ? '' : '<td class="name"><a href="/players/' + p.id + '">' + p.name + '</a></td>') +
    '<td class="elo">' + p.elo + ' elo</td></tr>').join('');
}
function table(list) {
  return list.length ? '<table class="players"><thead><tr><th>id</th><th>name</th><th>elo</th></tr></thead>' +
    '<tbody>' + rows(list) + '</tbody></table>' : '<p class="empty">No more players</p>';
}
"""

_LIST_JS = _ROWS_JS + """
setTimeout(() => {
  if (D.never) { document.getElementById('root').innerHTML = '<p class="wait">still loading…</p>'; return; }
  document.getElementById('root').innerHTML = table(D.players) +
    (D.next ? '<a class="next" href="' + D.next + '">Next</a>' : '<a class="next disabled">Next</a>');
}, D.delay);
"""

_APP_JS = _ROWS_JS + """
let page = 0;
function show() {
  const list = D.players.slice(page * D.size, (page + 1) * D.size);
  const last = (page + 1) * D.size >= D.players.length;
  document.getElementById('root').innerHTML = table(list) + '<p>page ' + (page + 1) + '</p>' +
    '<button class="next' + (last ? ' disabled' : '') + '"' + (last ? ' disabled' : '') + '>Next</button>';
  const b = document.querySelector('button.next:not(.disabled)');
  if (b) b.onclick = () => {
    page += 1; document.getElementById('root').innerHTML = 'loading…'; setTimeout(show, D.delay);
  };
}
setTimeout(show, D.delay);
"""

_DETAIL_JS = """
setTimeout(() => {
  if (D.never) return;
  const p = D.player;
  document.getElementById('root').innerHTML = '<div class="profile"><p>Games played: <span class="games">' +
    p.games + '</span></p><p>Club: <span class="club">' + p.club + '</span></p></div>';
}, D.delay);
"""


@dataclass
class _Fault:
    path: str
    status: int
    times: int  # -1: for ever


class _Handler(BaseHTTPRequestHandler):
    _headers_buffer: list[bytes]  # http.server's own buffer, written in one go below
    server: _Server
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        # headers and body leave in one write, and without Nagle's delay: a browser on keep-alive would
        # otherwise wait out a delayed ACK (40 ms) on every page
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        site = self.server.site
        parts = urlsplit(self.path)
        query = dict(parse_qsl(parts.query))
        site.count(self.path)
        status, body = site.fault_for(self.path)
        if status is None:
            status, body = site.render(parts.path, query, self.path)
        data = body.encode("utf-8")
        try:
            self.send_response(status)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            self._headers_buffer.append(b"\r\n")  # end_headers() without its flush: one write below
            self.wfile.write(b"".join(self._headers_buffer) + data)
            self._headers_buffer = []
        except (BrokenPipeError, ConnectionResetError):
            pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr: tuple[str, int], site: SampleSite) -> None:
        super().__init__(addr, _Handler)
        self.site = site


class SampleSite:
    """The site, served on 127.0.0.1 from a thread until stop() or `lifetime` seconds (it stops by itself)."""

    def __init__(self, n: int = 95, *, page_size: int = 20, delay: float = 0.05, port: int = 0,
                 lifetime: float = 900.0) -> None:
        self.players = make_players(n)
        self.page_size = page_size
        self.delay = delay
        self.missing_name: set[int] = set()
        self.hits: dict[str, int] = {}
        self._faults: list[_Fault] = []
        self._never: set[str] = set()
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", port), self)
        self._thread: threading.Thread | None = None
        self._timer = threading.Timer(lifetime, self.stop)
        self._timer.daemon = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> SampleSite:
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="samplesite", daemon=True)
        self._thread.start()
        self._timer.start()
        return self

    def stop(self) -> None:
        self._timer.cancel()
        if self._thread is not None:
            self._server.shutdown()
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> SampleSite:
        return self.start()

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    # ---- faults -------------------------------------------------------------------------------------

    def fail(self, path: str, status: int = 503, times: int = 1) -> None:
        with self._lock:
            self._faults.append(_Fault(path, status, times))

    def never(self, path: str) -> None:
        """Pages whose URL contains `path` never render their rows (a scraper's wait_for times out)."""
        with self._lock:
            self._never.add(path)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()
            self._never.clear()

    def count(self, path: str) -> None:
        with self._lock:
            self.hits[path] = self.hits.get(path, 0) + 1

    def fault_for(self, path: str) -> tuple[int | None, str]:
        with self._lock:
            for f in self._faults:
                if f.path in path and f.times != 0:
                    f.times -= 1 if f.times > 0 else 0
                    return f.status, f"<html><body><h1>{f.status}</h1><p>try again later</p></body></html>"
        return None, ""

    # ---- pages ----------------------------------------------------------------------------------------

    def _row(self, p: dict[str, Any]) -> dict[str, Any]:
        return {**p, "name": None} if p["id"] in self.missing_name else p

    def _page(self, title: str, data: dict[str, Any], script: str) -> str:
        payload = json.dumps({**data, "delay": int(self.delay * 1000)}).replace("</", "<\\/")
        return _SHELL.format(title=html.escape(title), data=payload, script=script)

    def render(self, path: str, query: dict[str, str], full: str) -> tuple[int, str]:
        never = any(n in full for n in self._never)
        if path in ("/", "/players"):
            try:
                n = int(query.get("page", "1"))
            except ValueError:
                return 400, "<p>page must be a number</p>"
            chunk = self.players[(n - 1) * self.page_size:n * self.page_size] if n >= 1 else []
            more = n * self.page_size < len(self.players)
            body = self._page(f"Players, page {n}", {"players": [self._row(p) for p in chunk], "never": never,
                                                      "next": f"/players?page={n + 1}" if more else None}, _LIST_JS)
            return (200 if chunk else 404), body
        if path == "/app":
            return 200, self._page("Players", {"players": [self._row(p) for p in self.players],
                                               "size": self.page_size}, _APP_JS)
        if path.startswith("/players/"):
            try:
                pid = int(path.rsplit("/", 1)[1])
            except ValueError:
                return 404, "<p>no such player</p>"
            player = next((p for p in self.players if p["id"] == pid), None)
            if player is None:
                return 404, "<p>no such player</p>"
            return 200, self._page(player["name"], {"player": player, "never": never}, _DETAIL_JS)
        return 404, "<p>not found</p>"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m syncdash_demo.samplesite", description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--players", type=int, default=95)
    ap.add_argument("--page-size", type=int, default=20)
    ap.add_argument("--delay", type=float, default=0.05, help="seconds before the script renders a page")
    ap.add_argument("--lifetime", type=float, default=3600.0)
    a = ap.parse_args(argv)
    site = SampleSite(a.players, page_size=a.page_size, delay=a.delay, port=a.port, lifetime=a.lifetime).start()
    print(site.url, flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    try:
        deadline = time.monotonic() + a.lifetime
        while not done.wait(0.5) and time.monotonic() < deadline:
            pass
    except KeyboardInterrupt:
        pass
    site.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
