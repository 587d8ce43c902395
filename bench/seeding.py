"""Many users in the tables, in the shapes the stores write, without knowing those shapes: one real
user (registered through the API, logged in) is read back from every table, and its items are
cloned with fresh identifiers by string replacement, then written with BatchWriteItem."""
from __future__ import annotations

import base64
import json
import re
import secrets
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from common.database import dynamo
from loadgen import local_session

BATCH = 25  # BatchWriteItem's limit
UUID_PATTERN = r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b"
# Digests and fingerprints (SHA-256 hex): unique keys (one-time tokens) and index keys (devices by
# fingerprint) must not be shared by 100k clones, or a lookup would return them all.
DIGEST_PATTERN = r"\b[0-9a-f]{64}\b"
ENDPOINT_REGION = "us-east-1"


@dataclass(frozen=True)
class Template:
    """The items of one user, as DynamoDB wire-format JSON text per table, and the identifiers in them."""
    items: dict[str, list[str]]  # table -> item texts
    username: str
    email: str
    uuids: tuple[str, ...]
    digests: tuple[str, ...]

    @property
    def item_count(self) -> int:
        return sum(len(texts) for texts in self.items.values())


def _to_text(item: dict) -> str:
    # The wire format again: boto3 hands binary values back as bytes, the JSON protocol sends base64.
    return json.dumps(item, default=lambda b: base64.b64encode(bytes(b)).decode())


def _scan(client, table: str) -> list[dict]:
    items, start = [], None
    while True:
        page = client.scan(TableName=table, **({"ExclusiveStartKey": start} if start else {}))
        items += page["Items"]
        start = page.get("LastEvaluatedKey")
        if not start:
            return items


def capture_template(client, names: dynamo.TableNames, *, user_uuid: str, username: str, email: str) -> Template:
    """Every item of every table that mentions the user (uuid, username or e-mail). Scans: call it
    while the tables are small, before seeding."""
    marks = (user_uuid, username, email)
    items = {}
    for table in names.all():
        texts = [text for text in map(_to_text, _scan(client, table)) if any(m in text for m in marks)]
        if texts:
            items[table] = texts
    joined = "\n".join(t for texts in items.values() for t in texts)
    return Template(items=items, username=username, email=email,
                    uuids=tuple(sorted(set(re.findall(UUID_PATTERN, joined)))),
                    digests=tuple(sorted(set(re.findall(DIGEST_PATTERN, joined)))))


class Cloner:
    """Fresh copies of the template: every identifier replaced, everywhere it appears."""

    def __init__(self, template: Template) -> None:
        self.template = template
        originals = [template.email, template.username, *template.uuids, *template.digests]
        # Longest first: the e-mail contains the username.
        pattern = re.compile("|".join(re.escape(o) for o in sorted(originals, key=len, reverse=True)))
        # Split once into literal text and identifier slots: a clone is then one join per item,
        # and the items are never parsed (seeding 100k users is bound by this and by DynamoDB Local).
        self._split = [(table, pattern.split(text), pattern.findall(text))
                       for table, texts in template.items.items() for text in texts]

    def _replacements(self) -> dict[str, str]:
        name = "c" + secrets.token_hex(8)
        fresh = {self.template.username: name, self.template.email: f"{name}@example.com"}
        fresh |= {original: str(uuid.uuid4()) for original in self.template.uuids}
        fresh |= {original: secrets.token_hex(32) for original in self.template.digests}
        return fresh

    def clone(self) -> list[tuple[str, str]]:
        """One new user: (table, item text) pairs."""
        fresh = self._replacements()
        out = []
        for table, pieces, slots in self._split:
            parts = [pieces[0]]
            for slot, piece in zip(slots, pieces[1:], strict=False):
                parts += (fresh[slot], piece)
            out.append((table, "".join(parts)))
        return out


class BatchWriter:
    """BatchWriteItem posted as JSON text (signed with botocore's SigV4), so that the items of
    100k users are neither parsed nor serialised again; UnprocessedItems are sent again."""

    def __init__(self, endpoint_url: str) -> None:
        self.url = endpoint_url.rstrip("/") + "/"
        self._signer = SigV4Auth(Credentials("local", "local"), "dynamodb", ENDPOINT_REGION)
        self._local = threading.local()  # a requests.Session per thread

    def _post(self, body: str) -> dict:
        request = AWSRequest(method="POST", url=self.url, data=body.encode(), headers={
            "Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "DynamoDB_20120810.BatchWriteItem"})
        self._signer.add_auth(request)
        if not hasattr(self._local, "http"):
            self._local.http = local_session()
        response = self._local.http.post(self.url, data=request.body, headers=dict(request.headers), timeout=60)
        if response.status_code != 200:
            raise RuntimeError(f"BatchWriteItem: {response.status_code} {response.text[:300]}")
        return response.json()

    def write(self, batch: list[tuple[str, str]], *, max_tries: int = 20) -> None:
        by_table: dict[str, list[str]] = {}
        for table, text in batch:
            by_table.setdefault(table, []).append('{"PutRequest": {"Item": ' + text + "}}")
        body = '{"RequestItems": {' + ",".join(
            f"{json.dumps(table)}: [{','.join(puts)}]" for table, puts in by_table.items()) + "}}"
        for attempt in range(max_tries):
            left = self._post(body).get("UnprocessedItems") or {}
            if not left:
                return
            body = json.dumps({"RequestItems": left})
            time.sleep(min(0.05 * 2 ** attempt, 1.0))
        raise RuntimeError(f"BatchWriteItem: items still unprocessed after {max_tries} tries")


def _batches(cloner: Cloner, users: int):
    """Lists of at most BATCH (table, item) pairs, filled user by user."""
    batch = []
    for _ in range(users):
        for pair in cloner.clone():
            batch.append(pair)
            if len(batch) == BATCH:
                yield batch
                batch = []
    if batch:
        yield batch


def seed_clones(endpoint_url: str, template: Template, *, users: int, threads: int = 8) -> dict:
    """Write `users` clones of the template; returns the count, the items and the seconds taken."""
    writer, cloner, started = BatchWriter(endpoint_url), Cloner(template), time.perf_counter()
    # A bounded number of batches in flight: the clones are made while earlier ones are written.
    in_flight = threading.BoundedSemaphore(threads * 4)

    def write(batch):
        try:
            writer.write(batch)
        finally:
            in_flight.release()
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="bench-seed") as pool:
        futures = []
        for batch in _batches(cloner, users):
            in_flight.acquire()
            futures.append(pool.submit(write, batch))
        for future in futures:
            future.result()
    seconds = time.perf_counter() - started
    return {"users": users, "items": users * template.item_count, "seconds": seconds,
            "items_per_second": users * template.item_count / seconds if seconds else None}
