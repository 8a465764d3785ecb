"""vLLM constrained beam search: the beam bookkeeping, and parity with the transformers path on a tiny model."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from tiny_runs import random_sid_map, save_random_checkpoint

from genrec.artifacts import RunPaths
from genrec.data import DataConfig
from genrec.data import run as prepare_data
from genrec.decode.trie import SidTrie
from genrec.decode.vllm_beam import MAX_IDS_PER_REQUEST, Beam, advance, finish, plan_step
from genrec.model import ScratchConfig, build_prompt_ids, load_checkpoint


def toy_trie() -> SidTrie:
    # root allows 130 tokens (> 128: split over two requests), then 2 and 1 per level
    seqs = [[10 + a, 200 + b, 300] for a in range(130) for b in range(2)]
    return SidTrie([f"i{n}" for n in range(len(seqs))], seqs, eos_token_id=2)


def test_plan_step_splits_large_allowed_sets() -> None:
    trie = toy_trie()
    queries = plan_step([[1, 5]], [[Beam((), 0.0)]], trie)
    assert [len(q.allowed) for q in queries] == [MAX_IDS_PER_REQUEST, 130 - MAX_IDS_PER_REQUEST]
    assert sorted(t for q in queries for t in q.allowed) == trie.allowed([])
    assert all(q.token_ids == [1, 5] for q in queries)
    deeper = plan_step([[1, 5], [7]], [[Beam((10,), -1.0), Beam((11,), -2.0)], [Beam((12, 201), -0.5)]], trie)
    assert [(q.request, q.beam, q.token_ids, q.allowed) for q in deeper] == [
        (0, 0, [1, 5, 10], [200, 201]), (0, 1, [1, 5, 11], [200, 201]), (1, 0, [7, 12, 201], [300])]


def test_advance_keeps_best_beams_with_summed_raw_logprobs() -> None:
    trie = toy_trie()
    beams = [[Beam((10,), -1.0), Beam((11,), -0.1)]]
    queries = plan_step([[1]], beams, trie)
    logprobs = [{200: -0.5, 201: -3.0, 99: -0.01}, {200: -2.0, 201: -0.2}]  # 99: vLLM's sampled token, not allowed
    kept = advance(beams, queries, logprobs, num_beams=3)
    assert [(b.tokens, round(b.score, 6)) for b in kept[0]] == [((11, 201), -0.3), ((10, 200), -1.5), ((11, 200), -2.1)]
    done = advance(kept, plan_step([[1]], kept, trie), [{300: -1.0}] * 3, num_beams=3)
    assert finish(done[0], trie, k=2) == [(trie.item_for([11, 201, 300]), pytest.approx(-1.3)),
                                         (trie.item_for([10, 200, 300]), pytest.approx(-2.5))]


def test_finish_rejects_incomplete_beams() -> None:
    with pytest.raises(ValueError, match="not a complete SID"):
        finish([Beam((10, 200), 0.0)], toy_trie(), k=1)


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    """A float32 scratch checkpoint over 300 items whose root level has 140 codes (> 128)."""
    sid_map = random_sid_map(random.Random(0), 300, (140, 8, 4))
    path = save_random_checkpoint(sid_map, tmp_path_factory.mktemp("ckpt") / "ckpt",
                                  ScratchConfig(hidden=64, layers=2, heads=2, intermediate=128))
    return path, sid_map


@pytest.fixture(scope="module")
def engine(tiny_checkpoint: tuple[Path, pd.DataFrame]):
    """One in-process vLLM engine for this module's parity tests, with the HF model and prompts it must match."""
    pytest.importorskip("vllm")
    from genrec.decode.vllm_beam import VllmBeamSearch

    path, sid_map = tiny_checkpoint
    model, tokenizer, info = load_checkpoint(path)
    trie = SidTrie.from_sid_map(sid_map, tokenizer)
    rng = random.Random(1)
    prompts = [build_prompt_ids(tokenizer, info, rng.sample(list(sid_map["sid"]), rng.randint(1, 12))) for _ in range(12)]
    return VllmBeamSearch.from_checkpoint(path, trie, enforce_eager=True), model, trie, prompts, tokenizer


@pytest.mark.vllm
@pytest.mark.slow
def test_vllm_matches_hf_beam_search(engine, tiny_checkpoint: tuple[Path, pd.DataFrame]) -> None:
    from genrec.decode.hf_beam import constrained_beam_search

    search, model, trie, prompts, _ = engine
    sid_map = tiny_checkpoint[1]
    expected = constrained_beam_search(model, prompts, trie, num_beams=20, k=10, batch_size=12)
    got = search.search(prompts, num_beams=20, k=10, batch_size=5)  # several engine batches

    known = set(sid_map["item_id"])
    for want, have in zip(expected, got, strict=True):
        assert len(have) == 10 and len({i for i, _ in have}) == 10 and {i for i, _ in have} <= known
        assert [i for i, _ in have] == [i for i, _ in want]
        assert [s for _, s in have] == pytest.approx([s for _, s in want], abs=1e-4)
    with pytest.raises(ValueError, match="k <= num_beams"):
        search.search(prompts[:1], num_beams=5, k=6)


@pytest.mark.vllm
@pytest.mark.slow
def test_vllm_interest_decoding_matches_hf(engine, tiny_checkpoint: tuple[Path, pd.DataFrame]) -> None:
    """Interest-conditioned decoding (>= 4 code groups of unequal widths, 140 root codes > 128 ids a request,
    ~2 items a code so more codes join until they hold k items): same items, scores, interests on both engines."""
    from collections import Counter

    from genrec.decode.hf_beam import interest_beam_search
    from genrec.decode.interest import CodeSpace, top_codes
    from genrec.decode.interest_sources import first_codes

    search, model, trie, prompts, tokenizer = engine
    sizes = dict(Counter(first_codes(tiny_checkpoint[1], tokenizer).values()))
    select = top_codes(4, CodeSpace({}, sizes, k=10, max_groups=10))
    expected = interest_beam_search(model, prompts, trie, num_beams=20, k=10, batch_size=12, select=select)
    got = search.search_interest(prompts, num_beams=20, k=10, select=select, batch_size=5)
    for want, have in zip(expected, got, strict=True):
        assert len(have) == 10 and len({r.item for r in have}) == 10
        assert [(r.item, r.interest) for r in have] == [(r.item, r.interest) for r in want]
        assert [r.score for r in have] == pytest.approx([r.score for r in want], abs=1e-4)
        assert len({r.code for r in have}) >= 4


@pytest.mark.vllm
@pytest.mark.slow
def test_vllm_coverage_merge_matches_hf(engine, tiny_checkpoint: tuple[Path, pd.DataFrame]) -> None:
    """`coverage` merging decodes the plain group (no forced prefix) beside the code groups (one forced level) in
    the same batch: same items, scores and interests on both engines."""
    from collections import Counter

    from genrec.decode.hf_beam import interest_beam_search
    from genrec.decode.interest import CodeSpace, MergeRule, top_codes
    from genrec.decode.interest_sources import first_codes

    search, model, trie, prompts, tokenizer = engine
    sizes = dict(Counter(first_codes(tiny_checkpoint[1], tokenizer).values()))
    select, rule = top_codes(4, CodeSpace({}, sizes, k=10, max_groups=10)), MergeRule("coverage", 0.5)
    expected = interest_beam_search(model, prompts, trie, num_beams=20, k=10, batch_size=12, select=select, rule=rule)
    got = search.search_interest(prompts, num_beams=20, k=10, select=select, batch_size=5, rule=rule)
    for want, have in zip(expected, got, strict=True):
        assert len(have) == 10 and len({r.item for r in have}) == 10
        assert [(r.item, r.interest, r.code) for r in have] == [(r.item, r.interest, r.code) for r in want]
        assert [r.score for r in have] == pytest.approx([r.score for r in want], abs=1e-4)


@pytest.mark.vllm
@pytest.mark.slow
def test_vllm_prompt_conditioned_decoding_matches_hf(engine) -> None:
    """Prompt-conditioned interests (each group decodes the whole catalogue from its own prompt, groups overlap;
    one user has none and gets the plain search): same items, scores, interests on both engines."""
    from genrec.decode.hf_beam import interest_beam_search
    from genrec.decode.interest import GivenPicks, prompt_picks

    search, model, trie, prompts, _ = engine
    n = len(trie.item_ids)
    chosen = [prompt_picks([("a", 0.9, prompts[(r + 1) % 12]), ("b", 0.5, prompts[(r + 5) % 12]),
                            ("c", 0.2, prompts[r])], n) if r % 4 else prompt_picks([], n) for r in range(12)]
    expected = interest_beam_search(model, prompts, trie, num_beams=20, k=10, batch_size=12,
                                    select=GivenPicks(chosen))
    got = []
    for start in range(0, 12, 6):  # the select covers the whole batch it is given
        got += search.search_interest(prompts[start:start + 6], num_beams=20, k=10,
                                      select=GivenPicks(chosen[start:start + 6]), batch_size=6)
    for want, have in zip(expected, got, strict=True):
        assert len(have) == 10 and len({r.item for r in have}) == 10
        assert [(r.item, r.interest) for r in have] == [(r.item, r.interest) for r in want]
        assert [r.score for r in have] == pytest.approx([r.score for r in want], abs=1e-4)
    assert {r.interest for recs in got for r in recs} >= {"a", "b"}


@pytest.mark.vllm
@pytest.mark.slow
def test_recommend_engine_vllm_writes_the_hf_recs(tiny_checkpoint: tuple[Path, pd.DataFrame], tmp_path: Path) -> None:
    """`genrec recommend --engine vllm` (a real CLI process) writes the same recs.jsonl as the hf engine."""
    pytest.importorskip("vllm")
    from genrec.decode import RecommendConfig
    from genrec.decode import run as recommend
    from genrec.eval import evaluate_file
    from genrec.eval.recs import read_recs

    ckpt, sid_map = tiny_checkpoint
    folder, run_dir = tmp_path / "dataset", tmp_path / "run"
    folder.mkdir()
    rng = random.Random(2)
    (folder / "T.inter.json").write_text(json.dumps({str(u): rng.sample(range(60), 6) for u in range(10)}))
    (folder / "T.item.json").write_text(json.dumps({str(i): {"title": f"t{i}"} for i in range(60)}))
    prepare_data(DataConfig(path=folder), run_dir)
    paths = RunPaths(run_dir)
    paths.sid_map.parent.mkdir()
    sid_map.to_parquet(paths.sid_map, index=False)  # 300 SIDs; the trie keeps the 60 catalogue items
    shutil.copytree(ckpt, paths.sft_ckpt)

    recommend(RecommendConfig(system="hf", num_beams=20, k=10), run_dir)
    cmd = [sys.executable, "-m", "genrec.cli", "recommend", "--engine", "vllm", "--set", f"run_dir={run_dir}",
           "--set", "recommend.system=vllm", "--set", "recommend.k=10", "--set", "recommend.enforce_eager=true"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]

    hf, vllm = read_recs(paths.recs("hf")), read_recs(paths.recs("vllm"))
    assert len(hf) == 10 and hf == vllm
    assert all(set(items) <= {str(i) for i in range(60)} for items in vllm.values())
    hf_scores = [s for line in paths.recs("hf").read_text().splitlines() for s in json.loads(line)["scores"]]
    vllm_scores = [s for line in paths.recs("vllm").read_text().splitlines() for s in json.loads(line)["scores"]]
    assert len(vllm_scores) == 100 and vllm_scores == pytest.approx(hf_scores, abs=1e-3)
    assert evaluate_file(paths.recs("vllm"), run_dir) == evaluate_file(paths.recs("hf"), run_dir)
