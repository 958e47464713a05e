"""Prometheus endpoint: the latest record of a run as per-stream gauges and counters.

A sink like the others (``--metrics-port PORT`` or ``--sink prometheus://HOST:PORT``): every published record
updates an in-memory snapshot, and a scrape renders that snapshot, so the values a scrape returns are exactly
those of the latest metrics record (and the alert states of the latest alert events) — nothing is recomputed.
The HTTP server is prometheus-client's, on its own registry (two runs in one process do not share series),
bound to 127.0.0.1 unless a host is given: metrics of a face-analysis run are not for the whole network by
default.

Names follow Prometheus conventions: the ``streameval_`` prefix, base units as suffixes (``_seconds``,
``_ratio``), ``_total`` for counters. Every series carries ``stream_id``. Window values (rates, means) are
gauges; the stream's cumulative counts (frames decoded and dropped, records published) are counters. A value
the record leaves undefined (``null``) is left out of the scrape rather than exported as NaN.

| series | labels | from the metrics record |
|---|---|---|
| ``streameval_leak_rate_ratio`` | recogniser | ``deid.<recogniser>.leak_rate`` |
| ``streameval_swap_rate_ratio`` | recogniser | ``deid.<recogniser>.swap_rate`` |
| ``streameval_distance_to_a_mean`` | recogniser | ``deid.<recogniser>.dist_a_mean`` |
| ``streameval_leak_rate_at_source_ratio`` | recogniser | ``deid.<recogniser>.at_source.leak_rate`` |
| ``streameval_deid_face_missing_ratio`` | | ``deid.deid_face_missing_rate`` |
| ``streameval_leak_open_pairs`` | | ``deid.leak_open_pairs`` |
| ``streameval_au_pcc_mean`` / ``_ccc_mean`` / ``_rmse_mean`` | | ``expression.pcc_mean`` ... |
| ``streameval_fid`` | | ``reality.fid`` (window) |
| ``streameval_pixel_psnr_decibels`` / ``streameval_pixel_ssim`` | | ``pixel.psnr_mean`` / ``ssim_mean`` |
| ``streameval_face_coverage_ratio`` | side | ``coverage.source`` / ``coverage.deid`` |
| ``streameval_lag_seconds`` / ``streameval_lag_max_seconds`` | | ``health.lag_s`` / ``lag_max_s`` |
| ``streameval_lag_p99_seconds`` | | ``health.lag_p99_s`` |
| ``streameval_window_pairs`` | kind | ``health.paired`` / ``unpaired_source`` / ``unpaired_deid`` |
| ``streameval_window_dropped_pairs`` | lane | ``health.dropped_by_analyser`` |
| ``streameval_analyses_per_second`` | lane | ``health.analysis_rate`` |
| ``streameval_stream_time_seconds`` | | ``window.end`` |
| ``streameval_frames_decoded_total`` / ``_dropped_total`` | side | ``health.<side>_stream.decoded`` / ``dropped`` |
| ``streameval_alert_active`` | rule, severity | 1 after a ``raise`` event, 0 after ``clear`` |
| ``streameval_records_total`` | type | records published to this sink |
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

from streameval.errors import MissingExtraError, UsageError
from streameval.sinks.base import Record, finite

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
PREFIX = "streameval_"


@dataclass(frozen=True, slots=True)
class PrometheusSettings:
    host: str = DEFAULT_HOST
    port: int = 9108  # a free slot in Prometheus's default port allocation list

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise UsageError(f"metrics port must be in 0..65535, got {self.port}")

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_prometheus_url(url: str) -> PrometheusSettings:
    """``prometheus://HOST:PORT`` (or ``prometheus://:PORT``, host 127.0.0.1) as settings."""
    parts = urlsplit(url)
    if parts.scheme != "prometheus":
        raise UsageError(f"not a prometheus:// URL: {url!r}")
    if parts.username or parts.password or parts.path not in ("", "/") or parts.query or parts.fragment:
        raise UsageError("a prometheus sink URL is prometheus://HOST:PORT, nothing else")
    try:
        port = parts.port
    except ValueError as exc:
        raise UsageError(f"prometheus sink URL: {exc}") from exc
    if port is None:
        raise UsageError("a prometheus sink URL needs a port: prometheus://HOST:PORT")
    return PrometheusSettings(parts.hostname or DEFAULT_HOST, port)


def parse_metrics_port(value: str) -> PrometheusSettings:
    """``--metrics-port``: ``PORT`` (on 127.0.0.1) or ``HOST:PORT``."""
    host, sep, port = value.rpartition(":")
    if not port.isdigit():
        raise UsageError(f"--metrics-port takes PORT or HOST:PORT, got {value!r}")
    host = host.strip("[]") if sep else DEFAULT_HOST
    return PrometheusSettings(host or DEFAULT_HOST, int(port))


Sample = tuple[dict[str, str], float]  # labels (without stream_id), value


@dataclass(frozen=True, slots=True)
class Family:
    name: str
    kind: str  # "gauge" | "counter"
    help: str
    samples: tuple[Sample, ...]


def _recognisers(deid: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """(recogniser label, its block) for each recogniser of a ``deid`` block; the block itself when it holds
    a single recogniser's values at its top level."""
    # ``at_source`` is the top-level recogniser's second path, not a recogniser
    nested = [(key, v) for key, v in deid.items() if isinstance(v, Mapping) and "leak_rate" in v and key != "at_source"]
    if nested:
        return nested
    return [(str(deid.get("recogniser", "default")), deid)] if "leak_rate" in deid else []


def families_from_metrics(record: Record) -> list[Family]:
    """The gauges and counters one metrics record defines (pure: the tests check it against records)."""
    out: list[Family] = []

    def add(name: str, kind: str, text: str, samples: list[tuple[dict[str, str], object]]) -> None:
        kept = tuple((labels, v) for labels, raw in samples if (v := finite(raw)) is not None)
        if kept:
            out.append(Family(PREFIX + name, kind, text, kept))

    def get(block: object, key: str) -> object:
        return block.get(key) if isinstance(block, Mapping) else None

    deid = record.get("deid")
    if isinstance(deid, Mapping):
        recs = _recognisers(deid)
        add("leak_rate_ratio", "gauge", "Share of analysed pairs whose de-identified face is verified as A (window)",
            [({"recogniser": k}, b.get("leak_rate")) for k, b in recs])  # fmt: skip
        add("swap_rate_ratio", "gauge", "Share of analysed pairs whose de-identified face is verified as B (window)",
            [({"recogniser": k}, b.get("swap_rate")) for k, b in recs])  # fmt: skip
        add("distance_to_a_mean", "gauge", "Mean distance of the de-identified face to reference A (window)",
            [({"recogniser": k}, b.get("dist_a_mean")) for k, b in recs])  # fmt: skip
        add("leak_rate_at_source_ratio", "gauge",
            "Share of pairs verified as A at the source face's location (window)",
            [({"recogniser": k}, get(b.get("at_source"), "leak_rate")) for k, b in recs])  # fmt: skip
        add("deid_face_missing_ratio", "gauge",
            "Share of pairs with a source face where no de-identified face was detected (window)",
            [({}, deid.get("deid_face_missing_rate"))])  # fmt: skip
        add("leak_open_pairs", "gauge", "Verified pairs of the leak event open at the window's end (0: none)",
            [({}, deid.get("leak_open_pairs"))])  # fmt: skip
    expression = record.get("expression")
    for stat, text in (("pcc", "Pearson correlation"), ("ccc", "concordance correlation"), ("rmse", "RMSE")):
        add(f"au_{stat}_mean", "gauge", f"Mean over action units of the per-AU {text} of the two streams (window)",
            [({}, get(expression, f"{stat}_mean"))])  # fmt: skip
    add("fid", "gauge", "Frechet distance of the I3D features of both streams' face clips (window)",
        [({}, get(record.get("reality"), "fid"))])  # fmt: skip
    pixel = record.get("pixel")
    add("pixel_psnr_decibels", "gauge", "Mean PSNR of the de-identified against the source pixels (window)",
        [({}, get(pixel, "psnr_mean"))])  # fmt: skip
    add("pixel_ssim", "gauge", "Mean SSIM of the de-identified against the source luma (window)",
        [({}, get(pixel, "ssim_mean"))])  # fmt: skip
    coverage = record.get("coverage")
    add("face_coverage_ratio", "gauge", "Share of analysed frames with a face (window)",
        [({"side": side}, get(coverage, side)) for side in ("source", "deid")])  # fmt: skip
    health = record.get("health")
    add("lag_seconds", "gauge", "Wall-clock lag of analysis behind frame arrival (window mean)",
        [({}, get(health, "lag_s"))])  # fmt: skip
    add("lag_max_seconds", "gauge", "Largest lag of analysis behind frame arrival (window)",
        [({}, get(health, "lag_max_s"))])  # fmt: skip
    add("lag_p99_seconds", "gauge", "99th percentile of the lag of analysis behind frame arrival (window)",
        [({}, get(health, "lag_p99_s"))])  # fmt: skip
    add("window_pairs", "gauge", "Frames paired or left unpaired in the window",
        [({"kind": k}, get(health, k)) for k in ("paired", "unpaired_source", "unpaired_deid")])  # fmt: skip
    for key, name, text in (
        ("dropped_by_analyser", "window_dropped_pairs", "Pairs an analysis lane dropped in the window"),
        ("analysis_rate", "analyses_per_second", "Analyses per second of stream time in the window, per lane"),
    ):
        block = get(health, key)
        lanes = sorted(block.items()) if isinstance(block, Mapping) else []
        add(name, "gauge", text, [({"lane": str(lane)}, v) for lane, v in lanes])
    window = record.get("window")
    add("stream_time_seconds", "gauge", "Stream time at the end of the latest window", [({}, get(window, "end"))])
    for field, text in (("decoded", "Frames decoded"), ("dropped", "Frames dropped by the source")):
        add(f"frames_{field}_total", "counter", f"{text} since the start of the stream",
            [({"side": side}, get(get(health, f"{side}_stream"), field)) for side in ("source", "deid")])  # fmt: skip
    return out


class RecordCollector:
    """prometheus-client collector over the latest records (thread-safe: scrapes come from the server thread)."""

    def __init__(self, stream_id: str) -> None:
        self.stream_id = stream_id
        self._lock = threading.Lock()
        self._metrics: list[Family] = []
        self._alerts: dict[tuple[str, str], float] = {}
        self._records: Counter[str] = Counter()

    def update(self, record: Record) -> None:
        kind = str(record.get("type", "unknown"))
        with self._lock:
            self._records[kind] += 1
            if kind == "metrics":
                self._metrics = families_from_metrics(record)
            elif kind == "alert" and record.get("event") in ("raise", "clear"):
                key = (str(record.get("rule")), str(record.get("severity")))
                self._alerts[key] = 1.0 if record.get("event") == "raise" else 0.0

    def snapshot(self) -> list[Family]:
        with self._lock:
            families = list(self._metrics)
            if self._alerts:
                families.append(Family(PREFIX + "alert_active", "gauge", "1 while an alert rule is raised, else 0",
                    tuple(({"rule": r, "severity": s}, v) for (r, s), v in sorted(self._alerts.items()))))  # fmt: skip
            families.append(Family(PREFIX + "records_total", "counter", "Records published, by type",
                tuple(({"type": t}, float(n)) for t, n in sorted(self._records.items()))))  # fmt: skip
        return families

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        for fam in self.snapshot():
            names = ["stream_id", *sorted({k for labels, _ in fam.samples for k in labels})]
            if fam.kind == "counter":
                metric: Any = CounterMetricFamily(fam.name.removesuffix("_total"), fam.help, labels=names)
            else:
                metric = GaugeMetricFamily(fam.name, fam.help, labels=names)
            for labels, value in fam.samples:
                metric.add_metric([self.stream_id, *(labels.get(n, "") for n in names[1:])], value)
            yield metric


@dataclass(slots=True)
class PrometheusStats:
    """What the report's ``sinks`` block says about this sink."""

    endpoint: str  # http://HOST:PORT/metrics, the bound port
    written: int = 0  # records taken into the snapshot


class PrometheusSink:
    """Serves the run's latest values for Prometheus to scrape, from ``__aenter__`` to ``__aexit__``."""

    def __init__(self, settings: PrometheusSettings, *, stream_id: str = "default") -> None:
        self.settings = settings
        self.collector = RecordCollector(stream_id)
        self.stats = PrometheusStats(f"http://{settings.address}/metrics")
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound port (the configured one, or the one the system chose for port 0)."""
        return int(self._server.server_address[1]) if self._server is not None else self.settings.port

    async def __aenter__(self) -> Self:
        try:
            from prometheus_client import CollectorRegistry, start_http_server
        except ImportError as exc:
            raise MissingExtraError("prometheus", "prometheus-client", "serving Prometheus metrics") from exc
        registry = CollectorRegistry(auto_describe=False)
        registry.register(self.collector)
        try:
            self._server, self._thread = start_http_server(
                self.settings.port, addr=self.settings.host, registry=registry
            )
        except OSError as exc:
            raise UsageError(
                f"cannot serve Prometheus metrics on {self.settings.address}: {exc.strerror or exc}"
            ) from exc
        self.stats.endpoint = f"http://{PrometheusSettings(self.settings.host, self.port).address}/metrics"
        log.info("Prometheus metrics on %s", self.stats.endpoint)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    async def publish(self, record: Record) -> None:
        self.collector.update(record)
        self.stats.written += 1
