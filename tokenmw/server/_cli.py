"""``tokenmw serve``: run the embedded server from a shell for demos and manual benchmarks."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from tokenmw.server._server import EmbeddedServer, serve

__all__ = ["build_parser", "run_cli"]

DEFAULT_PORT = 8799


def build_parser(prog: str = "tokenmw serve") -> argparse.ArgumentParser:
    """The argument parser of ``run_cli`` (also usable as a subcommand parser's template)."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Serve a local OpenAI-compatible API (chat completions, responses, models) "
        "that answers with deterministic text and real token usage.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port; 0 picks a free one")
    parser.add_argument("--reply-words", type=_non_negative_int, default=60, help="words per reply")
    parser.add_argument(
        "--latency", type=_non_negative_float, default=0.0, help="seconds before the first byte"
    )
    parser.add_argument(
        "--chunk-delay", type=_non_negative_float, default=0.0, help="seconds between stream events"
    )
    parser.add_argument(
        "--latency-per-token",
        type=_non_negative_float,
        default=0.0,
        help="seconds per output token, on top of --latency",
    )
    parser.add_argument(
        "--follow-word-limit",
        action="store_true",
        help='answer prompts that ask for "at most N words" with fewer words (a model of that effect)',
    )
    parser.add_argument(
        "--ignore-max-tokens",
        action="store_true",
        help="send the whole reply even when the request caps the output",
    )
    parser.add_argument(
        "--max-records", type=_non_negative_int, default=100, help="requests kept in memory for inspection"
    )
    return parser


def run_cli(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv``, print the base URL, and serve until Ctrl-C; returns the exit status."""
    args = build_parser().parse_args(argv)

    def announce(server: EmbeddedServer) -> None:
        print(server.base_url, flush=True)
        print("tokenmw: serving a local OpenAI-compatible API; Ctrl-C to stop", file=sys.stderr, flush=True)

    try:
        serve(
            args.host,
            args.port,
            reply_words=args.reply_words,
            latency=args.latency,
            chunk_delay=args.chunk_delay,
            ignore_max_tokens=args.ignore_max_tokens,
            max_records=args.max_records,
            ready=announce,
            latency_per_token=args.latency_per_token,
            follow_word_limit=args.follow_word_limit,
        )
    except OSError as exc:  # port in use, address not available
        print(f"tokenmw serve: {exc}", file=sys.stderr)
        return 1
    return 0


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0: {text}")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0: {text}")
    return value
