"""Run a fake's WSGI app as a real HTTP server on loopback, in a thread."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication, WSGIEnvironment


POLL_SECONDS = 0.05  # how often a server checks for a shutdown request


class _QuietHandler(WSGIRequestHandler):
    """Werkzeug's handler without the per-request access log on stderr."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None


@dataclass
class RunningServer:
    server: BaseWSGIServer
    thread: threading.Thread

    @property
    def url(self) -> str:
        return f"http://{self.server.host}:{self.port}"

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def start_server(app: WSGIApplication, host: str = "127.0.0.1", port: int = 0) -> RunningServer:
    """Start ``app`` on ``host:port`` (0 picks a free port) in a daemon thread."""
    server = make_server(host, port, app, threaded=True, request_handler=_QuietHandler)
    # a short poll: stopping waits for the loop to notice, and tests start and stop many fakes
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": POLL_SECONDS},
        name=f"fake@{port}",
        daemon=True,
    )
    thread.start()
    return RunningServer(server=server, thread=thread)


@contextmanager
def serving(
    app: WSGIApplication, host: str = "127.0.0.1", port: int = 0
) -> Iterator[RunningServer]:
    running = start_server(app, host, port)
    try:
        yield running
    finally:
        running.stop()


def drop_connection(environ: WSGIEnvironment, who: str) -> None:
    """Close the client's connection without an answer (a fault knob: "committed, then lost").

    Raises ConnectionAbortedError, which werkzeug's dev server treats as a dropped client, so
    nothing is written back.
    """
    sock = environ.get("werkzeug.socket")
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()
    raise ConnectionAbortedError(f"{who} dropped the connection after the commit")
