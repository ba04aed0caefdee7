"""A local webhook receiver for tests: scripted answers, signature check with the reference library."""

import http.server
import json
import threading
import time
from dataclasses import dataclass, field

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


@dataclass
class Received:
    webhook_id: str
    headers: dict
    body: bytes
    status: int
    verified: bool
    at: float = field(default_factory=time.time)


class Receiver:
    """Answer webhook POSTs from a script of (status, headers, delay) tuples, then with `default`."""

    def __init__(self, secret: str | None = None) -> None:
        self.secrets = [secret] if secret else []
        self.script: list[tuple[int, dict, float]] = []
        self.default: tuple[int, dict, float] = (200, {}, 0.0)
        self.received: list[Received] = []
        self.lock = threading.Lock()
        self.first_request = threading.Event()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):  # noqa: N802  http.server's naming
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                headers = {k.lower(): v for k, v in self.headers.items()}
                verified = receiver.verify(headers, body)
                with receiver.lock:
                    status, extra, delay = receiver.script.pop(0) if receiver.script else receiver.default
                    if not verified:
                        status, extra, delay = 401, {}, 0.0
                    receiver.received.append(
                        Received(headers.get("webhook-id", ""), headers, body, status, verified)
                    )
                receiver.first_request.set()
                if delay:
                    time.sleep(delay)
                self.send_response(status)
                for key, value in extra.items():
                    self.send_header(key, value)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def verify(self, headers: dict, body: bytes) -> bool:
        if not self.secrets:
            return True
        for secret in self.secrets:
            try:
                Webhook(secret).verify(body, headers)
                return True
            except WebhookVerificationError:
                continue
        return False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def start(self) -> "Receiver":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> "Receiver":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def accepted(self) -> list[Received]:
        with self.lock:
            return [r for r in self.received if 200 <= r.status < 300]

    def accepted_ids(self) -> list[str]:
        return [r.webhook_id for r in self.accepted()]

    def unique_accepted(self) -> dict[str, dict]:
        """Return the accepted alerts after de-duplication by webhook-id: id → envelope."""
        return {r.webhook_id: json.loads(r.body) for r in self.accepted()}

    def wait_for(self, predicate, timeout: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.05)
        return predicate()
