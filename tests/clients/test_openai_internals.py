"""The openai internals the wrapped client relies on, each checked directly, so that an openai
release that changes one fails here, by name, rather than as a silently bypassed chain.

Checked on openai 3.3 and 3.63 (the upper bound in pyproject.toml is the tested major).
"""

from __future__ import annotations

import functools
import inspect

import openai
from openai import _legacy_response, _response
from openai._constants import RAW_RESPONSE_HEADER
from openai._resource import AsyncAPIResource, SyncAPIResource

from tokenmw import Middleware
from tokenmw._clients.openai import INTERCEPTED_PATHS
from tokenmw.server import EmbeddedServer

from ..conftest import MESSAGES


def test_resources_send_through_the_client_post() -> None:
    # The meeting point: resources bind client.post when they are built.
    for resource in (SyncAPIResource, AsyncAPIResource):
        assert "self._post = client.post" in inspect.getsource(resource.__init__)


def test_client_resources_are_cached_properties_built_from_self() -> None:
    for name in ("chat", "responses", "beta", "with_raw_response", "with_streaming_response"):
        for cls in (openai.OpenAI, openai.AsyncOpenAI):
            assert isinstance(vars(cls)[name], functools.cached_property), (cls, name)


def test_copies_are_built_with_the_instance_class(live_server: EmbeddedServer) -> None:
    wrapped = Middleware([]).wrap(openai.OpenAI(api_key="k", base_url=live_server.base_url))
    for copied in (wrapped.copy(), wrapped.with_options(timeout=3)):
        assert type(copied) is type(wrapped)
    azure = openai.AzureOpenAI(api_key="k", azure_endpoint=live_server.url, api_version="2024-10-21")
    wrapped_azure = Middleware([]).wrap(azure)
    assert type(wrapped_azure.with_options(timeout=3)) is type(wrapped_azure)


def test_chat_and_responses_post_to_the_intercepted_paths() -> None:
    from openai.lib import _chat_completion_resources, _response_resources
    from openai.resources.chat.completions import completions
    from openai.resources.responses import responses

    for module in (completions, _chat_completion_resources):
        assert '"/chat/completions"' in inspect.getsource(module)
    for module in (responses, _response_resources):
        assert '"/responses"' in inspect.getsource(module)
    assert set(INTERCEPTED_PATHS) == {"/chat/completions", "/responses"}


def test_raw_response_header_and_parse_cache() -> None:
    assert RAW_RESPONSE_HEADER == "X-Stainless-Raw-Response"
    assert '"true"' in inspect.getsource(_legacy_response.to_raw_response_wrapper)
    assert '"stream"' in inspect.getsource(_response.to_streamed_response_wrapper)
    for cls in (_legacy_response.LegacyAPIResponse, _response.APIResponse, _response.AsyncAPIResponse):
        source = inspect.getsource(cls.parse)
        assert "self._parsed_by_type.get(cache_key)" in source, cls
        assert "cache_key = to if to is not None else self._cast_to" in source, cls


def test_extra_body_travels_as_extra_json() -> None:
    options = openai._base_client.make_request_options(extra_body={"a": 1})
    assert options.get("extra_json") == {"a": 1}


def test_stream_body_is_read_through_the_response_byte_stream(
    sync_client: openai.OpenAI, live_server: EmbeddedServer
) -> None:
    stream = sync_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    import httpx2

    assert isinstance(stream.response.stream, httpx2.SyncByteStream)
    stream.close()


def test_websocket_handshakes_are_prepared_by_the_client() -> None:
    # responses.connect() and realtime.connect() never post: the wrapped client hears of them
    # (to warn, ChainBypassWarning) only where they prepare the handshake's options.
    from openai import _websocket_connection
    from openai.resources.realtime import realtime

    for connect in (_websocket_connection._connect_websocket, _websocket_connection._async_connect_websocket):
        assert "client._prepare_options(" in inspect.getsource(connect), connect
    assert "self.__client._prepare_options(" in inspect.getsource(realtime)
