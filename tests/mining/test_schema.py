"""Parsing and repairing what LLMs write."""

from __future__ import annotations

import json

import pytest

from genrec.mining.schema import ParseError, answer_schema, parse_answer

GOOD = {"reasoning": "A hobbyist building circuits at home.",
        "interests": [{"interest": "Electronics tinkering", "evidence": "soldering"},
                      {"interest": "Home workshop projects", "evidence": "bench tool"},
                      {"interest": "Repairing instead of replacing", "evidence": "rework"}]}


def test_plain_json_parses() -> None:
    answer = parse_answer(json.dumps(GOOD))
    assert answer.reasoning == GOOD["reasoning"] and [i.interest for i in answer.interests][0] == "Electronics tinkering"


def test_json_in_prose_with_fence_trailing_commas_and_smart_quotes_is_repaired() -> None:
    items = ", ".join(json.dumps(i) for i in GOOD["interests"])
    text = f'Let me think.\n```json\n{{\u201creasoning\u201d: "A hobbyist wiring circuits.", "interests": [{items},],}}\n```\nDone.'
    assert len(parse_answer(text).interests) == 3


def test_string_interests_and_duplicates_are_normalised() -> None:
    text = json.dumps({"reasoning": "A hobbyist building circuits.", "interests": ["Outdoor science", "outdoor science", "Lab safety", "Teaching kids"]})
    assert [i.interest for i in parse_answer(text).interests] == ["Outdoor science", "Lab safety", "Teaching kids"]


@pytest.mark.parametrize("text", [
    "I think this person likes things.",
    json.dumps({"reasoning": "A hobbyist building circuits.", "interests": GOOD["interests"][:2]}),  # fewer than 3
    json.dumps({"reasoning": "A hobbyist building circuits.", "interests": [{"interest": "...", "evidence": "..."}] * 3}),  # copied placeholder
    json.dumps(GOOD)[:-30],  # cut off by max_tokens
    json.dumps({**GOOD, "reasoning": ","}),  # no reasoning: the 135M model writes "," unless the schema forbids it
])
def test_unusable_answers_raise(text: str) -> None:
    with pytest.raises(ParseError, match="unparseable"):
        parse_answer(text)


def test_schema_bounds_every_string_and_the_list() -> None:
    schema = answer_schema()
    assert schema["properties"]["reasoning"]["maxLength"] == 200
    assert schema["properties"]["interests"]["minItems"] == 3 and schema["properties"]["interests"]["maxItems"] == 8
    interest = schema["$defs"]["Interest"]
    assert interest["additionalProperties"] is False
    assert all("maxLength" in p for p in interest["properties"].values())
    assert list(schema["properties"]) == ["reasoning", "interests"]  # reasoning first: chain of thought
