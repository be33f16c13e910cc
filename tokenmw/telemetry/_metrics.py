"""The metric instruments, built once a real MeterProvider is configured.

Built from the provider's own meter rather than the API's proxy, so nothing is recorded (or even
allocated) in processes without an SDK; ``_telemetry`` decides when to build them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tokenmw.telemetry import _semconv as sc

if TYPE_CHECKING:
    from opentelemetry.metrics import Meter

__all__ = ["Instruments"]


class Instruments:
    """The instruments tokenmw records."""

    __slots__ = ("expansions", "hook_duration", "operation_duration", "token_usage", "tokens_saved")

    def __init__(self, meter: Meter) -> None:
        self.operation_duration = meter.create_histogram(
            sc.METRIC_OPERATION_DURATION,
            unit="s",
            description="GenAI operation duration",
            explicit_bucket_boundaries_advisory=list(sc.OPERATION_DURATION_BUCKETS),
        )
        self.token_usage = meter.create_histogram(
            sc.METRIC_TOKEN_USAGE,
            unit="{token}",
            description="Number of input and output tokens used",
            explicit_bucket_boundaries_advisory=list(sc.TOKEN_USAGE_BUCKETS),
        )
        # Net figure: a hook that adds an instruction can make a short prompt longer, so this goes
        # down as well as up (an UpDownCounter; a Counter would drop negative values).
        self.tokens_saved = meter.create_up_down_counter(
            sc.METRIC_TOKENS_SAVED,
            unit="{token}",
            description="Input tokens the hooks removed from requests (net of tokens they added)",
        )
        self.hook_duration = meter.create_histogram(
            sc.METRIC_HOOK_DURATION,
            unit="s",
            description="Time a hook phase spent on its own work (the model call excluded)",
            explicit_bucket_boundaries_advisory=list(sc.HOOK_DURATION_BUCKETS),
        )
        self.expansions = meter.create_counter(
            sc.METRIC_EXPANSIONS,
            unit="{expansion}",
            description="Elided originals sent back to the model (reversible compression)",
        )
