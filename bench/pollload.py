"""A cheap paced HTTP/1.1 poller: GET one URL at a fixed rate over keep-alive sockets.

The benches share the machine with the server they measure, so the client must cost little:
requests + threads spend about 1 ms of CPU per poll, which at 500/s is half a core taken
from the server. This one writes pre-built request bytes and reads answers with one selector,
about 0.05 ms per poll. Run as its own process so its CPU is counted apart from the bench's:

    python bench/pollload.py http://127.0.0.1:8000/api/v1/jobs/ID --rate 500 --seconds 10

It prints one line of JSON: asked and achieved rate, latency percentiles (send to the last byte
of the answer), statuses seen, and the cores this client itself used.
"""

from __future__ import annotations

import argparse
import json
import os
import selectors
import signal
import socket
import sys
import time
from urllib.parse import urlsplit


class Conn:
    def __init__(self, host: str, port: int, request: bytes):
        self.addr, self.request = (host, port), request
        self.sock: socket.socket | None = None
        self.buf = b""
        self.sent_at = 0.0
        self.busy = False

    def open(self, sel: selectors.BaseSelector) -> None:
        self.sock = socket.create_connection(self.addr)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.setblocking(False)
        sel.register(self.sock, selectors.EVENT_READ, self)

    def close(self, sel: selectors.BaseSelector) -> None:
        if self.sock is not None:
            sel.unregister(self.sock)
            self.sock.close()
            self.sock = None
        self.busy, self.buf = False, b""

    def send(self, sel: selectors.BaseSelector, now: float) -> None:
        if self.sock is None:
            self.open(sel)
        self.sock.sendall(self.request)  # small: fits the socket buffer at once
        self.sent_at, self.busy, self.buf = now, True, b""

    def feed(self, data: bytes) -> tuple[int, bool] | None:
        """Status and keep-alive once a whole answer is in, else None."""
        self.buf += data
        head_end = self.buf.find(b"\r\n\r\n")
        if head_end < 0:
            return None
        head = self.buf[:head_end].decode("latin-1").lower()
        length = 0
        for line in head.split("\r\n")[1:]:
            name, _, value = line.partition(":")
            if name == "content-length":
                length = int(value)
        if len(self.buf) < head_end + 4 + length:
            return None
        status = int(head.split(" ", 2)[1])
        return status, "connection: close" not in head


def run(url: str, rate: float, seconds: float, conns: int, headers: dict[str, str]) -> dict:
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    request = (f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\n{extra}\r\n").encode()
    sel = selectors.DefaultSelector()
    pool = [Conn(parts.hostname, parts.port or 80, request) for _ in range(conns)]
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    stopped = False

    def stop(*_):
        nonlocal stopped
        stopped = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    every = 1.0 / rate
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    due = t0
    behind = 0  # sends due while every connection was busy: sent as soon as one frees
    end = t0 + seconds if seconds > 0 else float("inf")
    while not stopped:
        now = time.perf_counter()
        if now >= end:
            break
        while due <= now:
            behind += 1
            due += every
        while behind:
            idle = next((c for c in pool if not c.busy), None)
            if idle is None:
                break
            idle.send(sel, now)
            behind -= 1
        timeout = max(0.0, min(due, end) - time.perf_counter())
        for key, _ in sel.select(timeout):
            conn: Conn = key.data
            try:
                data = conn.sock.recv(65536)
            except ConnectionError:
                data = b""
            if not data:
                conn.close(sel)
                continue
            done = conn.feed(data)
            if done is None:
                continue
            status, keep = done
            latencies.append((time.perf_counter() - conn.sent_at) * 1000)
            statuses[status] = statuses.get(status, 0) + 1
            conn.busy = False
            if not keep:
                conn.close(sel)
    elapsed = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    for c in pool:
        c.close(sel)
    lat = sorted(latencies)

    def pct(p: float) -> float:
        return round(lat[min(len(lat) - 1, int(len(lat) * p))], 2) if lat else 0.0

    return {"rate_asked": rate, "rate": round(len(lat) / elapsed, 1), "answers": len(lat),
            "seconds": round(elapsed, 2), "p50_ms": pct(0.5), "p90_ms": pct(0.9),
            "p99_ms": pct(0.99), "max_ms": round(lat[-1], 2) if lat else 0.0,
            "statuses": statuses, "client_cores": round(cpu / elapsed, 3), "pid": os.getpid()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("url")
    parser.add_argument("--rate", type=float, default=500.0, help="requests per second, paced")
    parser.add_argument("--seconds", type=float, default=10.0, help="0: until SIGTERM")
    parser.add_argument("--conns", type=int, default=16, help="keep-alive connections")
    parser.add_argument("--header", action="append", default=[], metavar="NAME:VALUE")
    args = parser.parse_args(argv)
    headers = dict(h.split(":", 1) for h in args.header)
    print(json.dumps(run(args.url, args.rate, args.seconds, args.conns,
                         {k.strip(): v.strip() for k, v in headers.items()})), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
