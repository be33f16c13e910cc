"""Start a LiteLLM proxy with tokenmw's hooks, in front of the embedded server or a real provider.

    python examples/litellm_proxy/run.py                 # proxy on :4000, embedded server behind it
    UPSTREAM_API_BASE=https://api.openai.com/v1 UPSTREAM_API_KEY=sk-... python examples/litellm_proxy/run.py

Spans go to ``OTEL_EXPORTER_OTLP_ENDPOINT`` (default ``http://localhost:4318``: the Jaeger of
``examples/jaeger/docker-compose.yml``) as service ``litellm-proxy``. Metrics are off unless
``OTEL_METRICS_EXPORTER`` is set, since Jaeger stores traces only; point the endpoint at an
OpenTelemetry collector to get both. Clients use ``LITELLM_MASTER_KEY`` (printed) as their API key.
Ctrl-C stops everything.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_MASTER_KEY = "sk-tokenmw-example"


def litellm_command() -> Path:
    """The ``litellm`` CLI of this Python's environment."""
    return Path(sys.executable).with_name("litellm")


@contextlib.contextmanager
def proxy_process(
    config: Path, *, port: int, env: Mapping[str, str], log: Path | None = None, timeout: float = 120.0
) -> Iterator[str]:
    """Run ``litellm --config config`` on 127.0.0.1:``port`` until ready; yields its base URL.

    The proxy imports the callbacks module named in the config from the config's directory, so
    it runs there. Readiness is ``/health/liveliness`` answering, polled for at most ``timeout``
    seconds; the process is stopped on exit (SIGTERM, then SIGKILL after 15 s).
    """
    command = [str(litellm_command()), "--config", config.name, "--host", "127.0.0.1", "--port", str(port)]
    out = log.open("w") if log is not None else subprocess.DEVNULL
    try:
        process = subprocess.Popen(
            command, cwd=config.parent, env=dict(env), stdout=out, stderr=subprocess.STDOUT
        )
    finally:
        if log is not None:
            out.close()  # type: ignore[union-attr]
    url = f"http://127.0.0.1:{port}"
    health = url + "/health/liveliness"
    tail = (lambda: log.read_text()[-3000:]) if log is not None else (lambda: "")
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the proxy exited with status {process.returncode}\n{tail()}")
            with contextlib.suppress(OSError), urllib.request.urlopen(health, timeout=2) as r:
                if r.status == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"the proxy was not ready within {timeout:.0f} s\n{tail()}")
            time.sleep(0.25)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--port", type=int, default=4000, help="the proxy's port (default 4000)")
    args = parser.parse_args()

    env = dict(os.environ)
    env.setdefault("LITELLM_MASTER_KEY", DEFAULT_MASTER_KEY)
    env.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    env.setdefault("OTEL_EXPORTER_OTLP_ENDPOINT", "http://localhost:4318")
    env.setdefault("OTEL_SERVICE_NAME", "litellm-proxy")
    env.setdefault("OTEL_METRICS_EXPORTER", "none")
    with contextlib.ExitStack() as stack:
        if not env.get("UPSTREAM_API_BASE"):
            from tokenmw.server import server_process

            env["UPSTREAM_API_BASE"] = stack.enter_context(server_process(latency=0.05, reply_words=120))
            env.setdefault("UPSTREAM_API_KEY", "any")
            print(f"embedded server (tokenmw serve) at {env['UPSTREAM_API_BASE']}")
        url = stack.enter_context(proxy_process(HERE / "config.yaml", port=args.port, env=env))
        print(f"LiteLLM proxy with tokenmw at {url}  (API key: {env['LITELLM_MASTER_KEY']})")
        print(f"spans to {env['OTEL_EXPORTER_OTLP_ENDPOINT']} as service {env['OTEL_SERVICE_NAME']!r}")
        print(f"try:  python examples/litellm_proxy/agent.py --proxy {url}")
        print("then: python examples/jaeger/fetch_traces.py --service litellm-proxy")
        print("Ctrl-C to stop")
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(3600)


if __name__ == "__main__":
    main()
