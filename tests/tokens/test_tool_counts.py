"""Tool definitions against every public API-measured figure we know of.

Sources (the figures are ``usage.prompt_tokens`` the API returned, recorded by their authors):
- pamelafox/openai-messages-token-helper ``tests/functions.py`` (commit c9cfddc), measured with
  ``tests/verify_functions.py`` on gpt-35-turbo (cl100k_base): one system message, ``tools`` and
  ``tool_choice``.
- hmarr/openai-chat-tokens ``tests/token-counts.test.ts`` (commit 08d8ec0), measured on
  gpt-3.5-turbo (cl100k_base) with the legacy ``functions`` parameter.
- The cookbook's weather example (101 on gpt-4o, 105 on gpt-4) is in ``test_counting``.

Every case we count exactly must not be flagged, and every case we miss must be flagged.
"""

from __future__ import annotations

from typing import Any

import pytest

from tokenmw._tokens.counting import count_plan, plan_chat
from tokenmw._tokens.tools import function_of, render_functions

SYSTEM = {"role": "system", "content": "You are a bot."}


def tool(
    name: str, description: str | None = None, parameters: dict[str, Any] | None = None
) -> dict[str, Any]:
    fn: dict[str, Any] = {"name": name}
    if description is not None:
        fn["description"] = description
    if parameters is not None:
        fn["parameters"] = parameters
    return {"type": "function", "function": fn}


def obj(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required is not None:
        schema["required"] = required
    return schema


SEARCH = tool(
    "search_sources",
    "Retrieve sources from the Azure AI Search index",
    obj(
        {
            "search_query": {
                "type": "string",
                "description": "Query string to retrieve documents from azure search eg: 'Health care plan'",
            }
        },
        ["search_query"],
    ),
)
NO_PARAMETERS = tool("search_sources", "Retrieve sources from the Azure AI Search index")
INTEGER_ENUM = tool(
    "data_demonstration",
    "This is the main function description",
    obj({"integer_enum": {"type": "integer", "enum": [-1, 1]}}),
)


def inner(properties: dict[str, Any], extra: dict[str, Any] | None = None) -> dict[str, Any]:
    outer = {
        "object_1": {
            "type": "object",
            "description": "The object data type as a property",
            "properties": properties,
        },
        **(extra or {}),
    }
    return tool("data_demonstration", "This is the main function description", obj(outer, ["object_1"]))


HAPPY_SAD = {"string_2a": {"type": "string", "enum": ["Happy", "Sad"]}}
LOST = {"string_2b": {"type": "string", "description": "Description in a second object is lost"}}


def named(name: str) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name}}


# name: (tools, tool_choice, API prompt_tokens)
PAMELAFOX: dict[str, tuple[list[dict[str, Any]], Any, int]] = {
    "search_sources_toolchoice_auto": ([SEARCH], "auto", 66),
    "search_sources_toolchoice_none": ([SEARCH], "none", 67),
    "search_sources_toolchoice_name": ([SEARCH], named("search_sources"), 75),
    "integer_enum": ([INTEGER_ENUM], "none", 54),
    "integer_enum_tool_choice_name": ([INTEGER_ENUM], named("data_demonstration"), 64),
    "no_parameters": ([NO_PARAMETERS], "auto", 42),
    "no_parameters_tool_choice_name": ([NO_PARAMETERS], named("search_sources"), 51),
    "no_parameter_description_or_required": (
        [
            tool(
                "search_sources",
                "Retrieve sources from the Azure AI Search index",
                obj({"search_query": {"type": "string"}}),
            )
        ],
        "auto",
        49,
    ),
    "no_parameter_description": (
        [
            tool(
                "search_sources",
                "Retrieve sources from the Azure AI Search index",
                obj({"search_query": {"type": "string"}}, ["search_query"]),
            )
        ],
        "auto",
        49,
    ),
    "string_enum": (
        [
            tool(
                "summarize_order",
                "Summarize the customer order request",
                obj(
                    {
                        "product_name": {"type": "string", "description": "Product name ordered by customer"},
                        "quantity": {"type": "integer", "description": "Quantity ordered by customer"},
                        "unit": {
                            "type": "string",
                            "enum": ["meals", "days"],
                            "description": "unit of measurement of the customer order",
                        },
                    },
                    ["product_name", "quantity", "unit"],
                ),
            )
        ],
        "none",
        86,
    ),
    "inner_object": ([inner({"string1": {"type": "string"}})], "none", 65),
    "inner_object_with_enum_only": ([inner(HAPPY_SAD)], "none", 73),
    "inner_object_with_enum": ([inner({**HAPPY_SAD, **LOST})], "none", 89),
    "inner_object_and_string": (
        [
            inner(
                {**HAPPY_SAD, **LOST},
                {"string_1": {"type": "string", "description": "Not required gets a question mark"}},
            )
        ],
        "none",
        103,
    ),
    "boolean": (
        [
            tool(
                "human_escalation",
                "Check if user wants to escalate to a human",
                obj(
                    {
                        "requires_escalation": {
                            "type": "boolean",
                            "description": "If user is showing signs of frustration or anger in the query. "
                            "Also if the user says they want to talk to a real person and not a chat bot.",
                        }
                    },
                    ["requires_escalation"],
                ),
            )
        ],
        "none",
        89,
    ),
    "array": (
        [
            tool(
                "get_coordinates",
                "Get the latitude and longitude of multiple mailing addresses",
                obj(
                    {
                        "addresses": {
                            "type": "array",
                            "description": "The mailing addresses to be located",
                            "items": {"type": "string"},
                        }
                    },
                    ["addresses"],
                ),
            )
        ],
        "none",
        59,
    ),
    "null": (
        [
            tool(
                "get_null",
                "Get the null value",
                obj(
                    {"null_value": {"type": "null", "description": "The null value to be returned"}},
                    ["null_value"],
                ),
            )
        ],
        "none",
        55,
    ),
    "no_type": (
        [
            tool(
                "get_no_type",
                "Get the no type value",
                obj(
                    {"no_type_value": {"description": "The no type value to be returned"}}, ["no_type_value"]
                ),
            )
        ],
        "none",
        59,
    ),
}


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def function(name: str, description: str | None = None, properties: dict[str, Any] | None = None,
             required: list[str] | None = None) -> dict[str, Any]:  # fmt: skip
    fn: dict[str, Any] = {"name": name}
    if description is not None:
        fn["description"] = description
    fn["parameters"] = obj(properties or {}, required)
    return fn


RECIPE = function(
    "get_recipe",
    None,
    {
        "ingredients": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "unit", "amount"],
                "properties": {
                    "name": {"type": "string"},
                    "unit": {"enum": ["grams", "ml", "cups", "pieces", "teaspoons"], "type": "string"},
                    "amount": {"type": "number"},
                },
            },
        },
        "instructions": {
            "type": "array",
            "items": {"type": "string"},
            "description": "Steps to prepare the recipe (no numbering)",
        },
        "time_to_cook": {"type": "number", "description": "Total time to prepare the recipe in minutes"},
    },
    ["ingredients", "instructions", "time_to_cook"],
)

# name: (messages, functions, API prompt_tokens)
HMARR: dict[str, tuple[list[dict[str, Any]], list[dict[str, Any]] | None, int]] = {
    "user_hello": ([user("hello")], None, 8),
    "user_hello_world": ([user("hello world")], None, 9),
    "system_hello": ([{"role": "system", "content": "hello"}], None, 8),
    "system_hello_colon": ([{"role": "system", "content": "hello:"}], None, 9),
    "three_messages": (
        [
            {"role": "system", "content": "# Important: you're the best robot"},
            user("hello robot"),
            {"role": "assistant", "content": "hello world"},
        ],
        None,
        27,
    ),
    "function_no_parameters": ([user("hello")], [function("foo")], 31),
    "function_description": ([user("hello")], [function("foo", "Do a foo")], 36),
    "string_property": (
        [user("hello")],
        [function("bing_bong", "Do a bing bong", {"foo": {"type": "string"}})],
        49,
    ),
    "two_properties": (
        [user("hello")],
        [
            function(
                "bing_bong",
                "Do a bing bong",
                {"foo": {"type": "string"}, "bar": {"type": "number", "description": "A number"}},
            )
        ],
        57,
    ),
    "object_property": (
        [user("hello")],
        [
            function(
                "bing_bong",
                "Do a bing bong",
                {
                    "foo": {
                        "type": "object",
                        "properties": {
                            "bar": {"type": "string", "enum": ["a", "b", "c"]},
                            "baz": {"type": "boolean"},
                        },
                    }
                },
            )
        ],
        68,
    ),
    "function_message_empty": (
        [user("hello world"), {"role": "function", "name": "do_stuff", "content": "{}"}],
        None,
        15,
    ),
    "function_message": (
        [
            user("hello world"),
            {"role": "function", "name": "do_stuff", "content": '{"foo": "bar", "baz": 1.5}'},
        ],
        None,
        28,
    ),
    "function_message_nested": (
        [{"role": "function", "name": "dance_the_tango", "content": '{"a": { "b" : { "c": false}}}'}],
        None,
        24,
    ),
    "function_call": (
        [
            {
                "role": "assistant",
                "content": "",
                "function_call": {"name": "do_stuff", "arguments": '{"foo": "bar", "baz": 1.5}'},
            }
        ],
        None,
        26,
    ),
    "function_call_newlines": (
        [
            {
                "role": "assistant",
                "content": "",
                "function_call": {"name": "do_stuff", "arguments": '{"foo":"bar", "baz":\n\n 1.5}'},
            }
        ],
        None,
        25,
    ),
    "system_and_function": (
        [{"role": "system", "content": "Hello"}, user("Hi there")],
        [function("do_stuff")],
        35,
    ),
    "system_colon_and_function": (
        [{"role": "system", "content": "Hello:"}, user("Hi there")],
        [function("do_stuff")],
        35,
    ),
    "two_systems_and_function": (
        [{"role": "system", "content": "Hello:"}, {"role": "system", "content": "Hello"}, user("Hi there")],
        [function("do_stuff")],
        40,
    ),
    "recipe": ([user("hello")], [RECIPE], 106),
}

# Cases our count misses: how far, and that the plan says it is an estimate. Each is a shape the
# two sources disagree on (nested objects, a property without a description) or only one measured.
OFF_BY = {
    "integer_enum": 1,
    "integer_enum_tool_choice_name": 1,
    "no_parameter_description_or_required": 1,
    "no_parameter_description": 1,
    "inner_object": 2,
    "inner_object_with_enum_only": 1,
    "inner_object_with_enum": 3,
    "inner_object_and_string": 3,
}


@pytest.mark.parametrize("case", sorted(PAMELAFOX))
def test_pamelafox_api_figures(case: str) -> None:
    tools, choice, measured = PAMELAFOX[case]
    plan = plan_chat([SYSTEM], tools, tool_choice=choice, model="gpt-35-turbo")
    assert count_plan(plan, "gpt-35-turbo") - measured == OFF_BY.get(case, 0)
    assert plan.estimated == (case in OFF_BY)


@pytest.mark.parametrize("case", sorted(HMARR))
def test_hmarr_api_figures(case: str) -> None:
    messages, functions, measured = HMARR[case]
    plan = plan_chat(messages, functions=functions, model="gpt-3.5-turbo")
    assert count_plan(plan, "gpt-3.5-turbo") == measured
    # Exact, but flagged where the other source's figures for the same shape disagree with ours.
    flagged = {"string_property", "two_properties", "object_property", "recipe"}
    assert plan.estimated == (case in flagged)


def test_the_rendering_is_the_one_the_api_uses() -> None:
    # hmarr/openai-chat-tokens src/functions.ts: what OpenAI puts in the prompt for a function.
    found = function_of(PAMELAFOX["string_enum"][0][0])
    assert found is not None
    assert render_functions([found]).text == (
        "namespace functions {\n"
        "\n"
        "// Summarize the customer order request\n"
        "type summarize_order = (_: {\n"
        "// Product name ordered by customer\n"
        "product_name: string,\n"
        "// Quantity ordered by customer\n"
        "quantity: number,\n"
        "// unit of measurement of the customer order\n"
        'unit: "meals" | "days",\n'
        "}) => any;\n"
        "\n"
        "} // namespace functions"
    )


@pytest.mark.parametrize(
    "tools",
    [
        [SEARCH, NO_PARAMETERS],  # several functions: no published figure
        [{"type": "function", "function": {**SEARCH["function"], "strict": True}}],
        [
            tool(
                "f",
                "d",
                {**obj({"x": {"type": "string", "description": "x"}}), "additionalProperties": False},
            )
        ],
        [tool("f", "d", obj({"x": {"type": "string", "description": "x", "default": "a"}}))],
        [tool("f", "d", obj({"x": {"type": ["string", "null"], "description": "x"}}))],
        [{"type": "custom", "custom": {"name": "apply_patch", "description": "Apply a patch"}}],
        [{"type": "web_search"}],
    ],
)
def test_unmeasured_shapes_are_flagged(tools: list[dict[str, Any]]) -> None:
    assert plan_chat([SYSTEM, user("hi")], tools, model="gpt-4").estimated


def test_a_developer_message_with_tools_is_flagged() -> None:
    developer = {"role": "developer", "content": "You are a bot."}
    assert not plan_chat([SYSTEM, user("hi")], [SEARCH], model="gpt-4").estimated
    assert plan_chat([developer, user("hi")], [SEARCH], model="gpt-4").estimated
    assert not plan_chat([developer, user("hi")], model="gpt-4").estimated  # no tools: the cookbook rule


def test_rendered_blocks_are_kept_by_content() -> None:
    # The rendered block is reused across counts (agents re-send their tools every turn), keyed by
    # the definitions' content: the same list edited in place is counted afresh, and equal
    # definitions in new objects (what openai's client builds per call) count alike.
    tools = [tool("get_weather", "Get the weather", obj({"city": {"type": "string"}}))]
    first = count_plan(plan_chat([SYSTEM], tools, model="gpt-4o"), "gpt-4o")
    tools[0]["function"]["description"] = "Get the current weather in a given city, in Celsius"
    edited = count_plan(plan_chat([SYSTEM], tools, model="gpt-4o"), "gpt-4o")
    assert edited > first
    description = "Get the current weather in a given city, in Celsius"
    rebuilt = [tool("get_weather", description, obj({"city": {"type": "string"}}))]
    assert count_plan(plan_chat([SYSTEM], rebuilt, model="gpt-4o"), "gpt-4o") == edited
    # Flags come back with the block: a hosted tool next to a function is still an estimate.
    hosted = [*rebuilt, {"type": "web_search"}]
    assert plan_chat([SYSTEM], hosted, model="gpt-4o").estimated
    assert plan_chat([SYSTEM], hosted, model="gpt-4o").estimated


def test_definitions_that_are_not_plain_data_are_rendered_each_time() -> None:
    # An object marshal cannot serialise has no content key: rendered every time, never cached.
    class Schema(dict):  # type: ignore[type-arg]
        pass

    schema = Schema({"type": "object", "properties": {"id": {"type": "string"}}})
    tools = [tool("lookup", "Find a record", schema)]
    first = count_plan(plan_chat([SYSTEM], tools, model="gpt-4o"), "gpt-4o")
    tools[0]["function"]["parameters"]["properties"]["name"] = {"type": "string"}
    assert count_plan(plan_chat([SYSTEM], tools, model="gpt-4o"), "gpt-4o") > first
