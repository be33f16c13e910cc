"""Attribute and metric names: OpenTelemetry GenAI conventions and tokenmw's own.

Kept here rather than imported from ``opentelemetry-semantic-conventions``, which marks every
``gen_ai`` constant as moved.
"""

OPERATION_CHAT = "chat"

GEN_AI_OPERATION_NAME = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME = "gen_ai.provider.name"
GEN_AI_REQUEST_MODEL = "gen_ai.request.model"
GEN_AI_REQUEST_MAX_TOKENS = "gen_ai.request.max_tokens"
GEN_AI_REQUEST_TEMPERATURE = "gen_ai.request.temperature"
GEN_AI_REQUEST_TOP_P = "gen_ai.request.top_p"
GEN_AI_REQUEST_STREAM = "gen_ai.request.stream"
GEN_AI_RESPONSE_ID = "gen_ai.response.id"
GEN_AI_RESPONSE_MODEL = "gen_ai.response.model"
GEN_AI_RESPONSE_FINISH_REASONS = "gen_ai.response.finish_reasons"
GEN_AI_USAGE_INPUT_TOKENS = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS = "gen_ai.usage.cache_read.input_tokens"
GEN_AI_TOKEN_TYPE = "gen_ai.token.type"
GEN_AI_INPUT_MESSAGES = "gen_ai.input.messages"
GEN_AI_OUTPUT_MESSAGES = "gen_ai.output.messages"
GEN_AI_SYSTEM_INSTRUCTIONS = "gen_ai.system_instructions"
SERVER_ADDRESS = "server.address"
SERVER_PORT = "server.port"
ERROR_TYPE = "error.type"

TOKEN_TYPE_INPUT = "input"
TOKEN_TYPE_OUTPUT = "output"

CAPTURE_MESSAGE_CONTENT_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
"""Opt-in to message text on spans (the conventions keep content off by default)."""

TOKENMW_HOOK_NAME = "tokenmw.hook.name"
TOKENMW_HOOK_PHASE = "tokenmw.hook.phase"
TOKENMW_HOOK_SKIPPED = "tokenmw.hook.skipped"
TOKENMW_HOOK_TIMEOUT = "tokenmw.hook.timeout"
"""Set on a hook span when the hook ran over ``hook_timeout`` (its value, in seconds)."""
TOKENMW_TOKENS_BEFORE = "tokenmw.tokens.before"
TOKENMW_TOKENS_AFTER = "tokenmw.tokens.after"
TOKENMW_TOKENS_SAVED = "tokenmw.tokens.saved"
TOKENMW_OUTPUT_ESTIMATED = "tokenmw.usage.output_estimated"
"""Set when ``gen_ai.usage.output_tokens`` was counted locally (the API reported no usage)."""

METRIC_OPERATION_DURATION = "gen_ai.client.operation.duration"
METRIC_TOKEN_USAGE = "gen_ai.client.token.usage"
METRIC_TOKENS_SAVED = "tokenmw.tokens.saved"
METRIC_HOOK_DURATION = "tokenmw.hook.duration"
METRIC_EXPANSIONS = "tokenmw.compress.expansions"

SPAN_EXPAND = "tokenmw.compress.expand"
"""One ``tokenmw_expand`` call answered by reversible compression."""
TOKENMW_EXPAND_REF = "tokenmw.expand.ref"
TOKENMW_EXPAND_FOUND = "tokenmw.expand.found"
"""Whether the original was still kept (else the model was told it is no longer available)."""
TOKENMW_EXPAND_TOKENS = "tokenmw.expand.tokens_restored"

# Bucket boundaries the GenAI conventions advise.
OPERATION_DURATION_BUCKETS = (
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
)
TOKEN_USAGE_BUCKETS = (
    1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864,
)
# Hooks work in microseconds to milliseconds: 10 µs doubling up to ~10 s.
HOOK_DURATION_BUCKETS = tuple(0.00001 * 2**i for i in range(21))
