"""Receive the portal's webhooks locally: verify signatures, drop duplicates, print each alert.

    python manage.py webhook_receiver --port 8099 --secret whsec_...

How an authority tests its endpoint before giving BSSN the real URL; see docs/alerts.md.
The verification below is written from the Standard Webhooks v1 specification and does
not use the portal's own signing module, so it checks the sender independently.
"""

import base64
import hashlib
import hmac
import json
import threading
import time
from collections import OrderedDict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from django.core.management.base import BaseCommand, CommandError

TOLERANCE = 5 * 60
REMEMBERED_IDS = 100_000


def _key(secret: str) -> bytes:
    try:
        return base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except ValueError:
        raise CommandError("The secret must be whsec_ followed by base64.") from None


def signature_ok(keys: list[bytes], msg_id: str, timestamp: str, body: bytes, header: str) -> bool:
    """Return whether any `v1,` signature in `header` matches any key."""
    signed = msg_id.encode() + b"." + timestamp.encode() + b"." + body
    offered = [part[3:] for part in header.split() if part.startswith("v1,")]
    for key in keys:
        expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
        if any(hmac.compare_digest(expected, candidate) for candidate in offered):
            return True
    return False


class Receiver:
    """The receiver's state: keys, the ids already seen, and where to print."""

    def __init__(self, keys: list[bytes], out, quiet: bool = False) -> None:
        self.keys = keys
        self.out = out
        self.quiet = quiet
        self.seen: OrderedDict[str, None] = OrderedDict()
        self.lock = threading.Lock()
        self.print_lock = threading.Lock()
        self.counts = {"accepted": 0, "duplicate": 0, "rejected": 0}

    def handle(self, headers, body: bytes) -> tuple[int, str]:
        msg_id = headers.get("webhook-id", "")
        timestamp = headers.get("webhook-timestamp", "")
        signature = headers.get("webhook-signature", "")
        if not (msg_id and timestamp.isdigit() and signature):
            return self._reject("missing or malformed webhook headers")
        if abs(time.time() - int(timestamp)) > TOLERANCE:
            return self._reject(f"{msg_id}: timestamp outside the 5-minute tolerance")
        if not signature_ok(self.keys, msg_id, timestamp, body, signature):
            return self._reject(f"{msg_id}: signature does not verify")
        with self.lock:  # check and remember in one step: two copies arriving together count once
            duplicate = msg_id in self.seen
            if duplicate:
                self.counts["duplicate"] += 1
            else:
                self.seen[msg_id] = None
                if len(self.seen) > REMEMBERED_IDS:
                    self.seen.popitem(last=False)
                self.counts["accepted"] += 1
        if duplicate:
            self._print(f"duplicate {msg_id} dropped")
            return 200, "duplicate"
        try:
            document = json.loads(body)
            text = json.dumps(document, ensure_ascii=False, indent=2, sort_keys=True)
        except ValueError:
            text = body.decode(errors="replace")
        self._print(f"alert {msg_id}\n{text}")
        return 200, "ok"

    def _reject(self, why: str) -> tuple[int, str]:
        with self.lock:
            self.counts["rejected"] += 1
        self._print(f"rejected: {why}")
        return 401, "invalid signature"

    def _print(self, text: str) -> None:
        if not self.quiet:
            with self.print_lock:
                self.out.write(text)
                self.out.flush()


def make_server(host: str, port: int, receiver: Receiver) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):  # noqa: N802  http.server's naming
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, text = receiver.handle(headers, body)
            payload = text.encode()
            self.send_response(status)
            self.send_header("content-type", "text/plain; charset=utf-8")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    return server


class Command(BaseCommand):
    help = "Receive signed alert webhooks: verify, drop duplicates by webhook-id, print each alert."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8099)
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument(
            "--secret",
            action="append",
            required=True,
            help="whsec_… secret; repeat during a rotation to accept either.",
        )
        parser.add_argument("--quiet", action="store_true", help="Do not print alerts (benchmarks).")

    def handle(self, *args, **options):
        receiver = Receiver([_key(s) for s in options["secret"]], self.stdout, quiet=options["quiet"])
        server = make_server(options["host"], options["port"], receiver)
        self.stdout.write(
            f"Listening on http://{options['host']}:{server.server_address[1]}/ — Ctrl-C stops."
        )
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
            self.stdout.write(
                "accepted {accepted}, duplicates dropped {duplicate}, rejected {rejected}".format(
                    **receiver.counts
                )
            )
