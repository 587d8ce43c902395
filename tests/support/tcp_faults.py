"""A TCP stand-in for a sick DynamoDB: a proxy to the real
DynamoDB Local that can slow every answer down or cut the line like a killed process would."""
from __future__ import annotations

import socket
import struct
import threading
import time
from contextlib import contextmanager
from typing import Iterator


@contextmanager
def refused_endpoint() -> Iterator[str]:
    """http://127.0.0.1:<port> where every connect is refused for as long as it is held: the port is
    bound and never listened on, so no server another test starts meanwhile can take it (a port
    from free_port() can be)."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{held.getsockname()[1]}"


class _Listener:
    """Accepts on 127.0.0.1 in a daemon thread until closed; subclasses handle each connection."""

    def __init__(self, port: int = 0) -> None:
        self.listener = socket.create_server(("127.0.0.1", port))  # SO_REUSEADDR on POSIX
        self.listener.settimeout(0.1)  # lets the accept loop notice close()
        self.port = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.connections: set[socket.socket] = set()
        self.lock = threading.Lock()
        self.closed = False
        self._acceptor = threading.Thread(target=self._accept, daemon=True)
        self._acceptor.start()

    def _accept(self) -> None:
        while not self.closed:
            try:
                conn = self.listener.accept()[0]
            except TimeoutError:
                continue
            except OSError:
                return
            with self.lock:
                if self.closed:  # accepted as close() ran: it must not outlive the listener (its port)
                    conn.close()
                    return
                self.connections.add(conn)
            self.handle(conn)

    def handle(self, conn: socket.socket) -> None:
        """Black hole: keep the connection open and say nothing."""

    def close(self) -> None:
        """Stop listening (new connections are refused) and reset the open ones."""
        with self.lock:
            self.closed = True
            conns, self.connections = self.connections, set()
        self.listener.close()
        if threading.current_thread() is not self._acceptor:
            # The accept loop's wait holds the listening socket (and its port) until it returns:
            # a proxy restarted on this port at once would find it still in use.
            self._acceptor.join(5)
        for conn in conns:
            try:
                # a reset, not a FIN: a client keeping the connection idle in its pool would otherwise
                # hold it half-closed, and with it this port, from a restarted proxy
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                conn.shutdown(socket.SHUT_RDWR)  # wakes a thread blocked in recv
            except OSError:
                pass  # its pump closed it already
            conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class FaultyProxy(_Listener):
    """Forwards to `upstream_url`, holding each chunk of the answer for `delay` seconds."""

    def __init__(self, upstream_url: str, *, delay: float = 0.0, port: int = 0) -> None:
        host, port_text = upstream_url.removeprefix("http://").split(":")
        self.upstream, self.delay = (host, int(port_text)), delay
        super().__init__(port)

    def handle(self, conn: socket.socket) -> None:
        upstream = socket.create_connection(self.upstream)
        with self.lock:
            self.connections.add(upstream)
        threading.Thread(target=self._pump, args=(conn, upstream, False), daemon=True).start()
        threading.Thread(target=self._pump, args=(upstream, conn, True), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket, slow: bool) -> None:
        try:
            while data := source.recv(65536):
                if slow and self.delay:
                    time.sleep(self.delay)
                target.sendall(data)
        except OSError:
            pass
        finally:
            source.close()
            target.close()

    def restarted(self) -> "FaultyProxy":
        """A new proxy on the same port (after close(): DynamoDB is back)."""
        return FaultyProxy(f"http://{self.upstream[0]}:{self.upstream[1]}", delay=self.delay, port=self.port)
