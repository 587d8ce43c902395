"""A socket whose every operation is given what is left of one deadline: a peer that sends a byte at a time
(each receive returns at once, so a per-operation timeout never fires) is cut off when the deadline comes,
in the TLS handshake, the status line, the headers and the body alike. No watchdog thread is needed: each
read is one recv with the time left as its timeout, and a read after the deadline fails at once."""
from __future__ import annotations

import io
import socket
import ssl
import time


class DeadlineSocket:
    """What http.client asks of a connection's socket (sendall, makefile, close), under one deadline."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self.sock, self.deadline = sock, deadline

    def left(self) -> float:
        """The time left, set as the socket's timeout; TimeoutError if there is none."""
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("deadline passed")
        self.sock.settimeout(left)
        return left

    def connect(self, address: str, port: int) -> None:
        self.left()
        self.sock.connect((address, port))

    def start_tls(self, context: ssl.SSLContext, *, server_hostname: str) -> None:
        """TLS over the connection; the handshake's timeout is its whole duration (Python ≥ 3.5)."""
        self.left()
        self.sock = context.wrap_socket(self.sock, server_hostname=server_hostname, do_handshake_on_connect=False)
        self.left()
        self.sock.do_handshake()

    def sendall(self, data: bytes) -> None:
        self.left()  # sendall's timeout bounds the whole send (Python ≥ 3.5)
        self.sock.sendall(data)

    def makefile(self, mode: str = "rb") -> io.BufferedReader:
        return io.BufferedReader(_DeadlineReader(self))

    def close(self) -> None:
        """Nothing: http.client closes its socket once it has the response's headers, and reads the body
        after; the owner of the connection releases it (release)."""

    def release(self) -> None:
        self.sock.close()


class _DeadlineReader(io.RawIOBase):
    def __init__(self, owner: DeadlineSocket) -> None:
        super().__init__()
        self.owner = owner

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        self.owner.left()
        return self.owner.sock.recv_into(buffer)
