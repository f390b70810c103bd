"""uvicorn in a thread of its own, with its own event loop, so no request can stall the scheduler or a worker.

The socket is bound here, in the caller's thread, before the daemon registers: a port in use is a clear error
at start-up (not a log line from a background thread), and port 0 works (the real port is reported).
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from typing import TYPE_CHECKING, Any

from syncdash.errors import HttpApiError

if TYPE_CHECKING:
    from syncdash.config.models import HttpApiConfig
    from syncdash.service.daemon import Daemon

log = logging.getLogger("syncdash.api")
START_TIMEOUT = 15.0
STOP_TIMEOUT = 5.0


class ApiServer:
    def __init__(self, app: Any, host: str, port: int) -> None:
        import uvicorn

        self.host = host
        self.port = port
        # lifespan off: the app has no start-up work; log_config None: leave the daemon's logging alone
        self.config = uvicorn.Config(app, host=host, port=port, lifespan="off", log_config=None,
                                     log_level="warning", access_log=False, server_header=False,
                                     timeout_keep_alive=5, timeout_graceful_shutdown=2, limit_concurrency=200,
                                     h11_max_incomplete_event_size=16 * 1024)
        self.server = uvicorn.Server(self.config)
        logging.getLogger("uvicorn").addHandler(logging.NullHandler())  # failures are logged by the app
        self.sock: socket.socket | None = None
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> str:
        """Bind, serve in a thread, return the base URL once requests are accepted."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say so, and without it every other
        # response waits ~40 ms on Nagle's algorithm and the client's delayed ACK
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
            sock.listen(128)
        except OSError as e:
            sock.close()
            raise HttpApiError(f"the HTTP API cannot listen on {self.host}:{self.port}: "
                               f"{e.strerror or e}") from None
        self.port = sock.getsockname()[1]
        self.sock = sock
        self.thread = threading.Thread(target=self._serve, name="http-api", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise HttpApiError(f"the HTTP API did not start on {self.url}")
            time.sleep(0.01)
        log.info("HTTP API listening on %s", self.url)
        return self.url

    def _serve(self) -> None:
        try:
            self.server.run(sockets=[self.sock] if self.sock is not None else None)
        except BaseException:  # SystemExit from uvicorn included: the daemon goes on without its API
            log.exception("the HTTP API stopped")

    def stop(self) -> None:
        """Stop accepting, give open requests a moment, then close whatever is left."""
        self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(STOP_TIMEOUT)
            if self.thread.is_alive():
                self.server.force_exit = True
                self.thread.join(STOP_TIMEOUT)
        if self.sock is not None:
            self.sock.close()


class ApiService:
    """The HTTP API as a service the daemon runs beside its workers (`service.daemon.HttpService`).

    The CLI builds it and hands it to the daemon, so the service layer never imports a web framework."""

    def __init__(self, settings: HttpApiConfig) -> None:
        self.settings = settings
        self.server: ApiServer | None = None

    def start(self, daemon: Daemon) -> str:
        from syncdash.api.app import build_app
        from syncdash.api.views import Api

        self.server = ApiServer(build_app(Api(daemon.config, daemon.store, daemon, self.settings)),
                                self.settings.host, self.settings.port)
        return self.server.start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None
