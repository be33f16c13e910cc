"""``python -m tokenmw.server``: the same as ``tokenmw serve``."""

from tokenmw.server._cli import run_cli

raise SystemExit(run_cli())
