"""Where a wrapped call's CPU goes: the chain with the four built-in hooks under ``cProfile``.

The call is the warm agent turn of ``bench_telemetry.py --cpu`` (a ~2k-token, 10-message request,
nine messages seen on earlier turns, a new last one), run through ``mw.run()`` around a ``send()``
that returns a ready response, so the profile holds tokenmw's work and the OpenTelemetry SDK's and
nothing of the HTTP client's. Optionally with eight tool definitions on every request (what agent
frameworks send). Each variant runs in its own interpreter (the SDK's provider is set once per
process).

Printed per variant: the time per call under the profiler grouped by where it is spent (tokenmw's
layers, the OpenTelemetry SDK, builtins), then the top functions by own time. The profiler
inflates pure-Python code several times over: read the shares, and ``bench_telemetry.py --cpu``
for the real per-call figures.

    python benchmarks/profile_call.py [--top N]
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

WORKER = r'''
import asyncio, cProfile, collections, gc, pstats, random, sys
import tokenmw
from openai.types.chat import ChatCompletion
from bench_counting import MODEL, _text, agent_history

sdk, tools, top = sys.argv[1] == "sdk", sys.argv[2] == "tools", int(sys.argv[3])
if sdk:
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    class Drop(SpanExporter):
        def export(self, spans):
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Drop()))
    trace.set_tracer_provider(provider)

TOOLS = [
    {"type": "function", "function": {
        "name": f"lookup_{i}", "description": "Look up records by status and date; at most limit.",
        "parameters": {"type": "object", "required": ["status"], "properties": {
            "status": {"type": "string", "enum": ["open", "delayed", "shipped"]},
            "created_after": {"type": "string", "description": "ISO date"},
            "limit": {"type": "integer", "description": "At most this many"}}}}}
    for i in range(8)
]
rng = random.Random(7)
HISTORY = agent_history(rng)
RESPONSE = ChatCompletion.model_validate({
    "id": "r", "object": "chat.completion", "created": 0, "model": MODEL,
    "choices": [
        {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "ok " * 60}}
    ],
    "usage": {"prompt_tokens": 2000, "completion_tokens": 60, "total_tokens": 2060},
})
mw = tokenmw.Middleware([
    tokenmw.Compress(), tokenmw.Enhance(max_words=150), tokenmw.LimitResponse(max_tokens=400),
    tokenmw.CountTokens(),
])


async def send(call):
    return RESPONSE


def request():
    out = {"model": MODEL, "messages": [*HISTORY, {"role": "user", "content": _text(rng, 40)}]}
    if tools:
        out["tools"] = TOOLS
    return out


async def main():
    for _ in range(200):
        await mw.run(tokenmw.Call(request(), "chat"), send)
    profile = cProfile.Profile()
    calls = 0
    for _ in range(50):  # blocks of 20, the exporter thread catching up in between
        batch = [request() for _ in range(20)]
        gc.collect()
        profile.enable()
        for r in batch:
            await mw.run(tokenmw.Call(r, "chat"), send)
        profile.disable()
        calls += len(batch)
        await asyncio.sleep(0.01)
    stats = pstats.Stats(profile).stats
    groups = collections.Counter()
    for (path, _, _), (_, _, own, _, _) in stats.items():
        if "site-packages/" in path:
            group = path.split("site-packages/")[1].split("/")[0]
        elif "/tokenmw/" in path:
            group = "tokenmw/" + path.split("/tokenmw/")[1].split("/")[0].removesuffix(".py")
        elif path == "~":
            group = "builtins (C: dict, regex, tiktoken, ...)"
        else:
            group = "stdlib (" + path.rsplit("/", 1)[-1] + ")"
        groups[group] += own
    total = sum(groups.values())
    print(f"  {total / calls * 1e6:.0f} µs per call under the profiler; by where the time is spent:")
    for group, own in groups.most_common(8):
        print(f"    {group:<44} {own / calls * 1e6:7.1f} µs  {own / total:6.1%}")
    print(f"  top {top} functions by own time (µs per call, calls per call):")
    rows = sorted(stats.items(), key=lambda item: -item[1][2])[:top]
    for (path, line, name), (_, ncalls, own, _, _) in rows:
        where = path.split("site-packages/")[-1].split("/work/")[-1] if path != "~" else ""
        where = where.split("/tokenmw/")[-1] if "/tokenmw/" in where else where
        print(f"    {own / calls * 1e6:7.1f} µs {ncalls / calls:6.1f}x  {name} {where}:{line}")


asyncio.run(main())
'''


def main() -> int:
    top = int(sys.argv[sys.argv.index("--top") + 1]) if "--top" in sys.argv else 12
    here = Path(__file__).resolve().parent
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(here.parent), str(here), env.get("PYTHONPATH")]))
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}; 1,000 warm agent turns per variant, chain alone"
    )
    for sdk in ("none", "sdk"):
        for tools in ("none", "tools"):
            telemetry = "OpenTelemetry SDK (batch)" if sdk == "sdk" else "no SDK"
            label = f"{telemetry}, {'8 tools' if tools == 'tools' else 'no tools'}"
            print(f"\n{label}")
            done = subprocess.run(
                [sys.executable, "-c", WORKER, sdk, tools, str(top)], env=env, text=True, capture_output=True
            )
            if done.returncode != 0:
                print(done.stderr)
                return 1
            print(done.stdout.rstrip())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
