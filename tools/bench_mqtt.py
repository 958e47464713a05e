"""Throughput of MqttSink against a local mosquitto, written to the MQTT section of BENCHMARKS.md.

Run from the repository root: ``python tools/bench_mqtt.py [--records 5000]``. Starts its own broker on a free
loopback port (needs the mosquitto binary). Measures: the cost of one ``publish`` call (encode + enqueue) and
end-to-end records per second until a subscriber has received them all, for QoS 0 and 1.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from streameval.sinks.mqtt import MqttSink, parse_mqtt_url  # noqa: E402
from tests.mqtt_broker import Mosquitto, Subscriber, find_mosquitto, free_port  # noqa: E402
from tools.bench_md import write_section  # noqa: E402


def record(seq: int) -> dict[str, Any]:
    """A metric record of realistic size (~1 KB of JSON): 17 AUs, identity and health blocks."""
    aus = {f"AU{n:02d}": {"pcc": 0.5 + seq % 7 / 100, "rmse": 0.31, "ccc": 0.44, "n": 25} for n in range(17)}
    return {
        "type": "metrics",
        "stream_id": "bench",
        "seq": seq,
        "window": {"start": seq * 0.5, "end": seq * 0.5 + 5.0},
        "deid": {"leak_rate": 0.02, "swap_rate": 0.9, "dist_a_mean": 0.71, "dist_a_std": 0.05, "n": 50},
        "expression": {"pcc_mean": 0.61, "per_au": aus},
        "reality": {"fid": 21.4, "low_n": False},
        "coverage": {"source": 0.98, "deid": 0.97},
        "health": {"lag_s": 0.12, "dropped": 0},
    }


async def run(broker: Mosquitto, qos: int, n: int) -> tuple[float, float]:
    settings = parse_mqtt_url(broker.url(f"bench?qos={qos}"))
    async with Subscriber(broker, "bench/#") as sub, MqttSink(settings, stream_id="bench", buffer_size=n) as sink:
        while not sink.stats.connected:
            await asyncio.sleep(0.01)
        records = [record(i) for i in range(n)]
        start = time.perf_counter()
        for r in records:
            await sink.publish(r)
        enqueue = time.perf_counter() - start
        while len(sub.on("/metrics")) < n:
            await asyncio.sleep(0.001)
        total = time.perf_counter() - start
    return enqueue / n * 1e6, n / total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=5000)
    args = parser.parse_args()
    binary = find_mosquitto()
    if binary is None:
        sys.exit("mosquitto not installed")
    with tempfile.TemporaryDirectory() as tmp:
        broker = Mosquitto(binary, Path(tmp), free_port())
        broker.start()
        try:
            rows = [(qos, *asyncio.run(run(broker, qos, args.records))) for qos in (0, 1)]
        finally:
            broker.stop()
    lines = [
        "## MQTT sink (tools/bench_mqtt.py)",
        "",
        f"`python tools/bench_mqtt.py --records {args.records}` on {platform.processor() or platform.machine()}, "
        f"{platform.system()} {platform.release()}, {os.cpu_count()} cores shared (load average "
        f"{os.getloadavg()[0]:.1f}), Python {platform.python_version()}, local mosquitto (loopback), one subscriber "
        "in the same process, ~1 KB metric records. One message in flight at a time (QoS 1 waits for each PUBACK).",
        "",
        "| QoS | publish() call (µs, encode + enqueue) | end-to-end (records/s, until all received) |",
        "|---|---|---|",
        *(f"| {qos} | {us:.1f} | {rate:.0f} |" for qos, us, rate in rows),
    ]
    section = "\n".join(lines)
    print(section)
    write_section("bench_mqtt", section, path=REPO / "BENCHMARKS.md")


if __name__ == "__main__":
    main()
