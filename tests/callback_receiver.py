"""A real local HTTP server standing in for a service that registered callbacks: it records
every delivery (headers and raw body), checks its signature as a receiver would
(``quipu_client.webhooks.verify_webhook``), and answers each path from a script of statuses
(e.g. 500, 500, then 200) so tests can make deliveries fail."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from quipu_client.webhooks import WebhookVerificationError, verify_webhook


@dataclass
class Delivery:
    path: str
    headers: dict[str, str]
    body: bytes
    verified: bool
    answered: int | None = None  # None while the answer is held back

    @property
    def data(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)["data"]
        return parsed


@dataclass
class Receiver:
    port: int
    secret: str | None = None  # set once registration has shown it
    scripts: dict[str, list[int]] = field(default_factory=dict)  # path -> statuses to answer, then 200
    holds: dict[str, float] = field(default_factory=dict)  # path -> seconds the next delivery waits for its answer
    on_accepted: Callable[[Delivery], None] | None = None  # the service's work once it answered 200
    deliveries: list[Delivery] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def answer(self, path: str) -> tuple[int, float]:
        with self.lock:
            script = self.scripts.get(path, [])
            return (script.pop(0) if script else 200), self.holds.pop(path, 0.0)

    def record(self, delivery: Delivery) -> None:
        with self.lock:
            self.deliveries.append(delivery)

    def received(self, path: str | None = None) -> list[Delivery]:
        with self.lock:
            return [d for d in self.deliveries if path is None or d.path == path]


@contextmanager
def callback_receiver() -> Iterator[Receiver]:
    receiver: Receiver

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            headers = {k.lower(): v for k, v in self.headers.items()}
            try:
                verify_webhook(headers, body, receiver.secret or "whsec_")
                verified = True
            except WebhookVerificationError:
                verified = False
            status, hold = receiver.answer(self.path) if verified else (401, 0.0)
            delivery = Delivery(self.path, headers, body, verified)
            receiver.record(delivery)  # on arrival: a test may act while the answer is held back
            time.sleep(hold)
            delivery.answered = status
            try:
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()
            except OSError:
                pass  # the caller is gone (killed while we held the answer)
            if status == 200 and receiver.on_accepted is not None:
                receiver.on_accepted(delivery)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver = Receiver(server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
