"""The answer every mining prompt asks for, and the parser that repairs what small LLMs actually write.

Chain of thought: `reasoning` comes first, so a model constrained to the schema reasons before it names
interests. String lengths are bounded so a constrained answer always fits in `max_tokens`.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

MIN_INTERESTS, MAX_INTERESTS = 3, 8


class Interest(BaseModel):
    """One deep interest (need, motivation, use context, lifestyle) and the evidence for it."""

    model_config = ConfigDict(extra="ignore")
    interest: str = Field(min_length=3, max_length=50)
    evidence: str = Field(min_length=1, max_length=80)

    @field_validator("interest")
    @classmethod
    def _has_words(cls, value: str) -> str:
        """Reject placeholders copied from the prompt ("...", "<phrase>")."""
        if sum(ch.isalpha() for ch in value) < 3 or value.strip().startswith("<"):
            raise ValueError(f"not an interest: {value!r}")
        return value.strip()


class MinedInterests(BaseModel):
    """A mining answer: reasoning first, then 3–8 interests."""

    model_config = ConfigDict(extra="ignore")
    reasoning: str = Field(min_length=20, max_length=200)  # at least a sentence: the 135M default writes "," otherwise
    interests: list[Interest] = Field(min_length=MIN_INTERESTS, max_length=MAX_INTERESTS)


class ParseError(ValueError):
    """An answer that cannot be turned into `MinedInterests`, even after repair."""


def answer_schema() -> dict[str, Any]:
    """JSON schema of the answer (drives vLLM / OpenAI structured outputs)."""
    schema = MinedInterests.model_json_schema()
    schema["additionalProperties"] = False
    schema["$defs"]["Interest"]["additionalProperties"] = False
    return schema


def _json_candidates(text: str) -> list[str]:
    """The text itself, then a fenced block, then every balanced `{...}` span, leftmost first."""
    candidates = [text.strip()]
    fence = re.search(r"```(?:json)?\s*(.*?)```", text, re.S)
    if fence:
        candidates.append(fence.group(1).strip())
    for start in (m.start() for m in re.finditer(r"\{", text)):
        depth, in_str, esc = 0, False, False
        for i in range(start, len(text)):
            ch = text[i]
            if in_str:
                esc = ch == "\\" and not esc
                if ch == '"' and not esc:
                    in_str = False
                continue
            if ch == '"':
                in_str = True
            elif ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
                if depth == 0:
                    candidates.append(text[start:i + 1])
                    break
    return candidates


def _repair(text: str) -> str:
    """Common small-model slips: trailing commas, smart quotes, Python literals."""
    text = text.replace("\u201c", '"').replace("\u201d", '"').replace("\u2019", "'")
    text = re.sub(r",\s*([}\]])", r"\1", text)
    return re.sub(r"\bNone\b", "null", re.sub(r"\bTrue\b", "true", re.sub(r"\bFalse\b", "false", text)))


def _normalise(obj: Any) -> Any:
    """Accept a near-miss of the shape: interests given as plain strings."""
    if not isinstance(obj, dict) or not isinstance(obj.get("interests"), list):
        return obj
    entries = [{"interest": e, "evidence": e} if isinstance(e, str) else e for e in obj["interests"]]
    return {**obj, "interests": entries}


def _unique(answer: MinedInterests) -> MinedInterests:
    """Drop repeated interests (small models repeat one phrase); the answer itself was schema-valid."""
    seen: set[str] = set()
    kept = []
    for interest in answer.interests:
        if interest.interest.lower() not in seen:
            seen.add(interest.interest.lower())
            kept.append(interest)
    return answer.model_copy(update={"interests": kept})


def parse_answer(text: str) -> MinedInterests:
    """Parse an LLM answer into `MinedInterests` (3–8 interests as written, repeats then dropped), repairing
    what can be repaired; raises `ParseError`."""
    problems = []
    for candidate in _json_candidates(text):
        for attempt in (candidate, _repair(candidate)):
            try:
                return _unique(MinedInterests.model_validate(_normalise(json.loads(attempt))))
            except json.JSONDecodeError as exc:
                problems.append(f"not JSON ({exc.msg})")
            except ValidationError as exc:
                problems.append(f"wrong shape ({exc.errors()[0]['loc']}: {exc.errors()[0]['msg']})")
    shape = [p for p in problems if p.startswith("wrong shape")]
    reason = (shape or problems or ["no JSON object found"])[0]
    raise ParseError(f"unparseable answer: {reason}")
