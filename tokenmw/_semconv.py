"""Attribute and metric names: OpenTelemetry GenAI conventions and tokenmw's own.

Kept here rather than imported from ``opentelemetry-semantic-conventions``, which marks every
``gen_ai`` constant as moved.
"""

OPERATION_CHAT = "chat"
OPERATION_RESPONSES = "chat"  # the Responses API is a chat-style inference per the conventions

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
SERVER_ADDRESS = "server.address"
SERVER_PORT = "server.port"
ERROR_TYPE = "error.type"

TOKENMW_HOOK_NAME = "tokenmw.hook.name"
TOKENMW_HOOK_PHASE = "tokenmw.hook.phase"
TOKENMW_HOOK_SKIPPED = "tokenmw.hook.skipped"
TOKENMW_TOKENS_BEFORE = "tokenmw.tokens.before"
TOKENMW_TOKENS_AFTER = "tokenmw.tokens.after"
TOKENMW_TOKENS_SAVED = "tokenmw.tokens.saved"

METRIC_OPERATION_DURATION = "gen_ai.client.operation.duration"
METRIC_TOKEN_USAGE = "gen_ai.client.token.usage"
