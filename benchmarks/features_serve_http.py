"""HTTP side of the feature-store benchmark (#13): ``lockgate features serve`` against a null
ASGI server on the same stack, measured by the same client in the same run.

The client is raw sockets over HTTP/1.1 keep-alive (no client library in the measured path):
``latency(c=1)`` sends one request at a time on one connection; ``throughput(c)`` keeps ``c``
connections busy from one selector loop for ``n`` requests. Each phase also reports the
server process's CPU seconds (``/proc/<pid>/stat``), since wall time on a shared machine
depends on the neighbours.
"""

from __future__ import annotations

import json
import os
import random
import re
import selectors
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

NULL_APP = """
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    body = b'{"metadata": {}, "results": []}'
    await send({"type": "http.response.start", "status": 200, "headers": [
        (b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]})
    await send({"type": "http.response.body", "body": body})
"""


def request_bytes(body: bytes) -> bytes:
    return (
        b"POST /get-online-features HTTP/1.1\r\nHost: bench\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    )


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def server(cmd: list[str], env: dict[str, str] | None = None) -> Iterator[tuple[int, int]]:
    """Start ``cmd`` (prints 'listening on http://HOST:PORT' once bound); yields (port, pid)."""
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, text=True, env={**os.environ, **(env or {})}
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        found = re.search(r"listening on http://[^:]+:(\d+)", line)
        if not found:
            raise RuntimeError(f"server did not start: {line!r}")
        yield int(found.group(1)), proc.pid
    finally:
        proc.kill()
        proc.wait()


def null_server_cmd(tmp: Path) -> list[str]:
    (tmp / "null_app.py").write_text(NULL_APP)
    code = (
        "import socket, sys, uvicorn\n"
        f"sys.path.insert(0, {str(tmp)!r})\n"
        "from null_app import app\n"
        "s = socket.create_server(('127.0.0.1', 0), backlog=2048)\n"
        "print('listening on http://127.0.0.1:%d' % s.getsockname()[1], flush=True)\n"
        "uvicorn.Server(uvicorn.Config(app, log_level='warning', access_log=False))"
        ".run(sockets=[s])\n"
    )
    return [sys.executable, "-c", code]


def _read_response(sock: socket.socket, buf: bytearray) -> bytes:
    """One response off ``sock`` (Content-Length framed); ``buf`` keeps what follows."""
    while True:
        end = buf.find(b"\r\n\r\n")
        if end >= 0:
            head = bytes(buf[:end])
            n = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
            total = end + 4 + n
            if len(buf) >= total:
                body = bytes(buf[end + 4 : total])
                if not head.startswith(b"HTTP/1.1 200"):
                    raise RuntimeError(f"{head[:60]!r}: {body[:200]!r}")
                del buf[:total]
                return body
        chunk = sock.recv(1 << 20)
        if not chunk:
            raise RuntimeError("connection closed")
        buf += chunk


def _pct(samples: list[float]) -> dict[str, float]:
    a = np.array(samples) * 1e6
    return {
        p: round(float(np.percentile(a, q)), 1)
        for p, q in (("p50", 50), ("p95", 95), ("p99", 99), ("max", 100))
    }


def latency(
    port: int, pid: int, make: Callable[[], bytes], n: int, check: Callable[[bytes], None]
) -> dict[str, object]:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buf = bytearray()
    for _ in range(min(500, n)):  # warm-up
        sock.sendall(make())
        check(_read_response(sock, buf))
    reqs = [make() for _ in range(n)]
    out = []
    cpu0, t0 = cpu_seconds(pid), time.perf_counter()
    for r in reqs:
        t = time.perf_counter()
        sock.sendall(r)
        _read_response(sock, buf)
        out.append(time.perf_counter() - t)
    wall = time.perf_counter() - t0
    cpu = cpu_seconds(pid) - cpu0
    sock.close()
    return {
        "us": _pct(out),
        "req_per_s": round(n / wall),
        "server_cpu_s": round(cpu, 2),
        "server_cpu_us_per_req": round(cpu / n * 1e6, 1),
    }


def throughput(port: int, pid: int, make: Callable[[], bytes], n: int, c: int) -> dict[str, object]:
    """``c`` connections, each sending its next request when its response arrived."""
    sel = selectors.DefaultSelector()
    conns = []
    for _ in range(c):
        s = socket.create_connection(("127.0.0.1", port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.setblocking(False)
        conns.append(s)
    reqs = [make() for _ in range(n + c)]
    state: dict[socket.socket, list[object]] = {}
    sent = 0
    lat: list[float] = []
    cpu0, t0, mine0 = cpu_seconds(pid), time.perf_counter(), time.process_time()
    for s in conns:
        s.sendall(reqs[sent])
        state[s] = [bytearray(), time.perf_counter()]
        sent += 1
        sel.register(s, selectors.EVENT_READ)
    done = 0
    while done < n:
        for key, _ in sel.select():
            s = key.fileobj
            assert isinstance(s, socket.socket)
            buf, started = state[s]
            assert isinstance(buf, bytearray) and isinstance(started, float)
            buf += s.recv(1 << 20)
            while True:
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    break
                m = re.search(rb"(?i)content-length: *(\d+)", bytes(buf[:end]))
                assert m is not None
                total = end + 4 + int(m.group(1))
                if len(buf) < total:
                    break
                del buf[:total]
                now = time.perf_counter()
                lat.append(now - started)
                done += 1
                if sent < len(reqs):
                    s.send(reqs[sent])
                    sent += 1
                    state[s][1] = now
    wall = time.perf_counter() - t0
    cpu = cpu_seconds(pid) - cpu0
    mine = time.process_time() - mine0
    for s in conns:
        s.close()
    return {
        "concurrency": c,
        "req_per_s": round(done / wall),
        "us": _pct(lat),
        "server_cpu_s": round(cpu, 2),
        "server_cpu_us_per_req": round(cpu / done * 1e6, 1),
        "client_cpu_us_per_req": round(mine / done * 1e6, 1),
    }


def run(root: Path, tmp: Path, entities: int, n_features: int, reads: int) -> dict[str, object]:
    """The serving benchmark over a materialised project (view ``fv``, features f0..)."""
    rnd = random.Random(7)
    feats = [f"fv:f{i}" for i in range(n_features)]

    def make() -> bytes:
        key = rnd.randrange(entities)
        body = json.dumps({"features": feats, "entities": {"customer_id": [key]}}).encode()
        return request_bytes(body)

    def check(body: bytes) -> None:
        out = json.loads(body)
        assert out["results"][1]["statuses"] == ["PRESENT"], out["results"][1]

    report: dict[str, object] = {}
    serve = [sys.executable, "-m", "lockgate", "features", "serve", "--port", "0", "-p", str(root)]
    for name, cmd in (("null", null_server_cmd(tmp)), ("lockgate", serve)):
        with server(cmd) as (port, pid):
            ok = check if name == "lockgate" else (lambda b: None)
            report[f"{name}_c1"] = latency(port, pid, make, reads, ok)
            for c in (4, 16):
                report[f"{name}_c{c}"] = throughput(port, pid, make, reads * 2, c)
    return report
