"""The seed-like agent loop, now at home in ``tokenmw._bench.seed`` (``tokenmw bench`` runs it too);
re-exported here for the benchmark scripts and tests that import ``_seed_loop``."""

from tokenmw._bench.seed import AGENTS, TURNS, agent_turns, system_prompt

__all__ = ["AGENTS", "TURNS", "agent_turns", "system_prompt"]
