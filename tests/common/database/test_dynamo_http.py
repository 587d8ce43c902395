"""The lean client's HTTP/1.1 (common/database/dynamo_http.py) against servers that answer byte for byte as
scripted: keep-alive reuse, a connection closed while idle, the three ways a body is framed, and
an answer cut short."""
from __future__ import annotations

import socket
import threading

import pytest
from botocore.exceptions import ConnectionClosedError

from common.database import dynamo
from common.database.dynamo_http import ConnectionPool
from tests.support.tcp_faults import _Listener

KEY = {"pk": {"S": "k"}}


def answer(body: bytes, *, head: str = "HTTP/1.1 200 OK", framing: str | None = None) -> bytes:
    framing = f"Content-Length: {len(body)}" if framing is None else framing
    return f"{head}\r\nContent-Type: application/x-amz-json-1.0\r\n{framing}\r\n\r\n".encode() + body


class RawServer(_Listener):
    """Reads each request (head and Content-Length body) and sends the next scripted bytes; closes
    the connection after an answer if `close_after`, as a server whose idle timeout ran out."""

    def __init__(self, script: list[bytes], *, close_after: bool = False) -> None:
        self.script, self.close_after, self.accepted = list(script), close_after, 0
        self.hung_up = threading.Semaphore(0)  # released as each connection is closed
        super().__init__()

    def handle(self, conn: socket.socket) -> None:
        self.accepted += 1
        threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            self._answer(conn)
        except OSError:
            pass  # closed by close() at the end of the test
        finally:
            self.hung_up.release()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            data = b""
            while self.script:
                while b"\r\n\r\n" not in data:
                    if not (chunk := conn.recv(65536)):
                        return
                    data += chunk
                head, _, data = data.partition(b"\r\n\r\n")
                length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                                  if line.lower().startswith(b"content-length")))
                while len(data) < length:
                    data += conn.recv(65536)
                data = data[length:]
                conn.sendall(self.script.pop(0))
                if self.close_after:
                    return


def client(url: str):
    return dynamo.make_client(region="us-east-1", endpoint_url=url, read_timeout=2, max_attempts=1)


def test_one_connection_carries_every_call():
    with RawServer([answer(b"{}")] * 3) as server:
        lean = client(server.url)
        for _ in range(3):
            lean.get_item(TableName="t", Key=KEY)
    assert server.accepted == 1


def test_a_connection_closed_while_idle_is_replaced_without_an_error_or_a_retry():
    with RawServer([answer(b"{}")] * 3, close_after=True) as server:
        lean = client(server.url)
        answers = []
        for _ in range(3):
            answers.append(lean.get_item(TableName="t", Key=KEY))
            assert server.hung_up.acquire(timeout=10)  # closed by the server before the next call
    assert server.accepted == 3 and {a["ResponseMetadata"]["RetryAttempts"] for a in answers} == {0}


@pytest.mark.parametrize("raw", [
    answer(b'{"Item": {"a": {"S": "x"}}}'),
    answer(b'11\r\n{"Item": {"a": {"\r\na\r\nS": "x"}}}\r\n0\r\nx-trailer: 1\r\n\r\n',
           framing="Transfer-Encoding: chunked"),
    answer(b'{"Item": {"a": {"S": "x"}}}', head="HTTP/1.0 200 OK", framing="X-Framing: by the end"),
    b"HTTP/1.1 100 Continue\r\n\r\n" + answer(b'{"Item": {"a": {"S": "x"}}}'),
], ids=["content-length", "chunked", "connection-end", "after-100-continue"])
def test_every_framing_of_an_answer_is_read(raw):
    with RawServer([raw]) as server:
        item = client(server.url).get_item(TableName="t", Key=KEY)["Item"]
    assert item == {"a": {"S": "x"}}


def test_an_answer_cut_short_is_a_closed_connection_and_unavailable():
    with RawServer([b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"Item\""], close_after=True) as server:
        with pytest.raises(ConnectionClosedError) as cut:
            client(server.url).get_item(TableName="t", Key=KEY)
    assert dynamo.is_unavailable(cut.value)


def test_the_pool_keeps_at_most_its_size_of_idle_connections():
    with RawServer([answer(b"{}")] * 3) as server:
        pool = ConnectionPool(server.url, connect_timeout=1, read_timeout=1, maxsize=1)
        first, second = pool._take(), pool._take()
        pool._give_back(first)
        pool._give_back(second)  # one too many: closed
        assert pool._idle == [first] and second.fileno() == -1
        pool.close()


def test_a_header_value_with_a_line_break_is_refused_before_anything_is_sent():
    from botocore.exceptions import HTTPClientError

    from common.database.dynamo_http import ConnectionPool
    pool = ConnectionPool("http://127.0.0.1:9/", connect_timeout=0.5, read_timeout=0.5, maxsize=1)
    for value in ("token\r\nX-Injected: 1", "token\nX-Injected: 1", "token\rX"):
        with pytest.raises(HTTPClientError, match="line break"):
            pool.post({"X-Amz-Security-Token": value, "Host": "127.0.0.1:9"}, b"{}")
