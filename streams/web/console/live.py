"""Live metrics for the overview charts: one sample a second, pushed over Server-Sent Events.

    GET /api/live            text/event-stream: `history` (recent samples), then one
                             `sample` event per second
    GET /api/live/samples    the recent samples as JSON (scripts, tests)

A sample has messages/s produced to the app's source topics (from their end offsets, so
every producer counts), messages/s processed by this worker, the group's lag on the source
topics (end offset minus committed offset, as `/api/groups/{group}` shows it), the mean
batch time, handler errors/s and dead letters/s. Sampling runs only while someone watches.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from datetime import UTC, datetime
from typing import Any, cast

from aiohttp import web
from aiokafka import TopicPartition
from prometheus_client import CollectorRegistry

from streams.web.console._http import Console, api, console_of

log = logging.getLogger(__name__)

INTERVAL_S = 1.0
HISTORY = 300
IDLE_STOP_S = 30.0


def registry_totals(registry: CollectorRegistry, names: set[str]) -> dict[str, float]:
    """Each sample name in `names` summed over its labels, from `registry`."""
    totals = dict.fromkeys(names, 0.0)
    for family in registry.collect():
        for sample in family.samples:
            if sample.name in totals:
                totals[sample.name] += sample.value
    return totals


_COUNTERS = {
    "streams_consumer_messages_total", "streams_consumer_batch_seconds_sum",
    "streams_consumer_batch_seconds_count", "streams_consumer_retries_total",
    "streams_consumer_dead_letters_total", "streams_producer_errors_total",
}


class LiveSampler:
    """Samples once a second while subscribers listen; keeps the last `HISTORY` samples."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.samples: deque[dict[str, Any]] = deque(maxlen=HISTORY)
        self._subscribers: set[asyncio.Queue[dict[str, Any]]] = set()
        self._task: asyncio.Task[None] | None = None
        self._previous: tuple[float, dict[str, float]] | None = None
        self._last_listener = time.monotonic()

    def subscribe(self) -> asyncio.Queue[dict[str, Any]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=60)
        self._subscribers.add(queue)
        self.ensure_running()
        return queue

    def unsubscribe(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        self._subscribers.discard(queue)
        self._last_listener = time.monotonic()

    def ensure_running(self) -> None:
        self._last_listener = time.monotonic()
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while not self.console.stopping.is_set():
            if not self._subscribers and time.monotonic() - self._last_listener > IDLE_STOP_S:
                return
            started = time.monotonic()
            try:
                sample = await self.sample()
            except Exception as exc:  # a broker hiccup must not end the charts
                log.debug("live sample failed: %r", exc)
                sample = {**_times(), "error": f"{type(exc).__name__}: {exc}"}
            self.samples.append(sample)
            for queue in list(self._subscribers):
                if queue.full():
                    queue.get_nowait()  # a slow browser gets the newest samples
                queue.put_nowait(sample)
            await asyncio.sleep(max(0.05, INTERVAL_S - (time.monotonic() - started)))

    async def _broker_numbers(self) -> tuple[float, dict[str, int]]:
        """(sum of the source topics' end offsets, lag per source topic)."""
        console = self.console
        topics = sorted({agent.topic for agent in console.app.batch_agents})
        if not topics:
            return 0.0, {}
        admin = await console.admin()
        described = await admin.describe_topics(topics)
        tps = [TopicPartition(t["topic"], p["partition"]) for t in described
               if t.get("error_code", 0) == 0 for p in t["partitions"]]
        ends = await (await console.offsets()).end_offsets(tps) if tps else {}
        committed = await admin.list_consumer_group_offsets(console.group_id, partitions=tps)
        lag = dict.fromkeys(topics, 0)
        for tp in tps:
            meta = committed.get(tp)
            done = meta.offset if meta is not None and meta.offset >= 0 else 0
            lag[tp.topic] += max(0, ends[tp] - done)
        return float(sum(ends.values())), lag

    async def sample(self) -> dict[str, Any]:
        now = time.monotonic()
        produced, lag = await self._broker_numbers()
        totals = registry_totals(self.console.app.metrics_registry, _COUNTERS)
        totals["produced"] = produced
        sample: dict[str, Any] = {
            **_times(), "lag": sum(lag.values()), "lag_by_topic": lag,
            "produced_total": int(produced),
            "processed_total": int(totals["streams_consumer_messages_total"]),
        }
        previous, self._previous = self._previous, (now, totals)
        if previous is None:
            sample.update(produced_per_s=0.0, processed_per_s=0.0, batch_ms=None,
                          errors_per_s=0.0, dead_letters_per_s=0.0)
            return sample
        elapsed = max(1e-3, now - previous[0])

        def rate(name: str) -> float:
            return round(max(0.0, totals[name] - previous[1][name]) / elapsed, 2)

        batches = totals["streams_consumer_batch_seconds_count"] - previous[1][
            "streams_consumer_batch_seconds_count"]
        batch_seconds = totals["streams_consumer_batch_seconds_sum"] - previous[1][
            "streams_consumer_batch_seconds_sum"]
        sample.update(
            produced_per_s=rate("produced"),
            processed_per_s=rate("streams_consumer_messages_total"),
            batch_ms=round(batch_seconds / batches * 1000, 3) if batches > 0 else None,
            errors_per_s=round(rate("streams_consumer_retries_total")
                               + rate("streams_producer_errors_total"), 2),
            dead_letters_per_s=rate("streams_consumer_dead_letters_total"),
        )
        return sample


def sampler_of(console: Console) -> LiveSampler:
    if console.live is None:
        console.live = LiveSampler(console)
    return cast(LiveSampler, console.live)


async def stream_live(request: web.Request) -> web.StreamResponse:
    console = console_of(request)
    sampler = sampler_of(console)
    queue = sampler.subscribe()
    response = web.StreamResponse(headers={
        "Content-Type": "text/event-stream", "Cache-Control": "no-cache",
        "X-Accel-Buffering": "no"})
    await response.prepare(request)
    try:
        history = json.dumps(list(sampler.samples))
        await response.write(f"event: history\ndata: {history}\n\n".encode())
        idle = 0.0
        while not console.stopping.is_set():  # checked each second: shutdown is not held up
            try:
                sample = await asyncio.wait_for(queue.get(), timeout=1.0)
            except TimeoutError:
                idle += 1.0
                if idle >= 5.0:
                    idle = 0.0
                    await response.write(b": keep-alive\n\n")
                continue
            idle = 0.0
            await response.write(f"event: sample\ndata: {json.dumps(sample)}\n\n".encode())
    except ConnectionResetError:
        pass  # the browser went away
    finally:
        sampler.unsubscribe(queue)
    return response


@api
async def get_samples(request: web.Request) -> web.Response:
    sampler = sampler_of(console_of(request))
    sampler.ensure_running()
    return web.json_response({"interval_s": INTERVAL_S, "samples": list(sampler.samples)})


def add_routes(router: web.UrlDispatcher, *, writes: bool) -> None:
    router.add_get("/api/live", stream_live)
    router.add_get("/api/live/samples", get_samples)


def _times() -> dict[str, Any]:
    """A sample's time: ISO 8601 (as every JSON answer gives times) and epoch seconds."""
    now = time.time()
    return {"time": datetime.fromtimestamp(now, UTC).isoformat(), "time_epoch": now}
