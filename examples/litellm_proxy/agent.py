"""An agent behind the proxy: the plain ``openai`` client, no tokenmw in sight.

    python examples/litellm_proxy/agent.py [--proxy http://127.0.0.1:4000] [--key sk-...]

Sends what a support agent sends (a tool result as pretty-printed JSON, then a question), as a
chat completion, a stream and a Responses request. The proxy's hooks compress, add the word limit
and cap the answer; its response headers and the spans in Jaeger say what they saved.
"""

from __future__ import annotations

import argparse
import json
import os

from openai import OpenAI

ORDERS = [
    {"id": 4100 + i, "status": ("shipped", "pending", "returned")[i % 3],
     "total_eur": round(12.5 * (i + 1), 2),
     "items": [{"sku": f"MUG-{i:03d}-{j}", "qty": j + 1, "warehouse": "Rotterdam"} for j in range(3)]}
    for i in range(10)
]  # fmt: skip
MESSAGES = [
    {"role": "system", "content": "You are a support agent for an online shop. Be accurate."},
    {"role": "user", "content": "Which of my orders are still pending, and what do they cost?"},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "list_orders", "arguments": "{}"}}
        ],
    },
    {"role": "tool", "tool_call_id": "call_1", "content": json.dumps(ORDERS, indent=4)},
]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--proxy", default="http://127.0.0.1:4000")
    parser.add_argument("--key", default=os.environ.get("LITELLM_MASTER_KEY", "sk-tokenmw-example"))
    parser.add_argument("--model", default="gpt-4o-mini")
    args = parser.parse_args()
    client = OpenAI(base_url=args.proxy + "/v1", api_key=args.key)

    resp = client.chat.completions.create(model=args.model, messages=MESSAGES)
    usage = resp.usage
    print("chat:", resp.choices[0].message.content)
    print(f"  usage: {usage.prompt_tokens} in, {usage.completion_tokens} out\n" if usage else "")

    print("stream: ", end="")
    stream = client.chat.completions.create(model=args.model, messages=MESSAGES, stream=True)
    for chunk in stream:
        print(chunk.choices[0].delta.content or "" if chunk.choices else "", end="", flush=True)
    print("\n")

    answer = client.responses.create(model=args.model, instructions=MESSAGES[0]["content"],
                                     input="Orders:\n" + json.dumps(ORDERS, indent=4))  # fmt: skip
    print("responses:", answer.output_text)
    if answer.usage:
        print(f"  usage: {answer.usage.input_tokens} in, {answer.usage.output_tokens} out")


if __name__ == "__main__":
    main()
