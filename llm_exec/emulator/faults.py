"""Socket-level behaviour: normal sends plus the transport faults.

``Transport`` is the base of the request handler. Everything that waits uses
``server.stopping.wait`` so ``Emulator.stop()`` interrupts stalls, trickles and
chunk delays at once.
"""

from __future__ import annotations

import socket
import struct
import time
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING

from .wire_base import Response

if TYPE_CHECKING:
    from .state import EmulatorHTTPServer

NGINX_PAGE = (
    "<html>\r\n<head><title>{status} {phrase}</title></head>\r\n<body>\r\n"
    "<center><h1>{status} {phrase}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)


def html_response(status: int, phrase: str) -> Response:
    body = NGINX_PAGE.format(status=status, phrase=phrase).encode()
    return Response(status, {"Content-Type": "text/html"}, [body], kind="text")


def _frame(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


class Transport(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive + chunked streams, like the real APIs
    server_version = "llm-exec-emulator/1"
    server: EmulatorHTTPServer

    # -- waiting --------------------------------------------------------
    def pause(self, ms: float) -> bool:
        """Sleep ms; False if the server is stopping (caller should give up)."""
        if ms <= 0:
            return not self.server.stopping.is_set()
        return not self.server.stopping.wait(ms / 1000)

    # -- writing --------------------------------------------------------
    def head(self, resp: Response, *, chunked: bool, length: int | None = None, close: bool = False) -> None:
        self.send_response(resp.status, resp.reason)
        for name, value in resp.headers.items():
            self.send_header(name, value)
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(length if length is not None else len(resp.body)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.flush()

    def send(self, resp: Response) -> None:
        if not resp.stream:
            self.head(resp, chunked=False)
            self.wfile.write(resp.body)
            return
        self.head(resp, chunked=True)
        delay = self.server.settings.chunk_delay_ms
        for i, chunk in enumerate(c for c in resp.chunks if c):
            if i and not self.pause(delay):
                return self.hang_up()
            self.wfile.write(_frame(chunk))
        self.wfile.write(b"0\r\n\r\n")

    # -- faults ---------------------------------------------------------
    def hang_up(self, rst: bool = False) -> None:
        """Close now: FIN normally, RST (SO_LINGER 0) when rst is set."""
        self.close_connection = True
        try:
            if rst:
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            else:
                self.connection.shutdown(socket.SHUT_RDWR)
            # The makefile() objects hold fd references; all must go for close() to act now.
            self.wfile.close()
            self.rfile.close()
            self.connection.close()
        except OSError:
            pass

    def send_partial(self, resp: Response, rst: bool) -> None:
        """truncate (FIN) / reset_mid_body (RST): headers and about half the body."""
        if resp.stream:
            chunks = [c for c in resp.chunks if c]
            # Half the chunks; with a single chunk, cut inside it.
            part = chunks[: len(chunks) // 2] if len(chunks) > 1 else [c[: len(c) // 2] for c in chunks]
            self.head(resp, chunked=True, close=True)
            for i, chunk in enumerate(part):
                if i and not self.pause(self.server.settings.chunk_delay_ms):
                    break
                if chunk:
                    self.wfile.write(_frame(chunk))
        else:
            body = resp.body
            # Promise the full length, deliver half: the client sees an incomplete body.
            self.head(resp, chunked=False, length=len(body), close=True)
            self.wfile.write(body[: len(body) // 2])
        self.wfile.flush()
        self.hang_up(rst)

    def trickle(self, resp: Response, interval_ms: float, seconds: float | None) -> None:
        """One harmless filler byte per interval (until seconds elapse), then the real body.

        Filler is chosen so the final body still parses: spaces before JSON /
        NDJSON, SSE comment lines (":\\n") before an event stream.
        """
        self.head(resp, chunked=True, close=True)
        filler = b":\n" if resp.kind == "sse" else b" "
        deadline = None if seconds is None else time.monotonic() + seconds
        sent = 0
        while deadline is None or time.monotonic() < deadline:
            if not self.pause(interval_ms):
                return self.hang_up()
            self.wfile.write(_frame(filler[sent % len(filler):][:1]))
            sent += 1
        tail = b"\n" if filler == b":\n" and sent % 2 else b""
        self.wfile.write(_frame(tail + resp.body) + b"0\r\n\r\n")
