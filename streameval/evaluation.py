"""One evaluation run, assembled from a :class:`~streameval.config.RunConfig`: the Python API behind the CLI.

``await evaluate(config)`` opens both sources, builds the analysers and metric families the config names, runs
the pipeline, publishes records to every sink and returns the final report (also written to ``config.report``).
The de-identified stream is decoded at the source's resolution (rescaled once, at decode): every analyser
then sees two frames of one size. A live source's resolution is known only once it connects; until then the
de-identified frames arrive at their own size (the pixel family resizes such pairs itself and logs it).
The report is written whatever happens once frames have started to flow — end of stream, a stop request
(SIGINT/SIGTERM in the CLI), a truncated input or a failure — so nothing measured is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Any

from streameval import __version__
from streameval.alerts import AlertEngine, parse_rules
from streameval.analysis.base import Analyser
from streameval.config import PATH_OPTIONS, MqttTable, RunConfig
from streameval.errors import ConfigError, InputError, SinkError
from streameval.families import FAMILIES, face_stage, needs_face_stage, new_run, shared_metrics
from streameval.metrics.base import Metric
from streameval.metrics.health import HealthMetric
from streameval.outputs import check_frames_output, check_outputs, write_report
from streameval.pairing import Pairer, PairingConfig
from streameval.paper import paper_block
from streameval.pipeline import PairStage, Pipeline, PipelineConfig, RunResult
from streameval.redact import redact, redact_strings
from streameval.sinks.base import SCHEMA_VERSION, Record, Sink
from streameval.sinks.jsonl import JsonLinesSink
from streameval.sources import VideoSource, open_source
from streameval.threads import numeric_threads
from streameval.windows import WindowConfig, Windower

log = logging.getLogger(__name__)


def build_families(config: RunConfig) -> tuple[list[Analyser], list[Metric], PairStage | None]:
    """The run's analysers and metrics, and the face stage when any analyser needs faces."""
    new_run()
    analysers: list[Analyser] = []
    metrics: list[Metric] = []
    for name in config.metrics:
        if name not in FAMILIES:
            raise ConfigError(f"metrics: unknown family {name!r}; choose from {', '.join(sorted(FAMILIES))}")
        a, m = FAMILIES[name](config)
        analysers += a
        metrics += m
    metrics += shared_metrics(analysers, config)
    stage = face_stage(config) if needs_face_stage(analysers) else None
    names = {a.name for a in analysers} | ({stage.name} if stage is not None else set())
    for analyser_name in config.rate:
        if analyser_name not in names:
            raise ConfigError(f"rate.{analyser_name}: no such analyser in this run (have: {', '.join(sorted(names))})")
    return analysers, metrics, stage


def _frame_size(src: VideoSource) -> tuple[int, int] | None:
    """(width, height) of an open source's frames; None before a live source connects or if its codec hides it."""
    info = src.info
    if info is None or info.width <= 0 or info.height <= 0:
        return None
    return info.width, info.height


async def _match_size(source: VideoSource, deid: VideoSource) -> None:
    """Rescale the de-identified frames to the source's size once the (live) source has connected."""
    try:
        await source.ready()
    except InputError:
        return  # the source never opened: the pipeline reports that
    size = _frame_size(source)
    if size is not None:
        deid.set_size(size)
        log.info("%s: rescaling de-identified frames to %dx%d at decode", deid.spec.spec, *size)


def _source_health(sources: dict[str, VideoSource]) -> Callable[[], dict[str, Any]]:
    def snapshot() -> dict[str, Any]:
        out: dict[str, Any] = {}
        for side, src in sources.items():
            s = src.stats
            out[f"{side}_stream"] = {
                "decoded": s.frames_decoded,
                "dropped": s.frames_dropped,
                "reconnects": s.reconnects,
                "stalls": s.stalls,
                "gap_s": s.gap_seconds,
                "errors": s.errors,
            }
        return out

    return snapshot


def _stream_summary(src: VideoSource) -> dict[str, Any]:
    info = src.info
    stats = src.stats
    summary: dict[str, Any] = {"spec": src.spec.spec, "live": src.live}
    if info is not None:
        summary["info"] = {k: (str(v) if k == "time_base" and v is not None else v) for k, v in asdict(info).items()}
    if src.size is not None:
        summary["rescaled_to"] = list(src.size)  # frames were decoded at this (width, height), not info's
    summary["stats"] = asdict(stats)
    return summary


async def evaluate(
    config: RunConfig,
    *,
    sinks: list[Sink] | None = None,
    stop: asyncio.Event | None = None,
    hurry: asyncio.Event | None = None,
    on_record: Callable[[Record], Awaitable[None] | None] | None = None,
    on_metrics: Callable[[list[Metric]], None] | None = None,
) -> dict[str, Any]:
    """Run one evaluation and return its report. ``stop`` ends the run early (the report is still complete);
    ``hurry`` (a second interrupt) also stops waiting for sinks that cannot deliver (a broker that is down).

    ``on_metrics`` sees the run's metric families once the report is built, e.g. to keep their whole-stream
    statistics for merging across videos (``streameval batch``).
    """
    if not config.source or not config.deid:
        raise ConfigError("both a source and a de-identified stream are needed (SOURCE DEID, or source/deid keys)")
    check_outputs(config.log if config.log is not None else None, config.report, run_inputs(config))
    if config.frames is not None:
        if "expression" not in config.metrics:
            raise ConfigError("--frames writes the expression family's AUs: add expression to --metrics")
        check_frames_output(config.frames, config.log, config.report, run_inputs(config))
    analysers, metrics, stage = build_families(config)
    windows = WindowConfig(window=config.window, hop=config.hop)
    # Sinks are built (not connected) before any input is opened, so a bad URL or stream id fails first.
    configured_sinks: list[Sink] = [*build_sinks(config), *(sinks or [])]
    started = time.time()

    async with contextlib.AsyncExitStack() as stack:
        stack.enter_context(numeric_threads())  # after build_families: every numeric library is loaded by now
        streams: dict[str, VideoSource] = {}
        for side, spec in (("source", config.source), ("deid", config.deid)):
            src = open_source(
                spec,
                live=config.live,  # replay reads even a URL as a finite recording: no reconnects, no drops
                realtime=config.realtime,
                read_timeout=config.read_timeout,
                reconnect=config.reconnect,
                give_up_after=config.give_up_after,
                size=_frame_size(streams["source"]) if side == "deid" else None,
            )
            streams[side] = await stack.enter_async_context(src)
        if streams["deid"].size is None:  # a live source that has not connected yet: size the deid when it does
            sizing = asyncio.create_task(_match_size(streams["source"], streams["deid"]), name="se-deid-size")
            stack.callback(sizing.cancel)

        tolerance = config.tolerance
        if tolerance is None:
            fps = streams["source"].info.fps if streams["source"].info else None
            tolerance = 0.5 / fps if fps else 0.02
        pairer = Pairer(
            PairingConfig(
                mode=config.pair,
                offset=config.offset,
                tolerance=tolerance,
                index_offset=config.index_offset,
                max_pending=config.max_pending,
            )
        )
        health = HealthMetric(config.window)
        windower = Windower([*metrics, health], windows, stream_id=config.stream_id)
        # The sinks get their own stack: the end of the run closes them explicitly, after the report is safe.
        sink_stack = contextlib.AsyncExitStack()
        stack.push_async_callback(sink_stack.aclose)  # only does something if the run ends before that
        all_sinks: list[Sink] = []
        if config.log is not None:
            all_sinks.append(await sink_stack.enter_async_context(JsonLinesSink(config.log)))
        for sink in configured_sinks:
            all_sinks.append(await sink_stack.enter_async_context(sink))
        alerts = AlertEngine(parse_rules(config.alerts))
        alert_log: list[dict[str, Any]] = []

        def follow_up(record: Record) -> list[dict[str, Any]]:
            events = alerts.evaluate(record) if record.get("type") == "metrics" else []
            alert_log.extend(events)
            return events

        pipeline = Pipeline(
            source=streams["source"],
            deid=streams["deid"],
            pairer=pairer,
            analysers=analysers,
            windower=windower,
            sinks=all_sinks,
            config=PipelineConfig(live=config.live, policy=config.effective_policy, queue_size=config.queue_size),
            extra_health=_source_health(streams),
            on_record=on_record,
            follow_up=follow_up,
            face_stage=stage,
        )
        watchers = []
        if stop is not None:
            watchers.append(asyncio.create_task(_stop_when(stop, pipeline), name="se-stop-watcher"))
        if hurry is not None:
            watchers.append(asyncio.create_task(_abandon_when(hurry, all_sinks), name="se-hurry-watcher"))
            stack.callback(watchers[-1].cancel)
        result: RunResult | None = None
        failure: BaseException | None = None
        try:
            result = await pipeline.run()
        except (Exception, asyncio.CancelledError) as exc:  # still write what was measured, then re-raise
            failure = exc
        finally:
            if watchers and stop is not None:
                watchers[0].cancel()

        at_end = alerts.close()
        report = build_report(config, windower, pairer, streams, result, failure, started, tolerance)
        if pipeline.budget is not None:
            report["budget"] = pipeline.budget.as_dict()
        if on_metrics is not None:
            on_metrics(list(windower.metrics))
        report["alerts"] = {
            "rules": [rule.name for rule in alerts.rules],
            "events": alert_log,
            "active_at_end": at_end,
        }
        report["sinks"] = [{"type": type(s).__name__, **_sink_stats(s)} for s in all_sinks]
        report = dict(redact_strings(report))
        # The report file first, whatever the sinks do next (a full disk, a broker that is down, a second ^C).
        output_errors: list[SinkError] = []
        written = False
        if config.report:
            try:
                write_report(config.report, report)
                written = True
                log.info("report written to %s", config.report)
            except SinkError as exc:
                output_errors.append(exc)
        if config.frames is not None:  # --frames: every analysed pair's rows, whatever the run's status
            from streameval.analysis.expression import write_frame_rows

            try:
                write_frame_rows(config.frames, analysers)
            except SinkError as exc:
                output_errors.append(exc)
        # Then every sink gets the end-of-run alerts and the report record; one that fails does not stop the others.
        for event in at_end:
            await _publish_each(all_sinks, redact_strings(event), output_errors)
        published = {
            **report,
            "sinks": redact_strings([{"type": type(s).__name__, **_sink_stats(s)} for s in all_sinks]),
        }
        await _publish_each(all_sinks, published, output_errors)
        try:
            await sink_stack.aclose()
        except SinkError as exc:
            output_errors.append(exc)
        # The file gets the sinks' final counts, taken after they closed (records abandoned at close included);
        # standard output got the report once and cannot take it back.
        report["sinks"] = redact_strings([{"type": type(s).__name__, **_sink_stats(s)} for s in all_sinks])
        if written and config.report is not None and config.report != "-":
            try:
                write_report(config.report, report)
            except SinkError as exc:
                output_errors.append(exc)
        # One error ends the run (the first thing that went wrong); the others are logged, not lost.
        first: BaseException | None = failure or _broken_inputs_error(streams, report if written else {})
        for error in output_errors:
            if first is None:
                first = error
            elif error is not first and str(error) != str(first):
                log.error("%s", error)
        if first is not None:
            raise first
        return report


async def _publish_each(sinks: list[Sink], record: Record, errors: list[SinkError]) -> None:
    for sink in sinks:
        try:
            await sink.publish(record)
        except SinkError as exc:
            errors.append(exc)


async def _abandon_when(hurry: asyncio.Event, sinks: list[Sink]) -> None:
    await hurry.wait()
    for sink in sinks:
        abandon = getattr(sink, "abandon", None)
        if callable(abandon):
            abandon()


def run_inputs(config: RunConfig) -> list[tuple[str, str]]:
    """Every file the run reads, by role: outputs must never overwrite one of them."""
    inputs = [("source", config.source or ""), ("de-identified input", config.deid or "")]
    for section, key in PATH_OPTIONS:
        value = config.options.get(section, {}).get(key)
        if isinstance(value, str):
            inputs.append((f"[{section}] {key}", value))
    return inputs


def build_sinks(config: RunConfig) -> list[Sink]:
    """The sinks named by ``--sink`` URLs and the ``[mqtt]`` table (the JSON Lines log is added separately)."""
    sinks: list[Sink] = []
    table = config.options.get("mqtt", {})
    buffer_size = config.table(MqttTable).buffer_size
    urls = [url for url in config.sink if not url.startswith("prometheus://")]
    scrape = [url for url in config.sink if url.startswith("prometheus://")]
    if scrape or config.metrics_port is not None:
        from streameval.sinks.prometheus import PrometheusSink, parse_metrics_port, parse_prometheus_url

        endpoints = [parse_prometheus_url(url) for url in scrape]
        if config.metrics_port is not None:
            endpoints.append(parse_metrics_port(config.metrics_port))
        sinks += [PrometheusSink(e, stream_id=config.stream_id) for e in endpoints]
    if urls or table:
        from streameval.sinks.mqtt import MqttSink
        from streameval.sinks.mqtt_settings import parse_mqtt_url, settings_from_config

        settings = [parse_mqtt_url(url) for url in urls]
        if table:
            settings.append(settings_from_config(table))
        sinks += [MqttSink(s, stream_id=config.stream_id, buffer_size=buffer_size) for s in settings]
    return sinks


def _sink_stats(sink: Sink) -> Any:
    stats = getattr(sink, "stats", None)
    if stats is not None and dataclasses.is_dataclass(stats) and not isinstance(stats, type):
        return dataclasses.asdict(stats)
    return {"written": getattr(sink, "written", None)}


async def _stop_when(stop: asyncio.Event, pipeline: Pipeline) -> None:
    await stop.wait()
    pipeline.request_stop()


def _input_problems(streams: dict[str, VideoSource]) -> list[tuple[str, str]]:
    """(end reason, sentence) for every input that did not end cleanly."""
    problems: list[tuple[str, str]] = []
    for side, src in streams.items():
        stats = src.stats
        if stats.end_reason in ("truncated", "error", "gave_up"):
            detail = f": {stats.last_error}" if stats.last_error else ""
            problems.append(
                (
                    stats.end_reason,
                    f"{side} {src.spec.spec} ended early ({stats.end_reason} after {stats.frames_decoded} frames"
                    f"{detail})",
                )
            )
    return problems


def _broken_inputs_error(streams: dict[str, VideoSource], report: dict[str, Any]) -> InputError | None:
    """A truncated or failing input still yields a report, but the run must not look like a clean one."""
    problems = [text for _, text in _input_problems(streams)]
    if not problems:
        return None
    where = f"; report written to {report['report_path']}" if report.get("report_path") else ""
    return InputError(redact("; ".join(problems) + where))


def run_warnings(streams: dict[str, VideoSource], pairer: Pairer, result: RunResult | None) -> list[str]:
    """What makes a finished run's numbers doubtful although nothing failed; each is logged and reported."""
    warnings = []
    for side, src in streams.items():
        stats = src.stats
        if src.spec.kind == "file" and stats.frames_decoded == 1:
            warnings.append(f"{side} {src.spec.spec} is a still image (one frame), not a video")
        if stats.pts_resets:
            warnings.append(
                f"{side} {src.spec.spec}: timestamps went backwards {stats.pts_resets} time(s) (e.g. concatenated "
                "segments); each was treated as a new segment, like a gap in a live stream"
            )
    if result is not None and result.status != "failed" and pairer.counts.paired == 0:
        warnings.append("no frame pairs: nothing was compared (check --offset, --tolerance or --pair)")
    return warnings


def build_report(
    config: RunConfig,
    windower: Windower,
    pairer: Pairer,
    streams: dict[str, VideoSource],
    result: RunResult | None,
    failure: BaseException | None,
    started: float,
    tolerance: float,
) -> dict[str, Any]:
    from streameval.models.zoo import used_models  # here: the zoo's import loads numpy and the model code

    totals = windower.totals()
    status: str = result.status if result is not None else "failed"
    error = None if failure is None else f"{type(failure).__name__}: {failure}"
    problems = _input_problems(streams)
    if status == "complete" and problems:  # the pipeline ran to the end of what it got, but that was not all
        status = "truncated" if all(reason == "truncated" for reason, _ in problems) else "failed"
    if error is None and problems:
        error = "; ".join(text for _, text in problems)
    warnings = run_warnings(streams, pairer, result)
    for warning in warnings:
        log.warning("%s", warning)
    report: dict[str, Any] = {
        "schema": SCHEMA_VERSION,
        "type": "report",
        "stream_id": config.stream_id,
        "streameval_version": __version__,
        "status": status,
        "error": error,
        "warnings": warnings,
        "report_path": config.report,
        "started_at": started,
        "wall_s": time.time() - started,
        "stream": {
            "first_t": result.first_t if result else None,
            "last_t": result.last_t if result and result.last_t != float("-inf") else None,
            "records": result.records if result else 0,
        },
        "pairing": {
            **pairer.counts.as_dict(),
            "mode": config.pair,
            "offset_s": config.offset,
            "tolerance_s": tolerance,
        },
        "inputs": {side: _stream_summary(src) for side, src in streams.items()},
        "config": {
            "window_s": config.window,
            "hop_s": config.hop,
            "metrics": config.metrics,
            "rate": config.rate,
            "policy": config.effective_policy,
            "live": config.live,
        },
        "totals": totals,
        "models": used_models(),  # folder and sha256 of every model file the run loaded
    }
    paper = paper_block(windower.metrics)
    if paper is not None:
        report["paper"] = paper
    return report
