"""gunicorn's gthread worker, except that a request is read whole before a thread takes it.

Stock gthread gives a connection to a thread as soon as its first byte arrives; the thread then
reads the rest of the head and the body with blocking reads, so a few clients sending a byte a
second hold every thread, and `/healthz` waits behind them (measured: SECURITY.md).
`BufferingWorker` reads in the worker's event loop instead (non-blocking, like a buffering
proxy): the head up to its blank line and the body up to its `Content-Length` are collected
first, and only a complete request is handed to a thread. A request not complete within
`REQUEST_READ_SECONDS` of its first byte is answered 408 and closed. Slow senders then cost a
buffer and a slot of `worker_connections` (1000), never a thread.

A body larger than `BUFFER_LIMIT`, `Expect: 100-continue` or a chunked body that is not
complete in the buffer are handed over as they are (the app refuses bodies over 64 kB).
TLS sockets are left to stock gthread (`ivr serve` speaks plain HTTP behind a proxy).
"""

from __future__ import annotations

import collections
import errno
import re
import selectors
import time
from functools import partial
from typing import Any

from gunicorn.workers.gthread import TConn, ThreadWorker

REQUEST_READ_SECONDS = 10.0  # from a request's first byte to its last; Twilio's limit is 15 s
BUFFER_LIMIT = 128 * 1024  # head and body held before a thread takes over
_HEAD_END = b"\r\n\r\n"
_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length[ \t]*:[ \t]*(\d{1,12})[ \t]*\r\n", re.I)
_CHUNKED = re.compile(rb"\r\ntransfer-encoding[ \t]*:[^\r\n]*chunked", re.I)
_EXPECT = re.compile(rb"\r\nexpect[ \t]*:", re.I)
_TIMED_OUT = (b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")


def request_complete(data: bytes) -> bool:
    """Whether `data` holds a whole request head and body (or enough to stop buffering)."""
    end = data.find(_HEAD_END)
    if end < 0:
        return len(data) >= BUFFER_LIMIT  # gunicorn's parser refuses an over-long head
    head = data[: end + 2]
    body = len(data) - end - len(_HEAD_END)
    if _EXPECT.search(head):
        return True  # the client waits for "100 Continue" before it sends the body
    if _CHUNKED.search(head):
        return data.endswith(b"\r\n0\r\n\r\n") or len(data) >= BUFFER_LIMIT
    length = _CONTENT_LENGTH.search(head)
    if length is None:
        return True  # no body
    return body >= int(length.group(1)) or len(data) >= BUFFER_LIMIT


class BufferingWorker(ThreadWorker):  # type: ignore[misc]
    """gthread reading every request whole in its event loop first (module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reading: collections.deque[Any] = collections.deque()

    def accept(self, listener: Any) -> None:
        """Accept a connection and start reading its first request."""
        if self.cfg.is_ssl:
            super().accept(listener)
            return
        try:
            sock, addr = listener.accept()
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                return
            raise
        self.nr_conns += 1
        conn = TConn(self.cfg, sock, addr, listener.getsockname())
        self._start_reading(conn, deadline=time.monotonic() + self.cfg.keepalive)

    def on_client_socket_readable(self, conn: Any, client: Any) -> None:
        """A kept-alive connection has its next request coming: read it whole first."""
        if self.cfg.is_ssl:
            super().on_client_socket_readable(conn, client)
            return
        self.poller.unregister(client)
        self.keepalived_conns.remove(conn)
        self._start_reading(conn, deadline=None)
        self._read_some(conn, client)

    def _start_reading(self, conn: Any, *, deadline: float | None) -> None:
        conn.ivr_buffer = bytearray()
        # Until the first byte: the keep-alive wait (a kept-alive connection is read at once).
        conn.timeout = deadline or time.monotonic() + REQUEST_READ_SECONDS
        self.reading.append(conn)
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._read_some, conn))

    def _read_some(self, conn: Any, client: Any) -> None:
        try:
            chunk = conn.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            chunk = b""
        if not chunk:
            self._drop(conn)
            return
        if not conn.ivr_buffer:  # its first byte: from now on the request has its own limit
            conn.timeout = time.monotonic() + REQUEST_READ_SECONDS
        conn.ivr_buffer += chunk
        if request_complete(bytes(conn.ivr_buffer)):
            self.poller.unregister(conn.sock)
            self.reading.remove(conn)
            conn.data_ready = True
            self.enqueue_req(conn)

    def handle(self, conn: Any) -> Any:
        """In a thread: the buffered bytes go to gunicorn's parser before the socket's."""
        buffered = getattr(conn, "ivr_buffer", None)
        if buffered:
            conn.ivr_buffer = None
            conn.sock.setblocking(True)
            conn.init()
            conn.parser.unreader.unread(bytes(buffered))
        return super().handle(conn)

    def _drop(self, conn: Any, answer: bytes = b"") -> None:
        try:
            self.poller.unregister(conn.sock)
        except (KeyError, ValueError, OSError):
            pass
        try:
            self.reading.remove(conn)
        except ValueError:
            pass
        if answer:
            try:
                conn.sock.send(answer)
            except OSError:
                pass
        self.nr_conns -= 1
        conn.close()

    def murder_pending(self) -> None:
        """Also close connections whose request did not arrive whole in time (408)."""
        super().murder_pending()
        now = time.monotonic()
        for conn in [c for c in self.reading if c.timeout <= now]:
            self._drop(conn, _TIMED_OUT if conn.ivr_buffer else b"")

    def run(self) -> None:
        """gthread's loop; connections still being read are closed when it ends."""
        try:
            super().run()
        finally:
            for conn in list(self.reading):
                self._drop(conn)
