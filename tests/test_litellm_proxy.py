"""``tokenmw.litellm_proxy``: the zero-code proxy callback, configured from ``TOKENMW_*`` variables."""

from __future__ import annotations

import subprocess
import sys

import pytest

import tokenmw
from tokenmw import litellm_proxy


def names(mw: tokenmw.Middleware) -> list[str]:
    return [hook.name for hook in mw.hooks]


def test_importing_builds_nothing_and_loads_no_litellm() -> None:
    code = (
        "import sys, tokenmw, tokenmw.litellm_proxy as m\n"
        "assert 'litellm' not in sys.modules, 'litellm imported'\n"
        "assert m._handler is None, 'handler built at import'\n"
        "assert 'handler' not in vars(m)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_default_is_the_hooks_that_never_change_the_question() -> None:
    mw = litellm_proxy.middleware_from_env({})
    assert names(mw) == ["compress", "count_tokens"]
    assert mw.on_hook_error == "skip"


def test_every_setting_reaches_its_hook() -> None:
    mw = litellm_proxy.middleware_from_env(
        {
            "TOKENMW_HOOKS": "compress, enhance,limit_response,count_tokens",
            "TOKENMW_COMPRESS_LEVEL": "aggressive",
            "TOKENMW_COMPRESS_MIN_TOKENS": "0",
            "TOKENMW_ENHANCE_MAX_WORDS": "90",
            "TOKENMW_ENHANCE_INSTRUCTION": "Cite file paths.",
            "TOKENMW_LIMIT_MAX_TOKENS": "300",
            "TOKENMW_MAX_INPUT_TOKENS": "20000",
            "TOKENMW_ON_HOOK_ERROR": "raise",
        }
    )
    compress, enhance, limit, count = mw.hooks
    assert names(mw) == ["compress", "enhance", "limit_response", "count_tokens"]
    assert (compress.level, compress.min_tokens) == ("aggressive", 0)  # type: ignore[attr-defined]
    assert enhance.text == "Answer in at most 90 words. Cite file paths."  # type: ignore[attr-defined]
    assert limit.max_tokens == 300  # type: ignore[attr-defined]
    assert count.max_input_tokens == 20000  # type: ignore[attr-defined]
    assert mw.on_hook_error == "raise"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"TOKENMW_HOOKS": "compress,redact"}, "unknown hook"),
        ({"TOKENMW_HOOKS": "limit_response"}, "TOKENMW_LIMIT_MAX_TOKENS"),
        ({"TOKENMW_HOOKS": "enhance"}, "TOKENMW_ENHANCE_MAX_WORDS"),
        ({"TOKENMW_HOOKS": "count_tokens", "TOKENMW_MAX_INPUT_TOKENS": "lots"}, "TOKENMW_MAX_INPUT_TOKENS"),
        ({"TOKENMW_COMPRESS_LEVEL": "extreme"}, "level"),
        ({"TOKENMW_ON_HOOK_ERROR": "ignore"}, "on_hook_error"),
    ],
)
def test_a_bad_setting_stops_start_up_naming_it(env: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        litellm_proxy.middleware_from_env(env)


def test_handler_is_built_once_on_first_access(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOKENMW_HOOKS", "count_tokens")
    monkeypatch.setenv("TOKENMW_PENDING_TIMEOUT", "120")
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    monkeypatch.setattr(litellm_proxy, "_handler", None)
    handler = litellm_proxy.handler
    assert isinstance(handler, tokenmw.LiteLLMProxyHandler)
    assert litellm_proxy.handler is handler
    assert names(handler.mw) == ["count_tokens"] and handler.pending_timeout == 120.0
