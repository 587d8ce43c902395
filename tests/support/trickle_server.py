"""A server that never finishes its answer: it accepts every connection and sends the status line and headers
of an HTTP answer one byte every `interval` seconds (the header phase, where a per-read timeout never fires),
until the client leaves or the server is closed. It counts the connections it was made, and the most that were
open at once."""
from __future__ import annotations

import socket
import threading
from typing import Any

HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" + b"X-Padding: " + b"a" * 4000 + b"\r\n\r\n{}"


class TrickleServer:
    def __init__(self, *, interval: float = 1.5) -> None:
        self.interval = interval
        self.connections = 0
        self.open = self.most_at_once = 0
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=256)
        self.port = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self._accept, name="trickle-accept", daemon=True).start()

    def _accept(self) -> None:
        while not self._closing.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
                self.open += 1
                self.most_at_once = max(self.most_at_once, self.open)
            threading.Thread(target=self._trickle, args=(conn,), daemon=True).start()

    def _trickle(self, conn: socket.socket) -> None:
        try:
            self._send_head(conn)
        finally:
            with self._lock:
                self.open -= 1

    def _send_head(self, conn: socket.socket) -> None:
        with conn:
            for byte in HEAD:
                if self._closing.wait(self.interval):
                    return
                try:
                    conn.sendall(bytes([byte]))
                except OSError:  # the client left
                    return

    def close(self) -> None:
        self._closing.set()
        self.listener.close()

    def __enter__(self) -> "TrickleServer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
