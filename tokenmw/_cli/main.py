"""The ``tokenmw`` command: ``serve``, ``demo``, ``count``, ``compress``, ``bench``.

Each subcommand lives with the code it drives and is imported only when chosen, so
``tokenmw count`` does not pay for the demo's imports.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

__all__ = ["main"]

# subcommand -> (module, function taking argv and returning an exit status, one-line help)
_COMMANDS = {
    "serve": ("tokenmw.server._cli", "run_cli", "serve a local OpenAI-compatible API"),
    "demo": ("tokenmw._cli.demo", "run_demo_cli", "run the multi-agent demo, with and without tokenmw"),
    "count": ("tokenmw._cli.count", "run_count_cli", "count the input tokens of a request or text"),
    "compress": ("tokenmw._cli.compress", "run_compress_cli", "show what Compress does to a request"),
    "bench": ("tokenmw._cli.bench", "run_bench_cli", "raw client vs naive optimizer vs tokenmw"),
}


def _usage() -> str:
    lines = ["usage: tokenmw COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name:<10} {help_}" for name, (_, _, help_) in _COMMANDS.items()]
    lines += ["", "Run 'tokenmw COMMAND --help' for a command's options."]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``tokenmw`` console script."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(_usage())
        return 0 if args else 2
    command = _COMMANDS.get(args[0])
    if command is None:
        print(f"tokenmw: unknown command {args[0]!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module_name, function_name, _ = command
    run = getattr(importlib.import_module(module_name), function_name)
    return int(run(args[1:]) or 0)


if __name__ == "__main__":
    sys.exit(main())
