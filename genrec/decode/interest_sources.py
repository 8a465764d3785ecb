"""Where interest-conditioned decoding gets its interests from: the run's files turned into a `select`.

`codes`: the decoder's own top first-level codes, named by their items' most common category.
`mined`: the users' curated interests (`label/interests_labelled.parquet`, label 1), mapped to codes through
the item text embeddings of `embed/item_emb.safetensors` (a code's vector = mean of its items' vectors) and
the same sentence encoder for the interest texts.
`mined_prompt`: the same curated interests fed as text: per interest, the user's prompt conditioned on it alone
(an `llm` checkpoint trained with interests in its prompt), weighted by the classifier's score (`prompt_picks`).
`gemirec`: a trained GemiRec of the same run (`multi/<interest_model>/model.pt`) reads each user's history as the
decoder sees it and predicts the next dictionary interests; each maps to the first-level codes of the items its
refined interest vector retrieves (`GemiRecInterests`, `dictionary_picks`).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from genrec.artifacts import RunPaths
from genrec.decode.interest import (CodeSpace, DictionaryInterest, GivenPicks, MinedInterestCodes, Select,
                                    code_labels, dictionary_codes, prompt_picks, top_codes)
from genrec.model.config import ModelInfo

# (a batch's users and their histories as the decoder sees them, in prompt order; k) -> the batch's `select`
SelectFor = Callable[[Sequence[str], Sequence[Sequence[str]], int], Select]
# (a history as the decoder sees it, interests) -> the checkpoint's prompt ids for it
PromptFor = Callable[[Sequence[str], Sequence[str]], list[int]]


def first_codes(sid_map: pd.DataFrame, tokenizer) -> dict[str, int]:
    """item id -> token id of its SID's first level."""
    from genrec.model.tokenizer import sid_token_ids

    return {str(i): sid_token_ids(tokenizer, sid)[0] for i, sid in zip(sid_map["item_id"], sid_map["sid"], strict=True)}


def gemirec_model_path(run_dir: Path, system: str) -> Path:
    """The model `genrec multi train` saved for multi system `system` (genrec.multi.stage.model_path); a
    missing one fails here, naming the command that makes it."""
    path = RunPaths(Path(run_dir)).stage_dir("multi") / system / "model.pt"
    if not path.is_file():
        raise FileNotFoundError(f"interest_source=gemirec needs {path}: run `genrec multi train` with "
                                f"multi.model.model=gemirec and multi.system={system} first")
    return path


def source_inputs(source: str, run_dir: Path, interest_model: str = "multi_gemirec") -> list[Path]:
    """Files a source reads (for the stage's input hashes); gemirec's model must exist."""
    paths = RunPaths(Path(run_dir))
    if source == "gemirec":
        return [gemirec_model_path(run_dir, interest_model)]
    return {"mined": [paths.interests_labelled, paths.item_emb], "mined_prompt": [paths.interests_labelled]}.get(source, [])


class GemiRecInterests:
    """A trained GemiRec predicting users' next dictionary interests from the histories the decoder sees.

    Per user: the posterior's `walk` most probable dictionary codes; each code, refined by GemiRec's attention
    read of the history, scores the catalogue, and the first-level SID codes of its top `top_items` items
    give the interest's shares. Histories are the prompts' (the recommend stage's test-row histories, or a
    request's), so no target is read; a history without a known item gets no dictionary interest.
    """

    def __init__(self, path: Path, first: Mapping[str, int], walk: int) -> None:
        import torch

        from genrec.multi.gemirec import GemiRec
        from genrec.multi.train import load_model

        model, inputs, _ = load_model(Path(path))
        if not isinstance(model, GemiRec) or not model.cfg.generative:
            raise ValueError(f"{path} is not a GemiRec with a generative posterior (multi.model.model=gemirec, "
                             "dictionary and generative on)")
        self.model = model
        self.walk = min(walk, model.codebook.shape[0])
        self.row = {item: n + 1 for n, item in enumerate(inputs.item_ids)}
        self.column_code = torch.tensor([first.get(item, -1) for item in inputs.item_ids], dtype=torch.int64)

    def __call__(self, histories: Sequence[Sequence[str]], top_items: int) -> list[list[DictionaryInterest]]:
        """Each history's dictionary interests, most probable first."""
        import torch

        from genrec.data.tensors import left_pad

        max_len = self.model.cfg.max_len
        rows = [[self.row[i] for i in history if i in self.row][-max_len:] for history in histories]
        known = [n for n, r in enumerate(rows) if r]
        out: list[list[DictionaryInterest]] = [[] for _ in histories]
        if not known:
            return out
        model = self.model
        with torch.no_grad():
            seq = left_pad([rows[n] for n in known], max(len(rows[n]) for n in known))
            h, mask = model.history(seq)
            probs = torch.softmax(model.posterior(model.extractor(h, mask), h), dim=-1)
            top_probs, codes = probs.topk(self.walk, dim=-1)
            scores = model.code_vectors(h, mask, codes) @ model.items.T  # [B, walk, items]
            scores[..., self.column_code < 0] = -torch.inf  # items outside the decoder's catalogue
            firsts = self.column_code[scores.topk(min(top_items, int((self.column_code >= 0).sum())), dim=-1).indices]
        for n, user_probs, user_firsts in zip(known, top_probs.tolist(), firsts.tolist(), strict=True):
            for prob, retrieved in zip(user_probs, user_firsts, strict=True):
                counts = Counter(retrieved)
                out[n].append(DictionaryInterest(prob, {c: counts[c] / len(retrieved) for c in sorted(counts)}))
        return out


def item_text_vectors(path: Path, item_ids: Sequence[str]) -> tuple[np.ndarray, str | None]:
    """The `text` rows of `item_emb.safetensors` for these items, in this order, and the encoder folder that
    made them (None: the default all-MiniLM-L6-v2)."""
    from safetensors import safe_open

    if not Path(path).is_file():
        raise FileNotFoundError(f"interest_source=mined needs {path} (run `genrec embed`)")
    with safe_open(str(path), framework="numpy") as f:
        order = {item: row for row, item in enumerate(json.loads(f.metadata()["item_ids"]))}
        text = f.get_tensor("text")
        model = f.metadata().get("model", "")
    missing = [i for i in item_ids if i not in order]
    if missing:
        raise KeyError(f"{path}: no embedding for item {missing[0]!r} ({len(missing)} missing)")
    return text[[order[i] for i in item_ids]], (model if Path(model).is_dir() else None)


def prompt_conditioned(m: int, catalogue: int, run_dir: Path, users: Sequence[str], info: ModelInfo | None,
                       prompt_for: PromptFor | None) -> tuple[SelectFor, dict[str, float]]:
    """Source `mined_prompt`: each batch user's (up to m) curated interests as prompt-conditioned picks."""
    from genrec.model.sources import scored_user_interests

    if info is None or prompt_for is None or info.kind != "llm" or not info.interests:
        raise ValueError("interest_source=mined_prompt needs an llm checkpoint trained with interests in its prompt "
                         "(sft.model.kind: llm with sft.model.interests: true), so an interest's text can condition "
                         "the prompt; a scratch decoder reads SIDs only (use interest_source=mined)")
    wanted = set(users)
    curated = {u: pairs for u, pairs in scored_user_interests(RunPaths(Path(run_dir)).interests_labelled, m).items()
               if u in wanted}

    def select_for(batch: Sequence[str], histories: Sequence[Sequence[str]], _k: int) -> Select:
        return GivenPicks([prompt_picks([(text, score, prompt_for(history, [text])) for text, score in
                                          curated.get(user, [])], catalogue)
                            for user, history in zip(batch, histories, strict=True)])

    return select_for, {"users_with_interests": len(curated),
                        "interest_texts": len({t for pairs in curated.values() for t, _ in pairs})}


def interest_selector(source: str, m: int, num_beams: int, run_dir: Path, sid_map: pd.DataFrame, tokenizer,
                      users: Sequence[str], threads: int = 1, interest_model: str = "multi_gemirec",
                      info: ModelInfo | None = None,
                      prompt_for: PromptFor | None = None) -> tuple[SelectFor, dict[str, float]]:
    """The `select` factory of a source over the catalogue in `sid_map` (m interests and num_beams beams a
    user; the list length k comes with each batch), and counts to report; `users`: who will be served;
    `info` and `prompt_for` (the checkpoint's prompt info and prompt builder) are read by `mined_prompt`."""
    from genrec.data import load_items

    if m == 0:  # no interest groups (interest_order=coverage re-ranks the plain beam's items): no first-step pass
        return (lambda _users, histories, _k: GivenPicks([[] for _ in histories])), {}
    items = load_items(run_dir)
    first = first_codes(sid_map, tokenizer)
    labels = code_labels(first, dict(zip(items["item_id"].astype(str), items["categories"].fillna(""), strict=True)))
    sizes = dict(Counter(first.values()))

    def space(k: int) -> CodeSpace:
        return CodeSpace(labels, sizes, k, num_beams // 2)

    if source == "codes":
        return (lambda _users, _histories, k: top_codes(m, space(k))), {"codes": len(labels)}
    if source == "mined_prompt":
        select_for, counts = prompt_conditioned(m, len(first), run_dir, users, info, prompt_for)
        return select_for, {"codes": len(labels), **counts}
    if source == "gemirec":
        predict = GemiRecInterests(gemirec_model_path(run_dir, interest_model), first, walk=4 * m)
        return (lambda _users, histories, k: dictionary_codes(m, space(k), predict(histories, k))), {
            "codes": len(labels), "dictionary_codes": int(predict.model.codebook.shape[0])}
    if source != "mined":
        raise ValueError(f"unknown interest_source {source!r} (codes, mined, mined_prompt or gemirec)")
    from genrec.embed.encode import encode, load_encoder
    from genrec.model.sources import user_interests

    curated = user_interests(RunPaths(Path(run_dir)).interests_labelled, limit=m)
    wanted = set(users)
    curated = {u: texts for u, texts in curated.items() if u in wanted}
    item_ids = list(first)
    vectors, encoder = item_text_vectors(RunPaths(Path(run_dir)).item_emb, item_ids)
    codes = sorted(set(first.values()))
    row = {c: n for n, c in enumerate(codes)}
    centroids = np.zeros((len(codes), vectors.shape[1]), np.float32)
    np.add.at(centroids, [row[first[i]] for i in item_ids], vectors)
    texts = sorted({t for ts in curated.values() for t in ts})
    encoded = encode(load_encoder(encoder, 128, threads), texts, 64, "interest texts") if texts else np.zeros((0, 1))
    vectors_of = dict(zip(texts, encoded, strict=True))
    counts = {"codes": len(labels), "users_with_interests": len(curated), "interest_texts": len(texts)}
    return (lambda batch, _histories, k: MinedInterestCodes(m, space(k), codes, centroids, vectors_of).for_users(
        [curated.get(u, []) for u in batch])), counts
