"""Mining requests: Jinja templates rendered into OpenAI-style chat messages, with their hashes.

`prompt_hash` identifies the template (and the answer schema it asks for); `input_hash` identifies what
one request sends (messages, image bytes). Together with the backend and model they key the cache.
User prompts are built from `training_items(sequences)` only, so no validation or test target is ever shown.
"""

from __future__ import annotations

import base64
import hashlib
import json
import mimetypes
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import jinja2
import pandas as pd

from genrec.config import REPO_ROOT
from genrec.mining.schema import answer_schema

TEMPLATES = {"item": "item_interest.jinja", "user": "user_interest.jinja", "visual": "visual_interest.jinja"}
SYSTEM = "You are a careful analyst. You answer with a single JSON object and nothing else."


@dataclass(frozen=True)
class Request:
    """One question to an LLM about one entity."""

    kind: Literal["item", "user"]
    entity_id: str
    template: str
    prompt_hash: str
    input_hash: str
    messages: list[dict[str, Any]]


def _text(value: Any) -> str:
    """A table cell as text ('' for missing values, which pandas gives as None or NaN)."""
    return "" if value is None or (isinstance(value, float) and value != value) else str(value).strip()


def _sha(text: str | bytes) -> str:
    return hashlib.sha256(text.encode() if isinstance(text, str) else text).hexdigest()[:16]


class PromptBook:
    """The templates of one prompts folder, rendered into requests."""

    def __init__(self, folder: Path | None = None, description_chars: int = 400, history_items: int = 10):
        self.folder = Path(folder) if folder else REPO_ROOT / "prompts"
        self.env = jinja2.Environment(loader=jinja2.FileSystemLoader(self.folder), undefined=jinja2.StrictUndefined,
                                      keep_trailing_newline=True)
        self.description_chars = description_chars
        self.history_items = history_items
        schema = json.dumps(answer_schema(), sort_keys=True)
        self.hashes = {}
        for name, file in TEMPLATES.items():
            path = self.folder / file
            if not path.is_file():
                raise FileNotFoundError(f"prompt template {path} not found")
            self.hashes[name] = _sha(path.read_text() + SYSTEM + schema)

    def _item_fields(self, row: pd.Series) -> dict[str, str]:
        text = lambda key: _text(row.get(key))  # noqa: E731
        description = text("description")
        if len(description) > self.description_chars:
            description = description[: self.description_chars].rsplit(" ", 1)[0] + " ..."
        return {"title": text("title"), "brand": text("brand"), "categories": text("categories"), "description": description}

    def _request(self, kind: Literal["item", "user"], entity_id: str, template: str, context: dict[str, Any],
                 image: str | None = None) -> Request:
        prompt = self.env.get_template(TEMPLATES[template]).render(**context).strip()
        content: str | list[dict[str, Any]] = prompt
        image_digest = ""
        if image:
            url, image_digest = image_url(image)
            content = [{"type": "text", "text": prompt}, {"type": "image_url", "image_url": {"url": url}}]
        messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": content}]
        input_hash = _sha(prompt + image_digest)
        return Request(kind, entity_id, template, self.hashes[template], input_hash, messages)

    def item_request(self, row: pd.Series, vision: bool = False) -> Request:
        """The item prompt; the visual prompt with the image attached when `vision` and the item has one."""
        image = _text(row.get("image"))
        if vision and image:
            return self._request("item", str(row["item_id"]), "visual", self._item_fields(row), image)
        return self._request("item", str(row["item_id"]), "item", self._item_fields(row))

    def user_request(self, user_id: str, training: list[str], items: pd.DataFrame) -> Request:
        """The user prompt over the user's most recent training items (never a valid/test target)."""
        missing = [i for i in training if i not in items.index]
        if missing:
            raise KeyError(f"user {user_id}: unknown item ids {missing[:5]} (not in items.parquet)")
        history = [self._item_fields(items.loc[i]) for i in training[-self.history_items:]]
        return self._request("user", str(user_id), "user", {"history": history})


def image_url(image: str) -> tuple[str, str]:
    """An `image_url` for a local file (base64 data URL) or an http(s) URL (passed as is), and its digest."""
    if image.startswith(("http://", "https://", "data:")):
        return image, _sha(image)
    path = Path(image)
    if not path.is_file():
        raise FileNotFoundError(f"item image {path} not found")
    data = path.read_bytes()
    mime = mimetypes.guess_type(path.name)[0] or "image/png"
    return f"data:{mime};base64,{base64.b64encode(data).decode()}", _sha(data)
