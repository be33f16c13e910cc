"""Wrap AsyncOpenAI with tokenmw's hooks and send the spans to Jaeger over OTLP/HTTP.

    docker compose up -d                 # Jaeger v2: OTLP on 4318, UI on http://localhost:16686
    python examples/jaeger/app.py        # a few calls, one trace per question
    python examples/jaeger/fetch_traces.py   # the span trees back from Jaeger's query API

With ``OPENAI_API_KEY`` set the calls go to OpenAI (``OPENAI_BASE_URL`` and ``--model`` are
honoured); without it they go to tokenmw's embedded OpenAI-compatible server, so the example runs
offline. ``OTEL_EXPORTER_OTLP_ENDPOINT`` (default ``http://localhost:4318``) and
``OTEL_SERVICE_NAME`` (default ``tokenmw-example``) work as usual.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
from collections.abc import Iterator

from openai import AsyncOpenAI
from opentelemetry import trace

import tokenmw
from tokenmw.server import EmbeddedServer
from tokenmw.telemetry import setup

SERVICE_NAME = "tokenmw-example"

TOURS = [
    {"city": city, "name": name, "hours": hours, "price_eur": price, "languages": ["en", "fr", "de"]}
    for city, name, hours, price in [
        ("Paris", "Left Bank walk", 3, 45),
        ("Paris", "Louvre highlights", 2, 65),
        ("Paris", "Montmartre at dusk", 2, 35),
        ("Rome", "Forum at dawn", 2, 55),
        ("Rome", "Vatican early entry", 3, 89),
        ("Rome", "Trastevere food tour", 4, 75),
        ("Vienna", "Coffee houses", 4, 49),
        ("Vienna", "Schonbrunn gardens", 3, 39),
        ("Vienna", "Evening concert", 2, 95),
    ]
]
# What agent prompts tend to look like: loose prose and a pretty-printed tool result, which
# Compress shrinks without changing a value.
SYSTEM = (
    "You are a helpful travel assistant.    You answer questions about European cities.\n\n\n"
    "Keep answers practical.     Mention opening hours when they are relevant.\n\n\n"
    "Here is the catalogue of tours the agency sells, as JSON:\n\n"
    + json.dumps({"tours": TOURS}, indent=4)
    + "\n\n\nRecommend tours from the catalogue only.\n"
)
QUESTIONS = [
    "What should I see in Paris in one afternoon?",
    "Is the Forum in Rome worth it early in the morning?",
    "Which tour would you pick in Vienna, and why?",
]


@contextlib.contextmanager
def openai_client() -> Iterator[AsyncOpenAI]:
    """OpenAI when a key is set, else the embedded server (offline)."""
    if os.environ.get("OPENAI_API_KEY"):
        yield AsyncOpenAI()
        return
    with EmbeddedServer(reply_words=120) as server:
        print(f"No OPENAI_API_KEY: using the embedded server at {server.base_url}")
        yield AsyncOpenAI(api_key="embedded", base_url=server.base_url)


async def ask_all(client: AsyncOpenAI, model: str) -> None:
    tracer = trace.get_tracer("tokenmw-example")
    for question in QUESTIONS:
        # The application's own span: tokenmw's call span and hook spans nest under it.
        with tracer.start_as_current_span("answer question") as span:
            span.set_attribute("app.question", question)
            response = await client.chat.completions.create(
                model=model,
                messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}],
            )
            answer = response.choices[0].message.content or ""
            print(f"- {question}\n  {answer[:100]}...")
    with tracer.start_as_current_span("stream an answer"):
        stream = await client.chat.completions.create(
            model=model,
            messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": QUESTIONS[0]}],
            stream=True,
            stream_options={"include_usage": True},
        )
        async for _ in stream:
            pass  # the call span ends when the stream does


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="gpt-4o-mini")
    args = parser.parse_args()

    endpoint = None if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") else "http://localhost:4318"
    # Jaeger stores traces only, so no metrics exporter here.
    telemetry = setup(service_name=SERVICE_NAME, endpoint=endpoint, metrics=False)

    mw = tokenmw.Middleware(
        [
            tokenmw.Compress(),
            tokenmw.Enhance(max_words=100),
            tokenmw.LimitResponse(max_tokens=300),
            tokenmw.CountTokens(),
        ]
    )
    with openai_client() as raw:
        client = mw.wrap(raw)
        await ask_all(client, args.model)
        await raw.close()

    usage = mw.usage
    print(
        f"\n{usage.calls} calls; input tokens {usage.input_tokens_original} as written, "
        f"{usage.input_tokens_sent} as sent ({usage.input_tokens_saved} saved); "
        f"output tokens {usage.output_tokens}"
    )
    if not telemetry.force_flush():
        print("Could not export every span: is Jaeger running? (docker compose up -d)")
    telemetry.shutdown()
    print("Spans sent. Open http://localhost:16686 or run examples/jaeger/fetch_traces.py")


if __name__ == "__main__":
    asyncio.run(main())
