"""A real local webhook receiver for the tests, and the Standard Webhooks check written from the spec."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()


class Receiver:
    """A local webhook receiver: records every POST, answers the queued statuses (then 204)."""

    def __init__(self):
        self.received: list[dict] = []
        self.answers: list[int] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.lock:
                    status = receiver.answers.pop(0) if receiver.answers else 204
                    receiver.received.append({"path": self.path, "headers": dict(self.headers),
                                              "body": body, "answered": status})
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def delivered(self, path: str) -> list[dict]:
        """The requests to path that were answered 2xx, body parsed."""
        with self.lock:
            return [{**r, "event": json.loads(r["body"])} for r in self.received
                    if r["path"] == path and 200 <= r["answered"] < 300]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def verify(secret: str, request: dict) -> None:
    """The Standard Webhooks check, written here from the spec (not with the server's code)."""
    headers = {k.lower(): v for k, v in request["headers"].items()}
    msg_id, stamp = headers["webhook-id"], headers["webhook-timestamp"]
    assert abs(time.time() - int(stamp)) < 300
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = msg_id.encode() + b"." + stamp.encode() + b"." + request["body"]
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    assert f"v1,{expected}" in headers["webhook-signature"].split(" ")
