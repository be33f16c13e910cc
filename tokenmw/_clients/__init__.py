"""Client integrations: the OpenAI and LiteLLM adapters, stream proxies and the sync edge."""
