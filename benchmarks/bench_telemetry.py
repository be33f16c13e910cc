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

A second table (``--cpu`` runs only it) is the process CPU (``time.process_time``, so the SDK's
export thread is counted, and the server, in a child process, is not) that the four built-in hooks
(Compress, Enhance, LimitResponse, CountTokens) add to a warm ~2k-token, 10-message agent turn
(nine messages seen on earlier turns, a new last one per call) sent with ``AsyncOpenAI``: the raw
client and the wrapped one in alternating blocks of calls, without an SDK and with one
(``BatchSpanProcessor``, an exporter that drops the spans). Targets: ≤ 150 µs added without an SDK,
≤ 300 µs with it. ``--cpu --compare DIR`` runs the same on another tree too (``git archive <commit>
tokenmw | tar -x -C DIR``), in alternating processes, and prints both.
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
CPU_VARIANTS = {"no SDK": "none", "SDK, all spans (batch)": "spans"}
CPU_TARGET_US = {"no SDK": 150.0, "SDK, all spans (batch)": 300.0}

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


# Process CPU of the raw and the wrapped client on a warm agent turn; prints one JSON line.
CPU_WORKER = r"""
import asyncio, gc, json, random, statistics, sys, time
import openai

import tokenmw
from tokenmw.server import server_process
from bench_counting import MODEL, _text, agent_history

variant, rounds, block = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
if variant != "none":
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    class Drop(SpanExporter):
        def export(self, spans):
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Drop()))
    trace.set_tracer_provider(provider)

rng = random.Random(7)
HISTORY = agent_history(rng)
WARMUP = 3 * block


def turns(n):
    # The history's strings are shared (seen on earlier turns); each call's last message is new.
    return [[*HISTORY, {"role": "user", "content": _text(rng, 40)}] for _ in range(n)]


async def block_cpu(client, messages):
    gc.collect()
    start = time.process_time()
    for turn in messages:
        await client.chat.completions.create(model=MODEL, messages=turn)
    return (time.process_time() - start) / len(messages)


async def main():
    mw = tokenmw.Middleware([
        tokenmw.Compress(), tokenmw.Enhance(max_words=150), tokenmw.LimitResponse(max_tokens=400),
        tokenmw.CountTokens(),
    ])
    with server_process(reply_words=60) as base_url:
        raw = openai.AsyncOpenAI(api_key="bench", base_url=base_url, max_retries=0)
        clients = {"raw": raw, "wrapped": mw.wrap(raw)}
        for client in clients.values():
            await block_cpu(client, turns(WARMUP))
        mw.hook_times.reset()
        cpu = {name: [] for name in clients}
        order = list(clients)
        for i in range(rounds):  # alternating blocks, first one first on even rounds
            for name in order[i % 2:] + order[:i % 2]:
                cpu[name].append(await block_cpu(clients[name], turns(block)))
        response = await raw.chat.completions.create(model=MODEL, messages=turns(1)[0])
        await raw.close()
    calls = rounds * block
    hooks = {f"{hook}.{phase}": t.seconds / calls for (hook, phase), t in mw.hook_times.snapshot().items()}

    # The chain alone, around a send() that returns a real response at once: no I/O, so the
    # figure moves less with the machine's load than the end-to-end one.
    async def send(call):
        return response

    async def chain_cpu(messages):
        gc.collect()
        start = time.process_time()
        for turn in messages:
            await mw.run(tokenmw.Call({"model": MODEL, "messages": turn}, "chat"), send)
        return (time.process_time() - start) / len(messages)

    await chain_cpu(turns(WARMUP))
    chain = statistics.median([await chain_cpu(turns(block)) for _ in range(rounds)])
    print(json.dumps({
        "raw": statistics.median(cpu["raw"]), "wrapped": statistics.median(cpu["wrapped"]),
        "added": statistics.median(b - a for a, b in zip(cpu["raw"], cpu["wrapped"])),
        "chain": chain, "hooks": hooks,
    }))

asyncio.run(main())
"""


def run_variant(
    variant: str, rounds: int, calls: int, worker: str = WORKER, root: Path | None = None
) -> dict[str, Any]:
    """One variant in a child process, importing ``tokenmw`` from ``root`` (default: this tree)."""
    here = Path(__file__).resolve().parent
    root = root or here.parent
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    paths = [str(root), str(here), os.environ.get("PYTHONPATH")]  # here: bench_counting
    env["PYTHONPATH"] = os.pathsep.join(filter(None, paths))
    check = f"import tokenmw; assert tokenmw.__file__.startswith({str(root)!r}), tokenmw.__file__\n"
    done = subprocess.run(
        [sys.executable, "-c", check + worker, variant, str(rounds), str(calls)],
        capture_output=True,
        text=True,
        env=env,
        cwd=root,  # ``-c`` puts the working directory first on sys.path
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"variant {variant!r} failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _medians_us(samples: list[dict[str, Any]]) -> tuple[float, ...]:
    """Raw, wrapped, added and chain-alone CPU per call (µs), each the median over the passes."""
    keys = ("raw", "wrapped", "added", "chain")
    return tuple(statistics.median(r[key] for r in samples) * 1e6 for key in keys)


def cpu_table(compare: Path | None = None) -> bool:
    """Process CPU per call, raw vs wrapped with the four built-in hooks; whether both targets are
    met. ``compare``: another tree run the same way, in alternating processes, printed below."""
    rounds = int(os.environ.get("TOKENMW_BENCH_CPU_ROUNDS", "40"))
    block = int(os.environ.get("TOKENMW_BENCH_CPU_BLOCK", "20"))
    print(
        f"\nprocess CPU per call (time.process_time), AsyncOpenAI against the embedded server (a child"
        f" process), warm ~2k-token 10-message agent turn, four built-in hooks; {PASSES} passes x"
        f" {rounds} alternating blocks of {block} calls per client"
    )
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in CPU_VARIANTS}
    other: dict[str, list[dict[str, Any]]] = {name: [] for name in CPU_VARIANTS}
    for i in range(PASSES):
        for name, variant in CPU_VARIANTS.items():
            if compare is not None and i % 2:
                other[name].append(run_variant(variant, rounds, block, CPU_WORKER, compare))
            runs[name].append(run_variant(variant, rounds, block, CPU_WORKER))
            if compare is not None and not i % 2:
                other[name].append(run_variant(variant, rounds, block, CPU_WORKER, compare))
    print(
        f"\n{'variant':<24} {'raw':>9} {'wrapped':>9} {'added':>9} {'ratio':>6} {'target':>9}"
        f" {'':>6} {'chain alone':>11}"
    )
    met = True
    for name, samples in runs.items():
        raw, wrapped, added, chain = _medians_us(samples)
        ok = added <= CPU_TARGET_US[name]
        met = met and ok
        print(
            f"{name:<24} {raw:>7.0f}µs {wrapped:>7.0f}µs {added:>7.0f}µs {wrapped / raw:>5.2f}x"
            f" {'≤' + format(CPU_TARGET_US[name], '.0f'):>7}µs {'met' if ok else 'MISSED':>6} {chain:>9.0f}µs"
        )
    if compare is not None:
        print(f"the same, tokenmw from {compare} (alternating processes):")
        for name, samples in other.items():
            raw, wrapped, added, chain = _medians_us(samples)
            print(
                f"{name:<24} {raw:>7.0f}µs {wrapped:>7.0f}µs {added:>7.0f}µs {wrapped / raw:>5.2f}x"
                f" {'':>9} {'':>6} {chain:>9.0f}µs"
            )
    print(
        "(chain alone: mw.run() around a send() that returns a real response at once, no I/O; it moves"
        " less with the machine's load than the end-to-end figures)"
    )
    print("\nwall time in each hook phase per call (mw.hook_times, the hook's own work, spans included):")
    phases = sorted({key for samples in runs.values() for r in samples for key in r["hooks"]})
    print(f"{'phase':<24}" + "".join(f" {name:>24}" for name in runs))
    for phase in phases:
        cells = [
            statistics.median(r["hooks"].get(phase, 0.0) for r in samples) * 1e6 for samples in runs.values()
        ]
        print(f"{phase:<24}" + "".join(f" {c:>22.1f}µs" for c in cells))
    return met


def main() -> int:
    if "--cpu" in sys.argv[1:]:
        print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
              f"Python {platform.python_version()}")
        args = sys.argv[1:]
        compare = Path(args[args.index("--compare") + 1]).resolve() if "--compare" in args else None
        return 0 if cpu_table(compare) else 1
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
    cpu_met = cpu_table()
    return 0 if added < TARGET_US and cpu_met else 1


if __name__ == "__main__":
    sys.exit(main())
