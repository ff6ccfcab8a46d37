"""HTTP plumbing: a threading HTTP/1.1 server that hands each request to one app callable.

Written for a fast loopback round trip: TCP_NODELAY on every accepted socket and each answer
sent in a single write, so a keep-alive client never waits on a delayed ACK (~40 ms).
"""

from __future__ import annotations

import logging
import socket
import struct
import threading
from collections.abc import Callable
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .wire import Request, Response

logger = logging.getLogger("vodsandbox")

# A request body above this is refused. VOD's RPC calls are small; the OSS side holds each
# PutObject/UploadPart body in memory, and tests upload parts of a few MB (oss2's default
# part is 10 MB), so 64 MB leaves room without letting one request eat the machine.
MAX_BODY_BYTES = 64 * 1024 * 1024

App = Callable[[Request], Response]


class HttpServer(ThreadingHTTPServer):
    """A ThreadingHTTPServer that knows its open connections, so stop() can end them."""

    daemon_threads = True
    allow_reuse_address = True
    # socketserver's default backlog is 5: more clients connecting at once than that (a
    # gevent worker's calls when VOD is slow) had their requests sit unaccepted until the
    # SDK's read timeout, then retried. VOD's front accepts far more.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], app: App) -> None:
        self.app = app
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._conn_threads: set[threading.Thread] = set()
        self._to_reset: set[socket.socket] = set()
        super().__init__(address, Handler)

    def reset_on_close(self, connection: socket.socket) -> None:
        """Close this connection with a TCP RST instead of the usual FIN."""
        with self._lock:
            self._to_reset.add(connection)

    def shutdown_request(self, request) -> None:
        """Close a served connection: normally FIN first; RST when asked (reset_on_close)."""
        with self._lock:
            reset = request in self._to_reset
            self._to_reset.discard(request)
        if not reset:
            super().shutdown_request(request)
            return
        # No shutdown(SHUT_WR), which would send a FIN first; close() with a zero linger
        # time discards the connection and sends RST.
        try:
            request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass  # the peer is gone already
        self.close_request(request)

    def process_request(self, request, client_address) -> None:
        """Serve a new connection in its own thread, remembering both for stop()."""
        thread = threading.Thread(target=self._serve_connection, args=(request, client_address),
                                  name=f"vodsandbox-{self.server_address[1]}-conn-"
                                       f"{client_address[1]}", daemon=True)
        with self._lock:
            self._connections.add(request)
            self._conn_threads.add(thread)
        thread.start()

    def _serve_connection(self, request, client_address) -> None:
        try:
            self.process_request_thread(request, client_address)
        finally:
            with self._lock:
                self._connections.discard(request)
                self._conn_threads.discard(threading.current_thread())

    def close_connections(self, join_timeout: float = 2.0) -> None:
        """End every open connection (idle keep-alive ones included) and wait for their threads."""
        with self._lock:
            connections = list(self._connections)
            threads = list(self._conn_threads)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed by the peer
        for thread in threads:
            thread.join(join_timeout)


class Handler(BaseHTTPRequestHandler):
    """Turns one HTTP/1.1 request into a Request, and the app's Response into bytes."""

    protocol_version = "HTTP/1.1"
    server_version = "vodsandbox"
    # Idle keep-alive connections are closed after this many seconds.
    timeout = 120

    def setup(self) -> None:
        """Disable Nagle's algorithm: answers leave at once."""
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    # Every method goes through one dispatcher; the app decides what each path allows.
    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PUT = do_DELETE = do_HEAD = do_OPTIONS = do_PATCH = do_GET

    def log_message(self, format: str, *args) -> None:
        """Log a request line at DEBUG."""
        # http.server prints each request to stderr; route it to logging instead.
        logger.debug("%s %s", self.address_string(), format % args)

    def _read_body(self) -> bytes | None:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._read_chunked()
        length = self.headers.get("Content-Length")
        if not length:
            return b""
        if not length.isdigit() or int(length) > MAX_BODY_BYTES:
            return None
        return self.rfile.read(int(length))

    def _read_chunked(self) -> bytes | None:
        parts, total = [], 0
        while True:
            size_line = self.rfile.readline(1024).split(b";", 1)[0].strip()
            try:
                size = int(size_line, 16)
            except ValueError:
                return None
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # trailers: none of them matter here
                return b"".join(parts)
            total += size
            if total > MAX_BODY_BYTES:
                return None
            parts.append(self.rfile.read(size))
            self.rfile.readline(1024)

    def _serve(self) -> None:
        body = self._read_body()
        if body is None:
            self.close_connection = True
            self._write(Response.json(413, {"error": "request body missing or too large"}))
            return
        path, _, query = self.path.partition("?")
        headers: dict[str, list[str]] = {}
        for name, value in self.headers.items():
            headers.setdefault(name.lower(), []).append(value)
        request = Request(method=self.command, path=path, query_string=query, headers=headers,
                          body=body, client=self.client_address[0])
        try:
            response = self.server.app(request)
        except Exception:
            # The boundary: a bug in the sandbox must answer 500, never hang the client.
            logger.exception("vodsandbox failed on %s %s", self.command, self.path)
            response = Response.json(500, {"Code": "InternalError",
                                           "Message": "The sandbox failed; see its log."})
        if response.drop:
            self.close_connection = True
            if response.reset:
                self.server.reset_on_close(self.connection)
            return
        self._write(response)

    def _write(self, response: Response) -> None:
        status = HTTPStatus(response.status)
        lines = [f"HTTP/1.1 {status.value} {status.phrase}",
                 f"Date: {formatdate(usegmt=True)}",
                 f"Server: {self.server_version}",
                 f"Content-Length: {len(response.body)}"]
        lines += [f"{name}: {value}" for name, value in response.headers.items()]
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        body = response.body
        if response.cut_after is not None:
            # The head announced the whole body; the rest never comes and the connection ends.
            body = body[:response.cut_after]
            self.close_connection = True
        # One write for the whole answer: no small-packet stall on keep-alive connections.
        self.wfile.write(head if self.command == "HEAD" else head + body)
