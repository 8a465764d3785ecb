"""Parts of the tiny run folders that decoding, serving and report tests build: a SID map, curated interests,
a stand-in pretrained LM and random checkpoints (importable from any test: pytest puts tests/ on the path for its
conftest)."""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd
import torch

from genrec.artifacts import RunPaths
from genrec.data import DataConfig
from genrec.data import run as run_data
from genrec.model import ModelConfig, ScratchConfig, build_model, codes_to_sid, save_checkpoint, sid_vocabulary

RING_ITEMS, RING_USERS = 12, 36
Labelled = tuple[str, str, str, float, int]  # kind ("user" or "item"), entity id, interest, score, label


def write_sid_map(paths: RunPaths, codes: Sequence[Sequence[int]]) -> pd.DataFrame:
    """Item `str(i)` gets the SID of `codes[i]`; the map is written where the run keeps it, and returned."""
    sid_map = pd.DataFrame({"item_id": [str(i) for i in range(len(codes))], "codes": [list(c) for c in codes],
                            "sid": [codes_to_sid(c) for c in codes]})
    paths.sid_map.parent.mkdir(parents=True, exist_ok=True)
    sid_map.to_parquet(paths.sid_map, index=False)
    return sid_map


def random_sid_map(rng: random.Random, n_items: int, sizes: tuple[int, int, int]) -> pd.DataFrame:
    """`n_items` distinct random 3-level SIDs (level l's code below `sizes[l]`) for items "0", "1", ..."""
    codes: set[tuple[int, ...]] = set()
    while len(codes) < n_items:
        codes.add(tuple(rng.randrange(size) for size in sizes))
    return pd.DataFrame({"item_id": [str(n) for n in range(n_items)], "sid": [codes_to_sid(c) for c in sorted(codes)]})


def write_labelled_interests(paths: RunPaths, rows: Iterable[Labelled]) -> None:
    """Curated interests as the label stage writes them (every column, one mining model, threshold 0.5)."""
    labelled = pd.DataFrame([{"kind": kind, "entity_id": entity, "interest": interest, "evidence": "",
                              "reasoning": "", "models": ["test"], "agreement": 1, "prompt_hash": "p", "score": score,
                              "label": label, "threshold": 0.5} for kind, entity, interest, score, label in rows])
    paths.interests_labelled.parent.mkdir(parents=True, exist_ok=True)
    labelled.to_parquet(paths.interests_labelled, index=False)


def save_random_checkpoint(sid_map: pd.DataFrame, path: Path, scratch: ScratchConfig, seed: int = 0,
                           std: float = 0.4) -> Path:
    """An untrained float32 scratch model over the map's SIDs with N(0, std) weights: peaked enough that beams
    (and models of different seeds) are well apart. Returns the checkpoint folder."""
    model, tokenizer, info = build_model(ModelConfig(kind="scratch", scratch=scratch),
                                         sid_vocabulary(sid_map["sid"]), sid_levels=3)
    torch.manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            param.normal_(0.0, std)
    return save_checkpoint(model, tokenizer, info, path)


TINY_LM_WORDS = ["<unk>", "<s>", "</s>", "Purchase", "history,", "oldest", "first:", "Next", "item:", "Item:", "Semantic",
                 "ID:", "title:", "The", "user's", "interests:", "(none)", "camping", "stove", "item"]


def save_tiny_causal_lm(folder: Path) -> Path:
    """A stand-in pretrained LM folder: a word-level tokenizer over the words genrec's prompts use (plus
    "camping", "stove") and a random 1-layer Llama. Returns the folder."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    core = Tokenizer(models.WordLevel({w: i for i, w in enumerate(TINY_LM_WORDS)}, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, unk_token="<unk>", bos_token="<s>", eos_token="</s>")
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(TINY_LM_WORDS), hidden_size=16, intermediate_size=32,
                                         num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2,
                                         tie_word_embeddings=True, bos_token_id=1, eos_token_id=2))
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def save_random_interest_llm(sid_map: pd.DataFrame, path: Path, base: Path, seed: int = 0, std: float = 1.0):
    """An untrained `llm` checkpoint over the map's SIDs, built on `base`, whose prompts carry the user's
    interests (as if trained with `sft.model.interests: true`), with N(0, std) weights. Returns (model,
    tokenizer, info) as saved."""
    model, tokenizer, info = build_model(ModelConfig(kind="llm", base_model=str(base), interests=True),
                                         sid_vocabulary(sid_map["sid"]), sid_levels=3)
    torch.manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            param.normal_(0.0, std)
    save_checkpoint(model, tokenizer, info, path)
    return model, tokenizer, info


def build_category_run(root: Path, users: int, data_seed: int, model_seed: int) -> Path:
    """A run folder under `root`: `users` users with 6 of 40 items each (category `i % 4` of Tapes, Gloves,
    Meters, Glue, which is also the item's first-level code), their split, a SID map and a random scratch
    checkpoint."""
    import json

    from genrec.data import DataConfig
    from genrec.data import run as prepare_data

    folder, run_dir = root / "dataset", root / "run"
    folder.mkdir(parents=True)
    rng = random.Random(data_seed)
    (folder / "T.inter.json").write_text(json.dumps({str(u): rng.sample(range(40), 6) for u in range(users)}))
    cats = ["Lab,Tapes", "Lab,Gloves", "Lab,Meters", "Lab,Glue"]
    (folder / "T.item.json").write_text(json.dumps({str(i): {"title": f"t{i}", "categories": cats[i % 4]}
                                                    for i in range(40)}))
    prepare_data(DataConfig(path=folder), run_dir)
    paths = RunPaths(run_dir)
    sid_map = write_sid_map(paths, [(i % 4, (i // 4) % 5, i // 20) for i in range(40)])
    save_random_checkpoint(sid_map, paths.sft_ckpt, ScratchConfig(hidden=32, layers=1, heads=2, intermediate=64),
                           seed=model_seed)
    return run_dir


def write_ring_run(root: Path) -> Path:
    """A run folder (data/ and sid/) whose users walk the item ring 0,1,2,...; every item gets a 3-level SID.
    Each next item is determined by the last one, so a trained model must rank it first."""
    rows = [{"user_id": f"u{u}", "item_id": f"i{(u + t) % RING_ITEMS}", "timestamp": t}
            for u in range(RING_USERS) for t in range(5 + u % 3)]
    root.mkdir(parents=True)
    pd.DataFrame(rows).to_csv(root / "inter.csv", index=False)
    meta = [{"item_id": f"i{i}", "title": f"camping item {i}"} for i in range(RING_ITEMS)]
    (root / "items.jsonl").write_text("".join(json.dumps(m) + "\n" for m in meta))
    run_dir = root / "run"
    run_data(DataConfig(interactions=root / "inter.csv", item_meta=root / "items.jsonl"), run_dir)
    codes = [[i % 2, (i // 2) % 3, i // 6] for i in range(RING_ITEMS)]
    sid_map = pd.DataFrame({"item_id": [f"i{i}" for i in range(RING_ITEMS)], "codes": codes,
                            "sid": [codes_to_sid(c) for c in codes]})
    RunPaths(run_dir).sid_map.parent.mkdir(parents=True)
    sid_map.to_parquet(RunPaths(run_dir).sid_map)
    return run_dir
