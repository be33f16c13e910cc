"""Counting rules: the cookbook's reference numbers, every message shape, images, Responses."""

from __future__ import annotations

import base64
import struct
import zlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openai.types.chat import ChatCompletionMessage
from openai.types.responses import ResponseFunctionToolCall, ResponseOutputMessage

import tokenmw
from tokenmw._tokens import counting as _counting
from tokenmw._tokens import images as _images
from tokenmw._tokens.counting import (
    REPLY_PRIMING,
    count_request,
    count_tokens,
    plan_chat,
    plan_request,
    plan_responses,
)
from tokenmw._tokens.encodings import encoding_for

# openai-cookbook examples/How_to_count_tokens_with_tiktoken.ipynb, section 6 (verbatim).
COOKBOOK_MESSAGES = [
    {
        "role": "system",
        "content": "You are a helpful, pattern-following assistant that translates corporate jargon "
        "into plain English.",
    },
    {
        "role": "system",
        "name": "example_user",
        "content": "New synergies will help drive top-line growth.",
    },
    {
        "role": "system",
        "name": "example_assistant",
        "content": "Things working well together will increase revenue.",
    },
    {
        "role": "system",
        "name": "example_user",
        "content": "Let's circle back when we have more bandwidth to touch base on opportunities for "
        "increased leverage.",
    },
    {
        "role": "system",
        "name": "example_assistant",
        "content": "Let's talk later when we're less busy about how to do better.",
    },
    {
        "role": "user",
        "content": "This late pivot means we don't have time to boil the ocean for the client deliverable.",
    },
]

# Same notebook, section 7 (verbatim).
COOKBOOK_TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_current_weather",
            "description": "Get the current weather in a given location",
            "parameters": {
                "type": "object",
                "properties": {
                    "location": {
                        "type": "string",
                        "description": "The city and state, e.g. San Francisco, CA",
                    },
                    "unit": {
                        "type": "string",
                        "description": "The unit of temperature to return",
                        "enum": ["celsius", "fahrenheit"],
                    },
                },
                "required": ["location"],
            },
        },
    }
]
COOKBOOK_TOOL_MESSAGES = [
    {
        "role": "system",
        "content": "You are a helpful assistant that can answer to questions about the weather.",
    },
    {
        "role": "user",
        "content": "What's the weather like in San Francisco?",
    },
]


def tokens(text: str, model: str = "gpt-4o") -> int:
    return len(encoding_for(model).encode_ordinary(text))


# -- the reference numbers ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("gpt-4o", 124),
        ("gpt-4o-mini", 124),
        ("gpt-4o-2024-08-06", 124),
        ("gpt-4", 129),
        ("gpt-4-0613", 129),
        ("gpt-3.5-turbo", 129),
    ],
)
def test_cookbook_messages(model: str, expected: int) -> None:
    assert count_tokens(COOKBOOK_MESSAGES, model) == expected


@pytest.mark.parametrize(
    ("model", "expected"),
    [("gpt-4o", 101), ("gpt-4o-mini", 101), ("gpt-4", 105), ("gpt-3.5-turbo", 105)],
)
def test_cookbook_tools(model: str, expected: int) -> None:
    assert count_tokens(COOKBOOK_TOOL_MESSAGES, model, tools=COOKBOOK_TOOLS) == expected


def test_public_count_tokens_is_this_one() -> None:
    assert tokenmw.count_tokens(COOKBOOK_MESSAGES) == 124


def test_cookbook_numbers_are_not_estimates() -> None:
    assert not plan_chat(COOKBOOK_MESSAGES, model="gpt-4o").estimated
    assert not plan_chat(COOKBOOK_TOOL_MESSAGES, COOKBOOK_TOOLS, model="gpt-4").estimated


def test_responses_flat_tools_count_like_chat_tools() -> None:
    fn = COOKBOOK_TOOLS[0]["function"]
    flat = [{"type": "function", **fn}]
    chat = count_tokens([], "gpt-4o", tools=COOKBOOK_TOOLS)
    tokens_, estimated = count_request("responses", {"model": "gpt-4o", "tools": flat})
    assert tokens_ == chat
    assert estimated  # the chat rendering, assumed: no Responses figure is public


def test_legacy_functions_count_like_tools() -> None:
    fn = COOKBOOK_TOOLS[0]["function"]
    request = {"model": "gpt-4o", "messages": COOKBOOK_TOOL_MESSAGES, "functions": [fn]}
    assert count_request("chat", request)[0] == 101


# -- message shapes ------------------------------------------------------------------------------


def test_name_adds_one_token_plus_its_text() -> None:
    base = count_tokens([{"role": "user", "content": "hi"}])
    named = count_tokens([{"role": "user", "content": "hi", "name": "bob"}])
    assert named == base + 1 + tokens("bob")


def test_content_parts_count_their_text_not_their_type() -> None:
    text = "Describe the weather in Paris in one sentence."
    as_string = count_tokens([{"role": "user", "content": text}])
    as_parts = count_tokens([{"role": "user", "content": [{"type": "text", "text": text}]}])
    assert as_parts == as_string
    two = count_tokens(
        [{"role": "user", "content": [{"type": "text", "text": "a b"}, {"type": "text", "text": "c"}]}]
    )
    assert two == 3 + 3 + tokens("user") + tokens("a b") + tokens("c")


def test_none_and_empty_content() -> None:
    empty = count_tokens([{"role": "assistant", "content": ""}])
    none = count_tokens([{"role": "assistant", "content": None}])
    assert empty == none == 3 + 3 + tokens("assistant")


def test_assistant_tool_calls_count_name_and_arguments() -> None:
    args = '{"location": "Paris, France", "unit": "celsius"}'
    message = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "call_abc123", "type": "function", "function": {"name": "get_weather", "arguments": args}}
        ],
    }
    expected = 3 + tokens("assistant") + 3 + tokens("get_weather") + tokens(args) + 3
    assert count_tokens([message]) == expected
    two = dict(message, tool_calls=message["tool_calls"] * 2)
    assert count_tokens([two]) == expected + 3 + tokens("get_weather") + tokens(args)


def test_tool_message_counts_content_not_the_call_id() -> None:
    message = {"role": "tool", "tool_call_id": "call_abc123XYZ", "content": '{"temp": 21}'}
    assert count_tokens([message]) == 3 + tokens("tool") + tokens('{"temp": 21}') + 3


def test_tool_choice_overheads() -> None:
    base = count_tokens(COOKBOOK_TOOL_MESSAGES, "gpt-4", tools=COOKBOOK_TOOLS)
    named = {"type": "function", "function": {"name": "get_current_weather"}}

    def with_choice(choice: Any) -> int:
        return count_tokens(COOKBOOK_TOOL_MESSAGES, "gpt-4", tools=COOKBOOK_TOOLS, tool_choice=choice)

    assert with_choice("auto") == base
    assert with_choice("none") == base + 1
    assert with_choice(named) == base + 7 + tokens("get_current_weather", "gpt-4")
    assert not plan_chat(COOKBOOK_TOOL_MESSAGES, COOKBOOK_TOOLS, tool_choice=named, model="gpt-4").estimated
    # Measured on cl100k models only: on o200k ones the same overheads are used and flagged.
    assert plan_chat(COOKBOOK_TOOL_MESSAGES, COOKBOOK_TOOLS, tool_choice=named, model="gpt-4o").estimated
    assert not plan_chat(COOKBOOK_TOOL_MESSAGES, COOKBOOK_TOOLS, tool_choice="auto", model="gpt-4o").estimated
    required = plan_chat(COOKBOOK_TOOL_MESSAGES, COOKBOOK_TOOLS, tool_choice="required", model="gpt-4")
    assert required.estimated  # never measured: said so


def test_tool_choice_without_tools_costs_nothing() -> None:
    assert count_tokens(COOKBOOK_MESSAGES, tool_choice="none") == 124


def test_nested_tool_schema_is_counted_and_flagged() -> None:
    tool = {
        "type": "function",
        "function": {
            "name": "create_order",
            "description": "Create an order.",
            "parameters": {
                "type": "object",
                "properties": {
                    "items": {
                        "type": "array",
                        "description": "Line items",
                        "items": {
                            "type": "object",
                            "properties": {"sku": {"type": "string", "description": "Product id"}},
                        },
                    }
                },
            },
        },
    }
    flat = dict(tool, function=dict(tool["function"], parameters={"type": "object", "properties": {}}))
    plan = plan_chat([], [tool], model="gpt-4o")
    assert plan.estimated
    assert count_tokens([], tools=[tool]) > count_tokens([], tools=[flat])


def test_unknown_model_uses_the_default_encoding_and_is_flagged() -> None:
    assert count_tokens(COOKBOOK_MESSAGES, "my-local-llama") == 124  # o200k_base
    assert plan_chat(COOKBOOK_MESSAGES, model="my-local-llama").estimated
    assert not plan_chat(COOKBOOK_MESSAGES, model="gpt-4.1-mini").estimated
    assert count_request("chat", {"messages": COOKBOOK_MESSAGES}) == (124, True)


@pytest.mark.parametrize(
    "text",
    ["<|endoftext|>", "a <|endoftext|> b <|fim_prefix|>", "lone \ud800 surrogate \udfff", "", " ", "\x00"],
)
@pytest.mark.parametrize("model", ["gpt-4o", "gpt-4"])
def test_strange_text_never_raises(text: str, model: str) -> None:
    n = count_tokens([{"role": "user", "content": text, "name": text}], model)
    assert n >= 3 + 1 + 3 + tokens("user", model)


def test_endoftext_is_counted_as_plain_text() -> None:
    # Special-token syntax in user text is sent as text, not as one special token.
    assert count_tokens([{"role": "user", "content": "<|endoftext|>"}]) == 3 + 1 + tokens("<|endoftext|>") + 3
    assert tokens("<|endoftext|>") > 1


@pytest.mark.parametrize(
    "messages",
    [
        None,
        "not a list",
        [None, 3, "x", ["nested"]],
        [{"role": None, "content": {"weird": True}}],
        [{"role": "user", "content": [None, 5, {"type": 7}, {"type": ["x"]}, {"text": None}]}],
        [{"role": "assistant", "tool_calls": [None, {"function": None}, {"function": {"name": 3}}]}],
        [{"role": "assistant", "tool_calls": "oops", "function_call": "oops"}],
    ],
)
def test_malformed_messages_are_skipped_not_raised(messages: Any) -> None:
    assert count_tokens(messages) >= 3


@pytest.mark.parametrize(
    "tools",
    [
        "oops",
        [None, {"type": "function"}, {"type": "function", "function": "x"}],
        [{"type": "function", "function": {"name": "f", "parameters": {"properties": {"a": None, "b": 3}}}}],
        [
            {
                "type": "function",
                "function": {
                    "name": "f",
                    "parameters": {"properties": {"a": {"type": ["string", "null"], "enum": [1, None]}}},
                },
            }
        ],
        [{"type": {"x": 1}, "name": "f"}],
    ],
)
def test_malformed_tools_are_skipped_not_raised(tools: Any) -> None:
    assert count_tokens([], tools=tools, tool_choice={"type": "function"}) >= 3


# -- images --------------------------------------------------------------------------------------


def png(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return (
        b"\x89PNG\r\n\x1a\n"
        + struct.pack(">I", len(ihdr))
        + chunk
        + struct.pack(">I", zlib.crc32(chunk))
        + b"\x00" * 64
    )


def gif(width: int, height: int) -> bytes:
    return b"GIF89a" + struct.pack("<HH", width, height) + b"\x00" * 32


def jpeg(width: int, height: int, exif_bytes: int = 0) -> bytes:
    out = b"\xff\xd8"
    out += b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00" + b"\x00" * 9  # APP0
    if exif_bytes:
        out += b"\xff\xe1" + struct.pack(">H", exif_bytes + 2) + b"E" * exif_bytes  # APP1
    out += b"\xff\xdb" + struct.pack(">H", 67) + b"\x00" * 65  # DQT
    out += b"\xff\xc0" + struct.pack(">HBHHB", 17, 8, height, width, 3) + b"\x00" * 9  # SOF0
    out += b"\xff\xda" + b"\x00" * 32
    return out


def webp_vp8x(width: int, height: int) -> bytes:
    payload = b"VP8X" + struct.pack("<I", 10) + b"\x00" * 4
    payload += (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    return b"RIFF" + struct.pack("<I", 4 + len(payload)) + b"WEBP" + payload


def webp_vp8l(width: int, height: int) -> bytes:
    bits = (width - 1) | ((height - 1) << 14)
    payload = b"VP8L" + struct.pack("<I", 5) + b"\x2f" + struct.pack("<I", bits) + b"\x00" * 8
    return b"RIFF" + struct.pack("<I", 4 + len(payload)) + b"WEBP" + payload


def webp_vp8(width: int, height: int) -> bytes:
    frame = b"\x00\x00\x00" + b"\x9d\x01\x2a" + struct.pack("<HH", width, height) + b"\x00" * 8
    payload = b"VP8 " + struct.pack("<I", len(frame)) + frame
    return b"RIFF" + struct.pack("<I", 4 + len(payload)) + b"WEBP" + payload


def data_url(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode()


@pytest.mark.parametrize(
    ("data", "size"),
    [
        (png(1024, 768), (1024, 768)),
        (png(1, 1), (1, 1)),
        (gif(320, 200), (320, 200)),
        (jpeg(4032, 3024), (4032, 3024)),
        (jpeg(800, 600, exif_bytes=60_000), (800, 600)),  # SOF far behind a big EXIF block
        (webp_vp8x(2000, 1000), (2000, 1000)),
        (webp_vp8l(640, 480), (640, 480)),
        (webp_vp8(300, 150), (300, 150)),
    ],
)
@pytest.mark.parametrize("offset", [0, 1, 2])
def test_image_size_from_data_url_header(data: bytes, size: tuple[int, int], offset: int) -> None:
    # ``offset`` pads the MIME type so the base64 payload starts at every alignment.
    url = data_url(data, "image/x" + "x" * offset)
    assert _images.data_url_size(url) == size


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/cat.png",
        "data:image/png;base64,",
        "data:image/png;base64,!!!!not base64!!!!",
        "data:image/png,rawbytes",
        "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n").decode(),  # truncated
        data_url(b"\xff\xd8\xff\xe0\x00\x10" + b"\x00" * 4),  # JPEG cut before any frame
        data_url(png(0, 10)),
    ],
)
def test_unreadable_images_have_no_size(url: str) -> None:
    assert _images.data_url_size(url) is None


def test_a_big_jpeg_is_read_without_decoding_its_body() -> None:
    big = jpeg(1920, 1080, exif_bytes=65_000) + b"\x00" * 3_000_000
    assert _images.data_url_size(data_url(big, "image/jpeg")) == (1920, 1080)


@pytest.mark.parametrize(
    ("size", "tiles"),
    [
        ((1024, 1024), 4),  # OpenAI's example: 768x768 -> 4 tiles, 765 tokens on gpt-4o
        ((2048, 4096), 6),  # OpenAI's example: 1024x2048 -> 768x1536 -> 6 tiles, 1105 tokens
        ((512, 512), 1),
        ((100, 100), 1),
        ((4096, 1024), 4),  # 2048x512: shortest side already under 768
        ((513, 200), 2),
    ],
)
def test_tiles(size: tuple[int, int], tiles: int) -> None:
    assert _images._tiles(*size) == tiles


def test_patches_match_openai_worked_examples() -> None:
    # OpenAI images guide: 1024x1024 -> 1024 patches; 1800x2400 -> 1452 patches (after shrinking).
    assert _images._patch_tokens(1024, 1024, 1.0) == 1024
    assert _images._patch_tokens(1800, 2400, 1.0) == 1452
    assert _images._patch_tokens(1800, 2400, 1.62) == round(1452 * 1.62)


def image_message(url: str, detail: str | None = None) -> list[dict[str, Any]]:
    image: dict[str, Any] = {"url": url}
    if detail is not None:
        image["detail"] = detail
    return [{"role": "user", "content": [{"type": "image_url", "image_url": image}]}]


BASE = 3 + 1 + 3  # one user message with no text, plus priming


@pytest.mark.parametrize(
    ("model", "detail", "expected"),
    [
        ("gpt-4o", "high", 765),
        ("gpt-4o", "auto", 765),
        ("gpt-4o", None, 765),
        ("gpt-4o", "low", 85),
        ("gpt-4o-mini", "high", 2833 + 4 * 5667),
        ("gpt-4o-mini", "low", 2833),
        ("o1", "high", 75 + 4 * 150),
        ("o3", "low", 75),
        ("gpt-5", "high", 70 + 4 * 140),
        ("gpt-4.1", "high", 765),
        ("gpt-4.1-mini", "high", round(1024 * 1.62)),
        ("gpt-4.1-nano", "high", round(1024 * 2.46)),
        ("o4-mini", "auto", round(1024 * 1.72)),
    ],
)
def test_image_costs_by_model_family(model: str, detail: str | None, expected: int) -> None:
    messages = image_message(data_url(png(1024, 1024)), detail)
    assert count_tokens(messages, model) == BASE + expected
    assert not plan_chat(messages, model=model).estimated


def test_remote_image_is_estimated_and_flagged() -> None:
    messages = image_message("https://example.com/cat.jpg", "high")
    plan = plan_chat(messages, model="gpt-4o")
    assert plan.estimated
    assert count_tokens(messages) == BASE + 85 + 4 * 170  # assumed 1024x768
    low = plan_chat(image_message("https://example.com/cat.jpg", "low"), model="gpt-4o")
    assert not low.estimated  # low detail costs the base whatever the size
    assert low.fixed == 3 + 3 + 85 and low.texts == ["user"]


def test_image_with_text_parts() -> None:
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in this image?"},
                {"type": "image_url", "image_url": {"url": data_url(png(512, 512)), "detail": "high"}},
            ],
        }
    ]
    assert count_tokens(messages) == BASE + tokens("What is in this image?") + 85 + 170


def test_audio_and_file_parts_are_flagged() -> None:
    audio = [
        {
            "role": "user",
            "content": [{"type": "input_audio", "input_audio": {"data": "AAA", "format": "wav"}}],
        }
    ]
    assert plan_chat(audio, model="gpt-4o").estimated
    pdf = [{"role": "user", "content": [{"type": "file", "file": {"file_id": "file-1"}}]}]
    assert plan_chat(pdf, model="gpt-4o").estimated


# -- Responses API -------------------------------------------------------------------------------


def test_responses_string_input_equals_one_user_message() -> None:
    text = "Tell me a joke about tokens."
    tokens_, estimated = count_request("responses", {"model": "gpt-4o", "input": text})
    assert tokens_ == count_tokens([{"role": "user", "content": text}])
    assert not estimated


def test_responses_instructions_count_as_a_system_message() -> None:
    request = {"model": "gpt-4o", "instructions": "Be brief.", "input": "Hi"}
    expected = count_tokens([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}])
    assert count_request("responses", request)[0] == expected


def test_responses_items_equal_the_equivalent_chat_request() -> None:
    args = '{"city": "Paris"}'
    request = {
        "model": "gpt-4o",
        "input": [
            {"role": "user", "content": [{"type": "input_text", "text": "Weather in Paris?"}]},
            {
                "type": "function_call",
                "call_id": "call_1",
                "name": "get_weather",
                "arguments": args,
                "id": "fc_1",
            },
            {"type": "function_call_output", "call_id": "call_1", "output": '{"temp": 21}'},
            {
                "type": "message",
                "id": "msg_1",
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "It is 21 C.", "annotations": []}],
            },
        ],
    }
    chat = [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": args}}
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": '{"temp": 21}'},
        {"role": "assistant", "content": "It is 21 C."},
    ]
    # Tool calls and tool results: counted by the function_call rule, flagged in both APIs.
    assert count_request("responses", request) == (count_tokens(chat), True)
    assert count_request("chat", {"model": "gpt-4o", "messages": chat}) == (count_tokens(chat), True)


def test_responses_input_image_part() -> None:
    request = {
        "model": "gpt-4o",
        "input": [
            {
                "role": "user",
                "content": [
                    {"type": "input_image", "image_url": data_url(png(1024, 1024)), "detail": "high"}
                ],
            }
        ],
    }
    assert count_request("responses", request) == (BASE + 765, False)
    by_file = {
        "model": "gpt-4o",
        "input": [{"role": "user", "content": [{"type": "input_image", "file_id": "file-1"}]}],
    }
    assert count_request("responses", by_file)[1] is True


@pytest.mark.parametrize(
    "extra",
    [
        {"previous_response_id": "resp_123"},
        {"tools": [{"type": "web_search_preview"}]},
        {"input": [{"type": "reasoning", "id": "rs_1", "summary": []}]},
        {"input": [{"type": "item_reference", "id": "msg_1"}]},
    ],
)
def test_responses_unseen_tokens_are_flagged(extra: dict[str, Any]) -> None:
    request = {"model": "gpt-4o", "input": "hi", **extra}
    assert plan_responses(request).estimated


@pytest.mark.parametrize(
    "request_",
    [
        {"model": "gpt-4o", "input": None},
        {
            "model": "gpt-4o",
            "input": [None, 1, "x", {"type": "function_call"}, {"role": "user", "content": 5}],
        },
        {"model": 42, "input": "hi", "instructions": None, "tools": "x"},
        {},
    ],
)
def test_malformed_responses_requests_do_not_raise(request_: dict[str, Any]) -> None:
    assert count_request("responses", request_)[0] >= 3


def test_plan_request_dispatches_on_operation() -> None:
    chat = plan_request("chat", {"model": "gpt-4o", "messages": COOKBOOK_MESSAGES})
    responses = plan_request("responses", {"model": "gpt-4o", "input": "hi"})
    assert chat.fixed == 6 * 3 + 4 * 1 + 3
    assert responses.texts == ["user", "hi"]
    assert plan_request("chat", None).estimated  # type: ignore[arg-type]


def test_rules_are_per_encoding_family() -> None:
    assert _counting._rules_for("gpt-4").cl100k
    assert not _counting._rules_for("gpt-4o").cl100k
    assert not _counting._rules_for("gpt-5-mini").cl100k


# -- whatever the shape, counting never raises ---------------------------------------------------

_KEYS = st.sampled_from(
    [
        "role", "content", "name", "tool_calls", "function", "arguments", "type", "text", "image_url",
        "url", "detail", "parameters", "properties", "enum", "items", "description", "input",
        "instructions", "output", "tools", "tool_choice", "custom", "refusal", "model",
    ]
)  # fmt: skip
_SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
_JSON = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(_KEYS | st.text(max_size=4), inner, max_size=5)
    ),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None)
@given(messages=st.lists(_JSON, max_size=5), tools=_JSON, tool_choice=_JSON)
def test_chat_counting_never_raises(messages: list[Any], tools: Any, tool_choice: Any) -> None:
    assert count_tokens(messages, tools=tools, tool_choice=tool_choice) >= REPLY_PRIMING


@settings(max_examples=300, deadline=None)
@given(request_=st.dictionaries(_KEYS, _JSON, max_size=6))
def test_responses_counting_never_raises(request_: dict[str, Any]) -> None:
    request_["model"] = "gpt-4o"
    assert count_request("responses", request_)[0] >= REPLY_PRIMING
    assert count_request("chat", request_)[0] >= REPLY_PRIMING


# -- openai SDK objects sent back as they are ------------------------------------------------------


def test_sdk_message_objects_count_like_dicts() -> None:
    data = {
        "role": "assistant",
        "content": "Checking the weather.",
        "tool_calls": [
            {"id": "t1", "type": "function", "function": {"name": "get_weather", "arguments": '{"c": 1}'}}
        ],
    }
    message = ChatCompletionMessage.model_validate(data)
    as_dict = count_tokens([COOKBOOK_MESSAGES[0], data])
    assert count_tokens([COOKBOOK_MESSAGES[0], message]) == as_dict
    assert count_tokens([COOKBOOK_MESSAGES[0], message]) == as_dict  # from the kept dump
    assert count_tokens([COOKBOOK_MESSAGES[0], dict(data, tool_calls=message.tool_calls)]) == as_dict


def test_sdk_responses_output_items_count_like_dicts() -> None:
    call = {"type": "function_call", "call_id": "c1", "name": "get_weather", "arguments": "{}", "id": "fc1"}
    msg = {
        "type": "message",
        "id": "m1",
        "role": "assistant",
        "status": "completed",
        "content": [{"type": "output_text", "text": "Hello there", "annotations": []}],
    }
    objects = [ResponseFunctionToolCall.model_validate(call), ResponseOutputMessage.model_validate(msg)]
    as_dicts = count_request("responses", {"model": "gpt-4o", "input": ["x", call, msg]})
    assert count_request("responses", {"model": "gpt-4o", "input": ["x", *objects]}) == as_dicts


def test_a_mutated_sdk_message_is_counted_again() -> None:
    # Agents reuse the response's message object and change it: the count must follow its content.
    message = ChatCompletionMessage.model_validate({"role": "assistant", "content": "bye"})
    short = count_tokens([message])
    message.content = "word " * 200
    assert count_tokens([message]) == count_tokens([{"role": "assistant", "content": "word " * 200}])
    assert count_tokens([message]) > short + 150
    message.content = "bye"
    assert count_tokens([message]) == short
