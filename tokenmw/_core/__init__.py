"""The chain and what it runs on: a call, a hook, usage, hook timings, errors. Knows no client."""
