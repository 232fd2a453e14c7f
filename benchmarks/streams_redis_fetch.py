"""Redis fetch alone: the consumer's CPU and the Redis server's CPU per event, reading with
the Lua script (the default) and with the plain ``XREADGROUP`` reply:

    .venv/bin/python benchmarks/streams_redis_fetch.py --events 200000 --batch 10000
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import redis
import streams_bench as sb

from lockgate.streams.config import RedisStreamSource
from lockgate.streams.sources import RedisConsumer


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--batch", type=int, default=10_000)
    a = ap.parse_args()
    name = "lg-bench-fetch-" + uuid.uuid4().hex[:8]
    client = redis.Redis()
    data = sb.payloads(a.events)
    for k in range(0, len(data), 10_000):
        pipe = client.pipeline(transaction=False)
        for p in data[k : k + 10_000]:
            pipe.xadd(name, {"data": p})
        pipe.execute()

    def server_cpu() -> float:
        info = client.info("cpu")
        return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])

    try:
        for script in (False, True, False, True):
            consumer = RedisConsumer(RedisStreamSource(type="redis", stream=name))
            if not script:
                consumer._script = None
            consumer.seek({0: -1})
            s0, c0, w0, n = server_cpu(), time.process_time(), time.perf_counter(), 0
            while True:
                batch = consumer.fetch(a.batch, 0.01)
                if not len(batch):
                    break
                n += len(batch)
            cpu, wall, srv = time.process_time() - c0, time.perf_counter() - w0, server_cpu() - s0
            consumer.close()
            print(
                f"{'Lua script' if script else 'XREADGROUP'}: {n} events in {wall:.2f} s; "
                f"client CPU {cpu / n * 1e6:.2f} µs per event, Redis server CPU "
                f"{srv / n * 1e6:.2f} µs per event"
            )
    finally:
        client.delete(name)
        client.close()


if __name__ == "__main__":
    main()
