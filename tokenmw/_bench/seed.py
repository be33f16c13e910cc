"""A 24-agent, 5-turn agent loop shaped like the seed's traffic: a ~7,000-character system prompt and,
each turn, a ~5,000-character pretty-printed JSON tool output cut mid-document under a
``Tool result (step N):`` line, re-sent with the whole history on every later turn.

Deterministic (a fixed-seed generator), so the benchmark and ``tests/data/agent_loop_seed_like.json``
(agent 0, last turn) are the same requests on every run. ``tokenmw bench`` runs it with more turns
(the tools are called again) and the user's own turns, of varied length, between the steps
(``follow_ups=True``); with the defaults the requests are the seed's exactly.
"""

from __future__ import annotations

import json
import random
from typing import Any

__all__ = ["AGENTS", "FOLLOW_UPS", "TURNS", "agent_turns", "system_prompt"]

AGENTS = 24
TURNS = 5
OUTPUT_CHARS = 5_000

_TOOLS_DOC = """## Tools

You can call exactly one tool per step. Write the call as a JSON object on the line after `Action:`.

### search_orders
Search the order database. Arguments:
{
  "status": "one of: pending, paid, shipped, delayed, cancelled, returned",
  "created_after": "ISO 8601 date, optional",
  "customer_id": "string, optional",
  "limit": "integer, at most 50, default 20"
}
Returns `{"total": int, "orders": [order, ...]}`; each order has `id`, `customer_id`, `status`,
`created_at`, `total_amount`, `currency`, `items` and `shipping`.

### get_order
Fetch one order with its full event history. Arguments: `{"order_id": "string"}`.

### get_customer
Fetch a customer profile (contact details, tier, lifetime value, open tickets). Arguments:
`{"customer_id": "string"}`.

### list_shipments
List carrier shipments for a warehouse and day. Arguments:
{
  "warehouse": "one of: AMS1, FRA2, MAD1, WAW1",
  "date": "ISO 8601 date"
}

### create_ticket
Open a support ticket. Arguments:
{
  "customer_id": "string",
  "order_id": "string",
  "priority": "one of: low, normal, high, urgent",
  "summary": "one line, at most 120 characters",
  "body": "markdown"
}
Only call `create_ticket` once you have checked the order history and the customer's open tickets.
"""

_EXAMPLE_ORDER = """## Data model

An order as the tools return it (fields you may see; optional ones can be missing or null):

{
  "id": "ORD-20417",
  "customer_id": "C-88213",
  "status": "delayed",
  "created_at": "2024-04-29T10:14:00Z",
  "total_amount": 419.0,
  "currency": "EUR",
  "items": [
    {
      "sku": "SKU-2210",
      "name": "Standing desk frame, dual motor",
      "quantity": 1,
      "unit_price": 419.0
    }
  ],
  "shipping": {
    "warehouse": "AMS1",
    "carrier": "DPD",
    "tracking_number": "015523340071",
    "promised_by": "2024-05-01",
    "handover_at": null,
    "address": {
      "city": "Rotterdam",
      "country": "NL"
    }
  }
}
"""

_RULES = """## Rules

1. Never invent order ids, customer ids, amounts or dates. Every fact you state must come from a
   tool result in this conversation.
2. Amounts are in the order's currency. Do not convert currencies unless the user asks; if they
   do, say which rate you used and when it was published.
3. A delayed order is one whose `shipping.promised_by` is in the past and whose status is not
   `shipped`, `cancelled` or `returned`.
4. Customers in tier `gold` or `platinum` get `high` priority tickets; everyone else gets `normal`
   unless the order is more than 10 days late, which is `urgent` for every tier.
5. Do not open a second ticket for an order that already has an open ticket. Add a comment to the
   existing one instead (tell the user, you cannot do it yourself).
6. Personal data (e-mail addresses, phone numbers, street addresses) must not appear in your final
   answer. Refer to customers by their id.
7. If a tool returns an error, retry once with the same arguments. If it fails again, stop and
   report the error message verbatim.
8. Tool results longer than 5,000 characters are cut. If the part you need was cut, call the tool
   again with a narrower filter (a smaller `limit`, a `customer_id`, a later `created_after`).
9. Work in as few steps as you can; you have at most 8 steps per task.
"""

_FORMAT = """## Format

Use this format for every step:

Thought: what you know so far and what you need next
Action: the tool name
Action Input: the JSON arguments

After the last step, answer with:

Thought: I have everything I need
Final Answer: the answer for the user, in markdown, with a table of the affected orders (id,
status, days late, amount, ticket) and one paragraph of explanation.

Example:

Thought: I need the delayed orders from this week.
Action: search_orders
Action Input: {"status": "delayed", "created_after": "2024-05-06", "limit": 20}

Thought: Order ORD-20417 is 12 days late and the customer is gold tier; I need their open tickets.
Action: get_customer
Action Input: {"customer_id": "C-88213"}
"""

_POLICY = """## Carriers and service levels

| carrier | cut-off | transit (business days) | claims after |
|---|---|---|---|
| DHL Express | 17:00 | 1 | 2 days |
| DPD | 16:00 | 1-2 | 5 days |
| GLS | 15:30 | 2-3 | 7 days |
| PostNL | 16:30 | 1-2 | 5 days |
| UPS Standard | 17:30 | 2-4 | 7 days |

A parcel that was handed over after the carrier's cut-off counts as handed over the next business
day. A carrier outage reported on the status page (https://status.northwind.example/carriers) moves
every promised date of that carrier and day by one business day; say so when it applies.

## Escalation

- Damaged parcels: ask the user for photos, never promise a refund yourself.
- Customs holds (non-EU addresses only): route to the trade compliance queue, priority `high`.
- Three or more delayed orders for the same customer in 30 days: mention it in the ticket body so
  the account manager sees it.
- Anything involving a chargeback or a legal threat: stop and hand over to a human with a one-line
  summary; do not open a ticket.

Example of a final answer:

| order | status | days late | amount | ticket |
|---|---|---|---|---|
| ORD-20417 | delayed | 12 | 419.00 EUR | TCK-5521 (urgent) |
| ORD-20433 | delayed | 3 | 79.90 EUR | none (customer has open TCK-5409) |

ORD-20417 was packed on 2024-05-01 but the carrier did not collect it (vehicle capacity) and the
collection was moved twice. The customer is gold tier and the order is more than 10 days late, so
the ticket is urgent. ORD-20433 already has an open ticket; add a comment to TCK-5409.
"""

_WAREHOUSES = ("AMS1", "FRA2", "MAD1", "WAW1")
_CARRIERS = ("DHL Express", "DPD", "GLS", "PostNL", "UPS Standard")
_PRODUCTS = (
    ("SKU-1042", "Ergonomic office chair, graphite", 289.0),
    ("SKU-2210", "Standing desk frame, dual motor", 419.0),
    ("SKU-3307", "Monitor arm, gas spring, single", 79.9),
    ("SKU-4415", "USB-C docking station, 12 ports", 159.0),
    ("SKU-5120", "Mechanical keyboard, ISO-DE layout", 129.5),
    ("SKU-6631", "Noise cancelling headset, wireless", 199.0),
    ("SKU-7002", "Desk lamp with wireless charger", 64.99),
    ("SKU-8190", "Cable tray, steel, 120 cm", 34.0),
)
_TASKS = (
    "Find this week's delayed orders for warehouse {wh} and open tickets where the rules require one.",
    "Customer {cust} says their order never arrived. Check what happened and open a ticket if needed.",
    "List every order from {wh} that is more than 5 days late and tell me which customers are gold tier.",
    "Our carrier {carrier} reported an outage on {day}. "
    "Which orders shipped from {wh} that day are affected?",
)


FOLLOW_UPS = (
    "ok",
    "Go on.",
    "Only the EU orders, please.",
    "Skip anything older than last Monday; the team lead only cares about this week.",
    "Careful: the customer called again this morning and says the parcel tracking page shows "
    "'delivered' but nothing arrived. Check whether the carrier scanned it at a pickup point.",
    "Before you continue, a note from the shift lead. We had two escalations yesterday where the "
    "assistant opened a ticket for an order that already had one, and the customer got two "
    "e-mails. Double-check the open tickets before you open anything, and when in doubt, stop and "
    "ask me. Also, DPD confirmed their outage on 2024-05-09 lasted until 14:00 only, so orders "
    "handed over after that are not affected by it.",
    "Thanks. One more thing — what's the total amount at risk?",
)
"""What the user adds between steps in ``tokenmw bench`` (one word to a paragraph)."""


def system_prompt(agent: int) -> str:
    """The system prompt of one agent (the same for all but its name line and warehouse)."""
    wh = _WAREHOUSES[agent % len(_WAREHOUSES)]
    head = (
        f"You are OrderOps-{agent:02d}, an operations assistant for the EU fulfilment team of "
        "Northwind Office Supply. You help support agents find late, lost and damaged orders, explain "
        "what happened using the order history, and open support tickets when the rules below require "
        f"one. Your default warehouse is {wh}; the others are "
        f"{', '.join(w for w in _WAREHOUSES if w != wh)}.\n\n"
        "The people you help are support agents, not customers: be direct, skip greetings and "
        "apologies, and lead with what they have to do next. When the data does not answer the "
        "question, say what is missing and which tool call would find it. Keep your reasoning in the "
        "Thought lines short; the support agent reads only the Final Answer. If the user writes in "
        "German, Dutch, Spanish or Polish, answer in that language but keep field names, ids and "
        "statuses exactly as the tools return them.\n\n"
        "Today is 2024-05-13. Business days are Monday to Friday; carriers do not deliver on Sundays.\n\n"
    )
    glossary = (
        "## Glossary\n\n"
        "- **promised_by**: the latest delivery date shown to the customer at checkout.\n"
        "- **handover**: the moment the carrier scanned the parcel at our warehouse gate.\n"
        "- **exception**: a carrier event that stops the parcel (address problem, customs, damage).\n"
        "- **tier**: `standard`, `silver`, `gold` or `platinum`, from the customer's 12-month spend.\n"
        "- **LTV**: lifetime value in EUR, net of returns.\n\n"
    )
    sections = (_TOOLS_DOC, _EXAMPLE_ORDER, _RULES, glossary + _POLICY, _FORMAT)
    return head + "\n".join(sections)


def _order(rng: random.Random, wh: str, n: int) -> dict[str, Any]:
    lines: list[dict[str, Any]] = []
    for _ in range(rng.randint(1, 3)):
        sku, name, price = rng.choice(_PRODUCTS)
        qty = rng.randint(1, 4)
        lines.append({"sku": sku, "name": name, "quantity": qty, "unit_price": price})
    total = round(sum(item["quantity"] * item["unit_price"] for item in lines), 2)
    day = rng.randint(1, 12)
    return {
        "id": f"ORD-{20000 + n}",
        "customer_id": f"C-{rng.randint(10000, 99999)}",
        "status": rng.choice(("paid", "delayed", "delayed", "shipped")),
        "created_at": f"2024-05-{day:02d}T{rng.randint(6, 22):02d}:{rng.randint(0, 59):02d}:00Z",
        "total_amount": total,
        "currency": "EUR",
        "items": lines,
        "shipping": {
            "warehouse": wh,
            "carrier": rng.choice(_CARRIERS),
            "tracking_number": f"{rng.randint(10**11, 10**12 - 1)}",
            "promised_by": f"2024-05-{min(day + rng.randint(2, 5), 28):02d}",
            "handover_at": None if rng.random() < 0.4 else f"2024-05-{min(day + 1, 28):02d}T15:40:00Z",
            "address": {
                "city": rng.choice(("Rotterdam", "Leipzig", "Valencia", "Poznań", "Lyon", "Graz")),
                "country": rng.choice(("NL", "DE", "ES", "PL", "FR", "AT")),
            },
        },
    }


def _cut(value: Any, note: bool) -> str:
    text = json.dumps(value, indent=2, ensure_ascii=False)
    if len(text) <= OUTPUT_CHARS:
        return text
    rest = len(text) - OUTPUT_CHARS
    return text[:OUTPUT_CHARS] + (f"\n... [truncated {rest} characters]" if note else "")


def agent_turns(agent: int, turns: int = TURNS, *, follow_ups: bool = False) -> list[list[dict[str, Any]]]:
    """The ``messages`` of each of the agent's ``turns`` requests (each the previous plus one step).

    Past the five steps the tools are called again (the same results, new step numbers).
    ``follow_ups``: after each tool result but the first, a user turn from ``FOLLOW_UPS``."""
    rng = random.Random(1000 + agent)
    wh = _WAREHOUSES[agent % len(_WAREHOUSES)]
    orders = [_order(rng, wh, agent * 100 + i) for i in range(40)]
    task = _TASKS[agent % len(_TASKS)].format(
        wh=wh, cust=orders[3]["customer_id"], carrier=rng.choice(_CARRIERS), day="2024-05-09"
    )
    delayed = [o for o in orders if o["status"] == "delayed"]
    steps = [
        ("I need the delayed orders of the warehouse first.", "search_orders",
         {"status": "delayed", "created_after": "2024-05-06", "limit": 20},
         {"total": len(delayed), "orders": delayed[:20]}),
        (f"Order {delayed[0]['id']} looks late; I need its history.", "get_order",
         {"order_id": delayed[0]["id"]},
         {**delayed[0], "events": [
             {"at": f"2024-05-0{i + 1}T0{i}:12:00Z", "type": t, "location": wh, "note": n}
             for i, (t, n) in enumerate((
                 ("created", "Order placed via web shop"), ("paid", "Card payment captured"),
                 ("picked", "Picked by station 14"), ("packed", "Packed, 2 parcels"),
                 ("exception", "Carrier did not collect: vehicle capacity"),
                 ("rescheduled", "Collection moved to next business day"),
             ))
         ], "related_orders": delayed[1:6]}),
        ("The result was cut; I need the delayed orders again with a smaller limit.", "search_orders",
         {"status": "delayed", "created_after": "2024-05-06", "limit": 10},
         {"total": len(delayed), "orders": delayed[:10]}),
        (f"Now the customer of {delayed[0]['id']}.", "get_customer",
         {"customer_id": delayed[0]["customer_id"]},
         {"id": delayed[0]["customer_id"], "tier": rng.choice(("standard", "gold", "platinum")),
          "ltv_eur": round(rng.uniform(200, 9000), 2), "open_tickets": [],
          "orders_last_12_months": [o["id"] for o in orders[:25]],
          "recent_orders": orders[:8]}),
        ("I should check the shipments of the warehouse on the day of the exception.", "list_shipments",
         {"warehouse": wh, "date": "2024-05-09"},
         {"warehouse": wh, "date": "2024-05-09", "shipments": [
             {"tracking_number": o["shipping"]["tracking_number"], "order_id": o["id"],
              "carrier": o["shipping"]["carrier"], "parcels": rng.randint(1, 3),
              "weight_kg": round(rng.uniform(0.4, 31.5), 1), "status": rng.choice(("collected", "waiting"))}
             for o in orders[:30]
         ]}),
    ]
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": system_prompt(agent)},
        {"role": "user", "content": task},
    ]
    requests = []
    for n in range(1, turns + 1):
        thought, tool, args, result = steps[(n - 1) % len(steps)]
        said = [{"role": "user", "content": FOLLOW_UPS[(agent + n) % len(FOLLOW_UPS)]}]
        messages = [
            *messages,
            {
                "role": "assistant",
                "content": f"Thought: {thought}\nAction: {tool}\nAction Input: {json.dumps(args)}",
            },
            {"role": "user", "content": f"Tool result (step {n}):\n{_cut(result, note=n % 2 == 1)}"},
            *(said if follow_ups and n > 1 else ()),
        ]
        requests.append(messages)
    return requests
