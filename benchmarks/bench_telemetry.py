"""Per-call cost of telemetry with four hooks, side by side in one run.

Variants (each in its own process: the global OpenTelemetry providers can be set once per process):

- ``no SDK``: opentelemetry-api only, the way a library user without an SDK runs;
- ``SDK, sampler drops all``: an SDK tracer provider with the ``ALWAYS_OFF`` sampler;
- ``SDK, all spans``: every span recorded and handed to a ``BatchSpanProcessor`` whose exporter
  drops them;
- ``SDK, spans + metrics``: the same plus a meter provider whose reader is never collected.

Each is compared with the same process's chain with telemetry switched off entirely
(``_telemetry.active`` replaced by ``False``), in alternating rounds, so drifts in machine load hit
both alike; "added" is the median of the paired differences. Two figures per variant: the chain
alone (``mw.run(Call(...), send)`` with a ``send`` that returns a ready response, so server noise
cannot hide the telemetry), and end to end (a wrapped ``AsyncOpenAI`` against the embedded server).
Target: without an SDK, telemetry adds under 20 µs per call with four hooks.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

PASSES = int(os.environ.get("TOKENMW_BENCH_PASSES", "3"))
VARIANTS = {
    "no SDK": "none",
    "SDK, sampler drops all": "sampled_out",
    "SDK, all spans": "spans",
    "SDK, spans + metrics": "metrics",
}
TARGET_US = 20.0

# Runs in a fresh interpreter per variant; prints one JSON line of medians in seconds.
WORKER = r'''
import asyncio, json, statistics, sys, time
import openai
from openai.types.chat import ChatCompletion

import tokenmw
from tokenmw.telemetry import _spans as tel
from tokenmw.server import EmbeddedServer

variant, rounds, calls = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])

REAL_ACTIVE = tel.sdk_configured
if variant != "none":
    from opentelemetry import metrics, trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON

    class Drop(SpanExporter):
        def export(self, spans):
            return SpanExportResult.SUCCESS

    provider = TracerProvider(sampler=ALWAYS_OFF if variant == "sampled_out" else ALWAYS_ON)
    provider.add_span_processor(BatchSpanProcessor(Drop()))
    trace.set_tracer_provider(provider)
    if variant == "metrics":
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader

        metrics.set_meter_provider(MeterProvider(metric_readers=[InMemoryMetricReader()]))


class Before(tokenmw.Hook):
    name = "before"
    async def before(self, call):
        call.request["user"] = "bench"

class Wrap(tokenmw.Hook):
    name = "wrap"
    async def wrap(self, call, call_next):
        return await call_next(call)

class OnSend(tokenmw.Hook):
    name = "on_send"
    async def on_send(self, call):
        call.state["sent"] = True

class After(tokenmw.Hook):
    name = "after"
    async def after(self, call, response):
        return response


mw = tokenmw.Middleware([Before(), Wrap(), OnSend(), After()])
MESSAGES = [{"role": "system", "content": "You are concise."}, {"role": "user", "content": "Name a river."}]
REQUEST = {"model": "gpt-4o-mini", "messages": MESSAGES, "max_tokens": 16}
RESPONSE = ChatCompletion.model_validate({
    "id": "chatcmpl-bench", "object": "chat.completion", "created": 0, "model": "gpt-4o-mini",
    "choices": [{"index": 0, "finish_reason": "stop",
                 "message": {"role": "assistant", "content": "The Danube."}}],
    "usage": {"prompt_tokens": 20, "completion_tokens": 3, "total_tokens": 23},
})


async def send(call):
    return RESPONSE


async def chain_round():
    start = time.perf_counter()
    for _ in range(calls):
        await mw.run(tokenmw.Call(dict(REQUEST), "chat"), send)
    return (time.perf_counter() - start) / calls


async def e2e_round(client):
    start = time.perf_counter()
    for _ in range(calls // 10):
        await client.chat.completions.create(**REQUEST)
    return (time.perf_counter() - start) / (calls // 10)


async def paired(measure):
    """Alternate rounds without and with telemetry; the first pair warms up and is left out."""
    off, on = [], []
    for _ in range(rounds + 1):
        tel.sdk_configured = lambda: False
        off.append(await measure())
        tel.sdk_configured = REAL_ACTIVE
        on.append(await measure())
    off, on = off[1:], on[1:]
    return {"off": statistics.median(off), "on": statistics.median(on),
            "added": statistics.median(b - a for a, b in zip(off, on))}


async def main():
    out = {"chain": await paired(chain_round)}
    with EmbeddedServer(port=0, reply_words=3) as server:
        raw = openai.AsyncOpenAI(api_key="bench", base_url=server.base_url, max_retries=0)
        client = mw.wrap(raw)
        out["e2e"] = await paired(lambda: e2e_round(client))
        await raw.close()
    n = 200_000
    start = time.perf_counter()
    for _ in range(n):
        tel.sdk_configured()
    out["active"] = (time.perf_counter() - start) / n
    print(json.dumps(out))

asyncio.run(main())
'''


def run_variant(variant: str, rounds: int, calls: int) -> dict[str, Any]:
    root = Path(__file__).resolve().parents[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-c", WORKER, variant, str(rounds), str(calls)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"variant {variant!r} failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> int:
    rounds = int(os.environ.get("TOKENMW_BENCH_ROUNDS", "6"))
    calls = int(os.environ.get("TOKENMW_BENCH_CALLS", "1000"))
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}; four hooks (before, wrap, on_send, after); "
        f"{PASSES} passes x {rounds} rounds x {calls} chain calls / {calls // 10} HTTP calls"
    )
    samples: dict[str, list[dict[str, Any]]] = {name: [] for name in VARIANTS}
    for _ in range(PASSES):
        for name, variant in VARIANTS.items():
            samples[name].append(run_variant(variant, rounds, calls))

    def median(name: str, *path: str) -> float:
        values = []
        for run in samples[name]:
            value: Any = run
            for key in path:
                value = value[key]
            values.append(value)
        return statistics.median(values)

    print(
        f"\n{'variant':<24} {'chain off':>10} {'on':>9} {'added':>9} {'ratio':>6}"
        f" {'e2e off':>9} {'on':>8} {'added':>8} {'ratio':>6} {'active()':>9}"
    )
    for name in VARIANTS:
        row = f"{name:<24}"
        for part, unit, width in (("chain", 1e6, 8), ("e2e", 1e6, 7)):
            off, on, added = (median(name, part, key) for key in ("off", "on", "added"))
            row += f" {off * unit:>{width}.1f}µs {on * unit:>{width - 1}.1f}µs {added * unit:>7.1f}µs"
            row += f" {on / off:>5.2f}x"
        row += f" {median(name, 'active') * 1e9:>7.0f}ns"
        print(row)
    added = median("no SDK", "chain", "added") * 1e6
    verdict = "met" if added < TARGET_US else "MISSED"
    print(f"\nwithout an SDK telemetry adds {added:.1f} µs per call (target < {TARGET_US:.0f} µs): {verdict}")
    return 0 if added < TARGET_US else 1


if __name__ == "__main__":
    sys.exit(main())
