"""Reversible compression end to end, against the embedded server (no API key, no network).

An agent's tool returned a long log; ``Compress(level="aggressive", reversible=True)`` sends only
its head and tail, with a marker ``[… 898 similar lines … ref=<id>]`` and a ``tokenmw_expand``
tool. The server's model (``x-tokenmw-answer: expand``) calls that tool when it sees a ref, as a
model that needs the omitted lines would; tokenmw answers with the original, sends the follow-up
and hands back the final answer. The caller sees one ordinary completion.

Run: ``python examples/reversible.py``
"""

from __future__ import annotations

import openai

import tokenmw
from tokenmw.server import EmbeddedServer

LOG = "\n".join(f"12:00:{i % 60:02d} INFO worker-{i % 7} item {i} took {i * 3} ms" for i in range(900))
MESSAGES = [
    {"role": "user", "content": "How long did item 437 take?"},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "read_log", "arguments": "{}"}}
        ],
    },
    {"role": "tool", "tool_call_id": "call_1", "content": LOG},
]


def main() -> None:
    mw = tokenmw.Middleware([tokenmw.Compress(level="aggressive", reversible=True), tokenmw.CountTokens()])
    with EmbeddedServer(port=0) as server:
        client = mw.wrap(openai.OpenAI(api_key="unused", base_url=server.base_url))
        reply = client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, extra_headers={"x-tokenmw-answer": "expand"}
        )
        first, follow_up = (r.body for r in server.requests if r.path == "/v1/chat/completions")
    print("the caller got:", (reply.choices[0].message.content or "")[:70], "…")
    print("tool calls the caller saw:", reply.choices[0].message.tool_calls)
    print("first request, tool output as sent:", first["messages"][2]["content"].splitlines()[1])
    print("follow-up: the model's call", follow_up["messages"][3]["tool_calls"][0]["function"])
    print("follow-up carries item 437:", "item 437 took 1311 ms" in follow_up["messages"][4]["content"])
    usage = mw.usage
    print(
        f"mw.usage: {usage.calls} call, {usage.requests} requests, "
        f"{usage.input_tokens_reported:,} input tokens billed, {usage.output_tokens} output tokens"
    )


if __name__ == "__main__":
    main()
