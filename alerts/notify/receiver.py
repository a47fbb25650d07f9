"""The reference webhook receiver: what an integrator's endpoint should do with urbanwatch's
notifications (docs/notifications.md), used by the demo and the tests.

It checks the HMAC-SHA256 signature over `{timestamp}.{body}`, refuses timestamps more than
five minutes off, keeps the first delivery of each idempotency key (a JSON line in the log,
written and flushed before it answers 200) and answers 200 to repeats without logging them
again. The keys already in the log are remembered across restarts.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import os
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from alerts.notify.messages import webhook_signature

logger = logging.getLogger("alerts.receiver")
MAX_SKEW_S = 300  # a signed request older or newer than this is refused (replay window)
MAX_BODY = 1_000_000


class ReceiverState:
    def __init__(self, secret: str | None, log_path: Path, echo: bool = True):
        self.secret, self.log_path, self.echo = secret, log_path, echo
        self.lock = threading.Lock()
        self.seen: set[str] = set()
        self.duplicates = 0
        if log_path.exists():
            for line in log_path.read_text("utf-8").splitlines():
                if line.strip():
                    self.seen.add(json.loads(line)["idempotency_key"])

    def accept(self, key: str, payload: dict[str, Any]) -> bool:
        """Log the first delivery of `key`; False for a repeat."""
        with self.lock:
            if key in self.seen:
                self.duplicates += 1
                return False
            entry = {
                "received_at": datetime.now(UTC).isoformat(),
                "idempotency_key": key,
                "payload": payload,
            }
            with self.log_path.open("a", encoding="utf-8") as log:
                log.write(json.dumps(entry, ensure_ascii=False) + "\n")
                log.flush()
                os.fsync(log.fileno())
            self.seen.add(key)
        if self.echo:
            print(readable_line(payload), flush=True)
        return True


def readable_line(payload: dict[str, Any]) -> str:
    a, e = payload.get("alert", {}), payload.get("event", {})
    crews = ",".join(payload.get("route", {}).get("crews", []))
    return (
        f"{e.get('at', '?')} #{a.get('id', '?')} {a.get('severity', '?')} {e.get('type', '?')} "
        f"{a.get('rule_id', '?')} {a.get('subject', '?')} {a.get('district') or '-'} -> {crews}: "
        f"{a.get('title', '')}"
    )


class Handler(BaseHTTPRequestHandler):
    server: Server

    def do_POST(self) -> None:
        state = self.server.state
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            return self._answer(413, "body too large")
        body = self.rfile.read(length)
        key = self.headers.get("Idempotency-Key", "")
        if not key:
            return self._answer(400, "Idempotency-Key header missing")
        if state.secret is not None:
            problem = check_signature(
                state.secret,
                self.headers.get("X-Urbanwatch-Timestamp", ""),
                self.headers.get("X-Urbanwatch-Signature", ""),
                body,
                time.time(),
            )
            if problem:
                return self._answer(401, problem)
        try:
            payload = json.loads(body)
        except ValueError:
            return self._answer(400, "body is not JSON")
        first = state.accept(key, payload if isinstance(payload, dict) else {"body": payload})
        self._answer(200, "ok" if first else "duplicate")

    def _answer(self, code: int, text: str) -> None:
        data = json.dumps({"status": text}).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the sender left
            self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug(format, *args)


def check_signature(secret: str, ts: str, signature: str, body: bytes, now: float) -> str | None:
    """Why the request is refused, or None when its signature and timestamp hold."""
    if not ts.isdigit():
        return "X-Urbanwatch-Timestamp missing or not a number"
    if abs(now - int(ts)) > MAX_SKEW_S:
        return f"timestamp more than {MAX_SKEW_S} s from the receiver's clock"
    if not hmac.compare_digest(signature, webhook_signature(secret, int(ts), body)):
        return "bad X-Urbanwatch-Signature"
    return None


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, host: str, port: int, state: ReceiverState):
        super().__init__((host, port), Handler)
        self.state = state

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}/alerts"

    def start(self) -> Server:
        threading.Thread(target=self.serve_forever, name="receiver", daemon=True).start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
