"""The seed-like agent loop, now at home in ``tokenmw._bench.workload`` (``tokenmw bench`` runs it);
kept under this name for the benchmark scripts and tests that import it from here."""

from __future__ import annotations

from tokenmw._bench.workload import AGENTS, TURNS, agent_turns, system_prompt

__all__ = ["AGENTS", "TURNS", "agent_turns", "system_prompt"]
