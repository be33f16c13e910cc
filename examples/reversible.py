"""Reversible compression, end to end, against the embedded server (no API key, no network).

An agent read a long job log with a tool; aggressive compression collapses the log's similar lines
into a marker, which loses the one slow job. With ``reversible=True`` the marker carries a
``ref=``, the request offers ``tokenmw_expand``, and the server (acting as a model that expands
every ref it sees) asks for the original back. tokenmw answers that call itself, sends the
follow-up, and hands the caller the final answer only.

Run: ``python examples/reversible.py``
"""

from __future__ import annotations

import json

import openai

import tokenmw
from tokenmw.server import EmbeddedServer


def job_log() -> str:
    lines = [f"2025-03-01 12:00:{i:02d} INFO job {4000 + i} finished in {100 + i} ms" for i in range(60)]
    lines[31] = "2025-03-01 12:00:31 INFO job 4031 finished in 99000 ms"
    return "\n".join(lines)


MESSAGES = [
    {"role": "system", "content": "You are an operations assistant. Answer from the logs."},
    {"role": "user", "content": "Which job was slowest today?"},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "read_log", "arguments": "{}"}}
        ],
    },
    {"role": "tool", "tool_call_id": "call_1", "content": job_log()},
]


def main() -> None:
    mw = tokenmw.Middleware([tokenmw.Compress(level="aggressive", reversible=True), tokenmw.CountTokens()])
    with EmbeddedServer(port=0) as server:
        server.settings.expand_refs = True  # the server's model calls tokenmw_expand for each ref
        client = mw.wrap(openai.OpenAI(api_key="demo", base_url=server.base_url))
        resp = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        sent = [r.body for r in server.requests]

    print(f"requests sent: {len(sent)}")
    print("1st request, the tool output as the model read it:")
    print("   ", sent[0]["messages"][-1]["content"].replace("\n", "\n    "))
    print("   tools offered:", [t["function"]["name"] for t in sent[0]["tools"]])
    call, result = sent[1]["messages"][-2:]
    print("2nd request: the model's call", json.dumps(call["tool_calls"][0]["function"]))
    print(f"   and tokenmw's answer: {len(result['content'])} characters, the slow job included:",
          "99000 ms" in result["content"])  # fmt: skip
    print("the caller got:", repr(resp.choices[0].message.content[:90] + "…"))
    print("   tool calls the caller sees:", resp.choices[0].message.tool_calls)
    u = mw.usage
    print(f"mw.usage: calls={u.calls} input_tokens_reported={u.input_tokens_reported} (both requests)")
    print(f"   original={u.input_tokens_original} sent={u.input_tokens_sent} saved={u.input_tokens_saved}")


if __name__ == "__main__":
    main()
