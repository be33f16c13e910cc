"""tokenmw's hooks for the LiteLLM proxy in ``config.yaml`` (``callbacks: tokenmw_hooks.handler``).

The proxy imports this file at start-up and calls ``handler`` on every request: the same hooks,
spans and accounting as ``mw.wrap(client)`` in process, for every agent behind the proxy, in any
language. Spans and metrics go over OTLP/HTTP to ``OTEL_EXPORTER_OTLP_ENDPOINT`` when it is set
(Jaeger, or a collector shared by every replica).
"""

from __future__ import annotations

import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import tokenmw
from tokenmw import telemetry

telemetry.setup_from_env(os.environ.get("OTEL_SERVICE_NAME") or "litellm-proxy")

mw = tokenmw.Middleware(
    [
        tokenmw.Compress(),                     # shrink the prompt; code, JSON, numbers, URLs intact
        tokenmw.Enhance(max_words=150),         # "Answer in at most 150 words." once, in a stable place
        tokenmw.LimitResponse(max_tokens=400),  # cap the output at the provider and enforce it
        tokenmw.CountTokens(),                  # input before/after, output, context-window guard
    ],
    on_hook_error="skip",
)
handler = tokenmw.LiteLLMProxyHandler(mw)
