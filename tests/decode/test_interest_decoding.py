"""Interest-conditioned decoding: slot allocation, merging, exactness of the transformers path, the sources
and the recommend stage with `decoding: interest`."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from tiny_runs import build_category_run, save_random_interest_llm, write_labelled_interests

from genrec.artifacts import RunPaths
from genrec.decode.hf_beam import constrained_beam_search, interest_beam_search, root_logprobs
from genrec.decode.interest import (HISTORY_ONLY, CodeSpace, DictionaryInterest, GivenPicks, Group, MergeRule,
                                    MinedInterestCodes, Pick, allocate, check_interest_args, code_labels,
                                    dictionary_picks, merge, plan_groups, prompt_picks, top_codes)
from genrec.decode.trie import SidTrie
from genrec.model.build import build_model
from genrec.model.config import ModelConfig, ScratchConfig
from genrec.model.prompt import build_prompt_ids
from genrec.model.sid_tokens import codes_to_sid, sid_vocabulary
from genrec.model.tokenizer import sid_token_ids


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    codes = list(itertools.product(range(3), range(3), range(2)))  # each first-level code holds 6 items
    sids = [codes_to_sid(c) for c in codes]
    config = ModelConfig(scratch=ScratchConfig(hidden=32, layers=1, heads=2, intermediate=64))
    model, tokenizer, info = build_model(config, sid_vocabulary(sids), sid_levels=3)
    model.eval()
    with torch.no_grad():  # peaked, so no float ties between beams
        for param in model.parameters():
            param.normal_(0.0, 0.4)
    trie = SidTrie.from_sid_map(pd.DataFrame({"item_id": [f"it{i}" for i in range(18)], "sid": sids}), tokenizer)
    prompts = [build_prompt_ids(tokenizer, info, sids[:n]) for n in (1, 4, 2, 6, 3)]
    tokens = {f"it{i}": sid_token_ids(tokenizer, s) for i, s in enumerate(sids)}
    return model, trie, prompts, tokens


def exact(model, prompt: list[int], tokens: dict[str, list[int]]) -> dict[str, float]:
    """Brute force log p(SID | prompt) of every item."""
    out = {}
    for item, ids in tokens.items():
        with torch.no_grad():
            logp = torch.log_softmax(model(torch.tensor([prompt + ids])).logits[0].float(), -1)
        out[item] = sum(logp[len(prompt) - 1 + j, t].item() for j, t in enumerate(ids))
    return out


def test_allocate_gives_each_group_its_minimum_and_the_rest_by_weight() -> None:
    assert allocate(20, [0.7, 0.2, 0.1], minimum=2) == [12, 5, 3]
    assert allocate(10, [0.5, 0.5]) == [5, 5]
    assert allocate(3, [0.98, 0.01, 0.01]) == [1, 1, 1]
    assert allocate(20, [0.7, 0.2, 0.1], minimum=2, caps=[4, 100, 1]) == [4, 14, 2]  # caps: spare beams move on
    assert allocate(20, [0.5, 0.5], minimum=2, caps=[3, 4]) == [3, 4]  # every group full: the rest unused
    assert sum(allocate(17, [0.4, 0.33, 0.27], minimum=2)) == 17
    with pytest.raises(ValueError, match="cannot give 3 groups 2"):
        allocate(5, [1, 1, 1], minimum=2)
    with pytest.raises(ValueError, match="num_interests"):
        check_interest_args(num_beams=20, k=10, m=11)


def test_plan_and_merge() -> None:
    root = [{7: np.log(0.6), 8: np.log(0.2), 9: np.log(0.2)}]
    picks = [Pick(7, "tapes", 50, root[0][7]), Pick(8, "gloves", 50, root[0][8])]  # the decoder's probabilities
    groups = plan_groups([picks], root, num_beams=10, k=4)
    assert [(g.interest, g.prefix, g.beams, g.quota) for g in groups] == [("tapes", (7,), 7, 3), ("gloves", (8,), 3, 1)]
    assert [g.weight for g in groups] == pytest.approx([0.75, 0.25])
    # a source's own probabilities (e.g. GemiRec's posterior) set the weights; beams still start from the decoder
    own = plan_groups([[Pick(8, "gloves", 50, np.log(0.5)), Pick(7, "tapes", 50, np.log(0.5))]], root, 10, 4)
    assert [(g.weight, g.beams, g.quota, g.prefix_score) for g in own] == [(0.5, 5, 2, root[0][8]),
                                                                           (0.5, 5, 2, root[0][7])]
    results = [[("a", -1.0), ("b", -2.0), ("c", -3.0), ("d", -9.0)], [("e", -4.0), ("f", -2.5)]]
    merged = merge(groups, results, 1, k=4)[0]
    # each group's quota (tapes 3, gloves 1) is filled first, so f (-2.5) loses to c (-3); then by score
    assert [(r.item, r.interest) for r in merged] == [("a", "tapes"), ("b", "tapes"), ("c", "tapes"), ("e", "gloves")]
    mixed = merge(groups, results, 1, k=4, order="interleave")[0]  # Sainte-Laguë: .75/1, .75/3 (tie: first), .25/1
    assert [r.item for r in mixed] == ["a", "b", "e", "c"]
    fill = merge(groups, [results[0][:1], results[1]], 1, k=4)[0]  # tapes ran short: leftovers fill by score
    assert [r.item for r in fill] == ["a", "f", "e"]
    short = merge([Group(0, "x", 1.0, (7,), 0.0, 4, 4)], [[("a", -1.0)]], 1, k=4)[0]
    assert [r.item for r in short] == ["a"]


def test_prompt_groups_overlap_but_merge_keeps_items_distinct() -> None:
    """Prompt-conditioned groups search the whole catalogue, so they can find the same item: the first (most
    probable) interest keeps it and the next group fills its quota with its next items."""
    picks = prompt_picks([("camping", 0.9, [5, 6]), ("cooking", 0.3, [5, 7])], catalogue=100)
    assert [(p.code, p.text, p.prompt) for p in picks] == [(None, "camping", (5, 6)), (None, "cooking", (5, 7))]
    groups = plan_groups([picks], [{}], num_beams=8, k=4)
    assert [(g.prefix, g.prompt, g.beams, g.quota) for g in groups] == [((), (5, 6), 5, 3), ((), (5, 7), 3, 1)]
    wide = plan_groups([picks], [{}], num_beams=8, k=6)  # the first group alone can fill the list
    assert [g.beams for g in wide] == [6, 3]
    assert groups[0].weight == pytest.approx(0.75) and groups[1].prompt_of([[1, 2]]) == (5, 7)
    results = [[("a", -1.0), ("b", -2.0), ("c", -3.0)], [("a", -0.5), ("b", -1.5), ("d", -2.5), ("e", -9.0)]]
    merged = merge(groups, results, 1, k=4)[0]
    assert [(r.item, r.interest, r.code) for r in merged] == [("a", "camping", None), ("b", "camping", None),
                                                               ("d", "cooking", None), ("c", "camping", None)]
    mixed = merge(groups, results, 1, k=4, order="interleave")[0]  # .75/1, then .25/1 vs .75/3 (tie: first)
    assert [r.item for r in mixed] == ["a", "b", "d", "c"]
    alone = prompt_picks([], catalogue=100)  # no curated interest: the plain prompt with every beam
    assert alone == [Pick(None, HISTORY_ONLY, 100, 0.0)]
    assert [(g.beams, g.quota, g.prompt) for g in plan_groups([alone], [{}], 8, 4)] == [(8, 4, ())]


def test_coverage_merge_pools_the_groups_and_the_plain_beam() -> None:
    """`coverage`: one plain whole-catalogue group joins the interest groups; every item found is pooled (one
    found twice keeps its interest group's name; one only the plain beam found is named after the chosen
    interest of its code, else HISTORY_ONLY) and the list is filled by score - penalty x listed items of its code."""
    code_of = {"a1": 1, "a2": 1, "a3": 1, "b1": 2, "c1": 3}.__getitem__
    chosen = [[Pick(1, "A", 3, math.log(0.7)), Pick(2, "B", 1, math.log(0.3))]]
    root = [{1: math.log(0.7), 2: math.log(0.3), 3: math.log(0.01)}]
    groups = MergeRule("coverage", 0.0).plan(chosen, root, num_beams=6, k=3)
    assert [(g.plain, g.prefix, g.beams) for g in groups] == [(False, (1,), 3), (False, (2,), 2), (True, (), 6)]
    assert MergeRule("score").plan(chosen, root, num_beams=6, k=3) == groups[:2]
    results = [[("a1", -1.0), ("a2", -1.2)], [("b1", -1.55)],
               [("a1", -1.0), ("a2", -1.2), ("a3", -1.3), ("c1", -1.4)]]
    by_score = MergeRule("coverage", 0.0).apply(groups, results, 1, 3, code_of)[0]
    assert [(r.item, r.interest, r.code) for r in by_score] == [("a1", "A", 1), ("a2", "A", 1), ("a3", "A", 1)]
    # penalty 0.3: a1; then c1 -1.4 beats a2 -1.5 and b1 -1.55; then a2 -1.5 beats b1 -1.55 and a3 -1.9; then b1
    spread = MergeRule("coverage", 0.3).apply(groups, results, 1, 4, code_of)[0]
    assert [(r.item, r.interest, r.code) for r in spread] == [("a1", "A", 1), ("c1", HISTORY_ONLY, 3),
                                                               ("a2", "A", 1), ("b1", "B", 2)]
    assert [r.score for r in spread] == [-1.0, -1.4, -1.2, -1.55]  # the model's scores, not the penalised ones


def test_coverage_decoding_keeps_the_plain_beams_scores(setup) -> None:
    """With penalty 0 the list scores at least the plain beam search's at every rank (its items are in the
    pool); a large penalty lists one item of every code found before any code repeats. Scores are exact."""
    model, trie, prompts, tokens = setup
    space = CodeSpace({}, {c: 6 for c in trie.allowed([])}, k=6, max_groups=4)
    plain = constrained_beam_search(model, prompts, trie, num_beams=8, k=6, batch_size=5)
    pooled, wide = (interest_beam_search(model, prompts, trie, num_beams=8, k=6, batch_size=3, select=top_codes(2, space),
                                         rule=MergeRule("coverage", penalty)) for penalty in (0.0, 100.0))
    for prompt, want, got, spread in zip(prompts, plain, pooled, wide, strict=True):
        truth = exact(model, prompt, tokens)
        assert len({r.item for r in got}) == 6 and len({r.item for r in spread}) == 6
        assert all(r.score == pytest.approx(truth[r.item], abs=1e-4) for r in [*got, *spread])
        assert all(r.score >= score - 1e-5 for r, (_, score) in zip(got, want, strict=True))
        codes = [tokens[r.item][0] for r in spread]
        assert len(set(codes[:len(set(codes))])) == len(set(codes)) >= len({tokens[i][0] for i, _ in want})


def test_prompt_conditioned_groups_decode_from_their_own_prompt(setup) -> None:
    """Each group's items are the plain beam search of its own prompt with the group's beams, scored exactly
    under that prompt; a user without interests gets the plain beam search of their prompt."""
    import copy

    model, trie, prompts, tokens = setup
    model = copy.deepcopy(model)
    torch.manual_seed(0)
    with torch.no_grad():  # sharper than the fixture's weights, so these prompts lead to different items
        for param in model.parameters():
            param.normal_(0.0, 1.0)
    chosen = [prompt_picks([("first", 0.8, prompts[0]), ("second", 0.4, prompts[2])], 18), prompt_picks([], 18)]
    results = interest_beam_search(model, [prompts[1], prompts[3]], trie, num_beams=8, k=6, batch_size=4,
                                   select=GivenPicks(chosen))
    groups = plan_groups(chosen, [{}, {}], num_beams=8, k=6)
    for group, prompt in zip(groups[:2], (prompts[0], prompts[2]), strict=True):
        truth = exact(model, prompt, tokens)
        own = dict(constrained_beam_search(model, [prompt], trie, num_beams=group.beams, k=group.beams,
                                           batch_size=1)[0])
        mine = [r for r in results[0] if r.interest == group.interest]
        assert mine and all(r.item in own and r.score == pytest.approx(truth[r.item], abs=1e-4) for r in mine)
    assert len({r.item for r in results[0]}) == 6
    plain = constrained_beam_search(model, prompts[3:4], trie, num_beams=8, k=6, batch_size=1)[0]
    assert [(r.item, r.interest) for r in results[1]] == [(item, HISTORY_ONLY) for item, _ in plain]
    assert [r.score for r in results[1]] == pytest.approx([s for _, s in plain], abs=1e-5)
    with pytest.raises(ValueError, match="interests for 2 users"):
        GivenPicks(chosen)([{}])


def test_given_picks_skip_the_first_step_pass() -> None:
    """Prompt-conditioned picks do not read the decoder's first-step log-probs, so that pass is never run;
    picks naming a code are refused (their groups would need it)."""
    from genrec.decode.interest import interest_search

    def no_root(prompts):
        raise AssertionError("the first-step pass ran")

    chosen = [prompt_picks([("a", 0.9, [5, 6])], 10), prompt_picks([], 10)]
    seen = []

    def groups_search(prompts, groups):
        seen.extend(groups)
        return [[(f"item{g.request}", -1.0)] for g in groups]

    recs = interest_search(no_root, groups_search, [[1], [2]], 4, 1, GivenPicks(chosen), code_of=lambda item: 0)
    assert [g.prompt for g in seen] == [(5, 6), ()] and [r[0].item for r in recs] == ["item0", "item1"]
    with pytest.raises(ValueError, match="prompt-conditioned"):
        GivenPicks([[Pick(3, "code", 4, -1.0)]])


def test_root_logprobs_are_the_first_token_distribution(setup) -> None:
    model, trie, prompts, _ = setup
    batched = root_logprobs(model, prompts, trie, batch_size=5)  # left-padded together
    for prompt, got in zip(prompts, batched, strict=True):
        alone = root_logprobs(model, [prompt], trie, batch_size=1)[0]
        assert sorted(got) == trie.allowed([])
        assert [got[t] for t in sorted(got)] == pytest.approx([alone[t] for t in sorted(got)], abs=1e-5)
        with torch.no_grad():
            logp = torch.log_softmax(model(torch.tensor([prompt])).logits[0, -1], -1)
        assert [got[t] for t in sorted(got)] == pytest.approx([logp[t].item() for t in sorted(got)], abs=1e-5)


def test_interest_search_groups_by_code_with_exact_scores(setup) -> None:
    model, trie, prompts, tokens = setup
    select = top_codes(2, CodeSpace({}, {c: 6 for c in trie.allowed([])}, k=6, max_groups=4))
    results = interest_beam_search(model, prompts, trie, num_beams=8, k=6, batch_size=3, select=select)
    root = root_logprobs(model, prompts, trie, batch_size=5)
    for prompt, recs, lp in zip(prompts, results, root, strict=True):
        truth = exact(model, prompt, tokens)
        top2 = sorted(lp, key=lambda c: -lp[c])[:2]
        items = [r.item for r in recs]
        assert len(items) == 6 and len(set(items)) == 6
        assert [r.score for r in recs] == sorted((r.score for r in recs), reverse=True)
        for r in recs:
            assert r.score == pytest.approx(truth[r.item], abs=1e-4)
            assert r.code == tokens[r.item][0] and r.code in top2 and r.interest == str(r.code)
        assert {r.code for r in recs} == set(top2)  # both interests are represented


def test_one_wide_interest_is_exact_within_its_code(setup) -> None:
    """m=1 with as many beams as the largest code's items: the list is that code's items by exact score."""
    model, trie, prompts, tokens = setup
    results = interest_beam_search(model, prompts, trie, num_beams=6, k=6, batch_size=5, select=top_codes(1, CodeSpace({}, {c: 6 for c in trie.allowed([])}, k=6, max_groups=3)))
    for prompt, recs in zip(prompts, results, strict=True):
        truth = exact(model, prompt, tokens)
        code = recs[0].code
        inside = sorted((i for i in truth if tokens[i][0] == code), key=lambda i: -truth[i])
        assert [r.item for r in recs] == inside


def test_code_labels_and_mined_interest_mapping() -> None:
    labels = code_labels({"1": 7, "2": 7, "3": 8}, {"1": "Lab,Tapes", "2": "Lab,Tapes", "3": "Lab,Gloves", "4": "x"})
    assert labels == {7: "Tapes", 8: "Gloves"}
    vectors = {"sticky things": np.array([1.0, 0.1]), "hand safety": np.array([0.0, 1.0]),
               "adhesives": np.array([0.9, 0.0])}
    space = CodeSpace(labels, {7: 5, 8: 5, 9: 5, 10: 1}, k=10, max_groups=3)
    mapper = MinedInterestCodes(2, space, [7, 8], np.array([[2.0, 0.0], [0.0, 3.0]]), vectors)
    assert mapper.code_of("sticky things") == 7 and mapper.code_of("hand safety") == 8
    root = [{7: -2.0, 8: -0.5, 9: -0.1, 10: -0.05}] * 3
    chosen = mapper.for_users([["hand safety", "sticky things"], ["sticky things", "adhesives"], []])(root)
    assert [p[:4] for p in chosen[0]] == [(8, "hand safety", 5, -0.5), (7, "sticky things", 5, -2.0)]  # weighted by the decoder
    # topped up with the decoder's best codes until the codes hold k=10 items: 10 holds only one
    assert [p[:4] for p in chosen[1]] == [(7, "sticky things; adhesives", 5, -2.0), (10, "10", 1, -0.05), (9, "9", 5, -0.1)]
    assert [p[:4] for p in chosen[2]] == [(10, "10", 1, -0.05), (9, "9", 5, -0.1), (8, "Gloves", 5, -0.5)]  # no interests: decoder's (max 3)
    assert top_codes(1, space)(root[:1]) == chosen[2:]
    with pytest.raises(ValueError, match="2 prompts but interests for 3 users"):
        mapper.for_users([[], [], []])(root[:2])


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run folder (data, SID map, a scratch checkpoint)."""
    return build_category_run(tmp_path_factory.mktemp("idec"), users=8, data_seed=3, model_seed=1)


def test_recommend_stage_interest_decoding(tiny_run: Path) -> None:
    from genrec.decode import RecommendConfig
    from genrec.decode import run as recommend

    config = RecommendConfig(system="idec", num_beams=20, k=10, decoding="interest", interest_order="score",
                             num_interests=3, threads=1)
    manifest = recommend(config, tiny_run)
    lines = [json.loads(line) for line in RunPaths(tiny_run).recs("idec").read_text().splitlines()]
    assert len(lines) == 8 and manifest.metrics["decoding"] == "interest" and manifest.metrics["codes"] == 4
    for line in lines:
        assert len(line["items"]) == 10 and len(set(line["items"])) == 10
        assert set(line["interests"]) <= {"Tapes", "Gloves", "Meters", "Glue"}
        assert len(set(line["interests"])) == 3  # one group per interest, each with at least one slot
        # every item sits under the code its interest names (code = item id % 4 = category)
        assert all(["Tapes", "Gloves", "Meters", "Glue"][int(i) % 4] == why
                   for i, why in zip(line["items"], line["interests"], strict=True))


def test_recommend_stage_coverage_order(tiny_run: Path) -> None:
    """`interest_order: coverage` writes full lists of distinct items named by an interest or HISTORY_ONLY, and
    with a large penalty spreads them over more codes than plain beam search."""
    from genrec.decode import RecommendConfig
    from genrec.decode import run as recommend

    plain = RecommendConfig(system="plain", num_beams=20, k=10, threads=1)
    spread = plain.model_copy(update=dict(system="cover", decoding="interest", num_interests=3,
                                          interest_order="coverage", coverage_penalty=50.0))
    recommend(plain, tiny_run)
    manifest = recommend(spread, tiny_run)
    assert manifest.metrics["interest_order"] == "coverage" and manifest.metrics["coverage_penalty"] == 50.0
    labels = ["Tapes", "Gloves", "Meters", "Glue"]
    read = [[json.loads(line) for line in RunPaths(tiny_run).recs(s).read_text().splitlines()] for s in ("plain", "cover")]
    for before, after in zip(*read, strict=True):
        assert len(after["items"]) == 10 and len(set(after["items"])) == 10
        assert all(why in (labels[int(i) % 4], HISTORY_ONLY) for i, why in zip(after["items"], after["interests"],
                                                                                strict=True))
        assert len({int(i) % 4 for i in after["items"][:4]}) == 4  # the tiny run's 4 codes, each once first
        assert len({int(i) % 4 for i in after["items"][:4]}) >= len({int(i) % 4 for i in before["items"][:4]})


def test_recommend_stage_coverage_without_interest_groups(tiny_run: Path) -> None:
    """num_interests 0: only the plain beam is decoded and its own items are re-ranked (penalty 0: exactly the
    plain beam's list); other orders refuse it by name."""
    from genrec.decode import RecommendConfig
    from genrec.decode import run as recommend

    plain = RecommendConfig(system="plain20", num_beams=20, k=20, threads=1)
    recommend(plain, tiny_run)
    for system, penalty in (("rerank0", 0.0), ("rerank50", 50.0)):
        recommend(plain.model_copy(update=dict(system=system, k=10, decoding="interest", num_interests=0,
                                               interest_order="coverage", coverage_penalty=penalty)), tiny_run)
    read = {s: {line["user"]: line for line in map(json.loads, RunPaths(tiny_run).recs(s).read_text().splitlines())}
            for s in ("plain20", "rerank0", "rerank50")}
    for user, line in read["plain20"].items():
        assert read["rerank0"][user]["items"] == line["items"][:10]
        spread = read["rerank50"][user]
        assert set(spread["items"]) <= set(line["items"]) and set(spread["interests"]) == {HISTORY_ONLY}
        assert len({int(i) % 4 for i in spread["items"][:4]}) == len({int(i) % 4 for i in line["items"]})
    with pytest.raises(ValueError, match="num_interests 0 .* needs interest_order coverage"):
        RecommendConfig(decoding="interest", num_interests=0, interest_order="score")


def test_recommend_stage_mined_interests_steer_groups(tiny_run: Path, tmp_path: Path) -> None:
    """interest_source=mined: a user's curated interest text lands on the code of the items it describes."""
    import shutil

    from safetensors.numpy import save_file

    from genrec.decode import RecommendConfig
    from genrec.decode import run as recommend
    from genrec.embed.encode import encode, load_encoder

    run_dir = tmp_path / "run"
    shutil.copytree(tiny_run, run_dir)
    paths = RunPaths(run_dir)
    items = pd.read_parquet(paths.items)
    encoder = load_encoder(None, 32, 1)
    text = encode(encoder, [f"{t}: {c.split(',')[-1]}" for t, c in zip(items["title"], items["categories"])], 16, "items")
    paths.item_emb.parent.mkdir()
    save_file({"text": text}, str(paths.item_emb), metadata={"item_ids": json.dumps(list(items["item_id"]))})
    test_users = list(pd.read_parquet(paths.sequences).query("split == 'test'")["user_id"])
    write_labelled_interests(paths, [("user", test_users[0], "protective gloves for the hands", 0.9, 1),
                                     ("user", test_users[0], "noise", 0.1, 0)])
    config = RecommendConfig(system="mined", num_beams=20, k=10, decoding="interest", interest_order="score",
                             interest_source="mined", num_interests=2, threads=1)
    manifest = recommend(config, run_dir)
    assert manifest.metrics["users_with_interests"] == 1 and manifest.metrics["interest_texts"] == 1
    lines = {json.loads(line)["user"]: json.loads(line) for line in paths.recs("mined").read_text().splitlines()}
    first = lines[test_users[0]]
    steered = [i for i, why in zip(first["items"], first["interests"], strict=True)
               if why == "protective gloves for the hands"]
    assert steered and all(int(i) % 4 == 1 for i in steered)  # the Gloves code
    assert all("protective gloves for the hands" not in line["interests"] for u, line in lines.items() if u != test_users[0])


def test_recommend_stage_mined_source_needs_its_files(tiny_run: Path) -> None:
    from genrec.decode import RecommendConfig
    from genrec.decode import run as recommend

    config = RecommendConfig(system="idec_mined", num_beams=20, k=10, decoding="interest", interest_order="score",
                             interest_source="mined")
    with pytest.raises(FileNotFoundError, match="interests_labelled"):
        recommend(config, tiny_run)
    with pytest.raises(ValueError, match="num_interests"):
        RecommendConfig(decoding="interest", num_interests=11, k=10)


def test_recommend_stage_prompt_conditioned_interests(tiny_run: Path, tmp_path: Path, tiny_causal_lm: Path) -> None:
    """interest_source=mined_prompt on an llm checkpoint trained with interests in its prompt: each curated
    interest's items are scored under the user's prompt conditioned on that interest alone; users without
    curated interests get their plain prompt; a scratch checkpoint is refused with the reason."""
    import shutil

    from genrec.decode import RecommendConfig
    from genrec.decode import run as recommend

    config = RecommendConfig(system="prompted", num_beams=20, k=10, decoding="interest", interest_order="score",
                             interest_source="mined_prompt", num_interests=2, threads=1)
    run_dir = tmp_path / "run"
    shutil.copytree(tiny_run, run_dir)
    paths = RunPaths(run_dir)
    test = pd.read_parquet(paths.sequences).query("split == 'test'")
    user, history = str(test["user_id"].iloc[0]), [str(i) for i in test["history"].iloc[0]]
    write_labelled_interests(paths, [("user", user, "camping", 0.9, 1), ("user", user, "stove", 0.6, 1),
                                     ("user", user, "item", 0.2, 0)])
    with pytest.raises(ValueError, match="llm checkpoint trained with interests"):
        recommend(config, run_dir)  # the run's scratch checkpoint
    sid_map = pd.read_parquet(paths.sid_map)
    shutil.rmtree(paths.sft_ckpt)
    model, tokenizer, info = save_random_interest_llm(sid_map, paths.sft_ckpt, tiny_causal_lm)
    manifest = recommend(config, run_dir)
    assert manifest.metrics["users_with_interests"] == 1 and manifest.metrics["interest_texts"] == 2
    lines = {json.loads(line)["user"]: json.loads(line) for line in paths.recs("prompted").read_text().splitlines()}
    sid_of = dict(zip(sid_map["item_id"].astype(str), sid_map["sid"], strict=True))
    titles = dict(zip(pd.read_parquet(paths.items)["item_id"].astype(str), pd.read_parquet(paths.items)["title"]))
    tokens = {i: sid_token_ids(tokenizer, s) for i, s in sid_of.items()}
    mine = lines[user]
    assert len(set(mine["items"])) == 10 and set(mine["interests"]) <= {"camping", "stove"} and "camping" in mine["interests"]
    for text in set(mine["interests"]):
        prompt = build_prompt_ids(tokenizer, info, [sid_of[i] for i in history], interests=[text],
                                  titles=[titles[i] for i in history])
        truth = exact(model, prompt, tokens)
        for item, why, score in zip(mine["items"], mine["interests"], mine["scores"], strict=True):
            if why == text:
                assert score == pytest.approx(truth[item], abs=1e-3)
    assert all(set(line["interests"]) == {HISTORY_ONLY} and len(set(line["items"])) == 10
               for u, line in lines.items() if u != user)


def test_dictionary_picks_follow_the_posterior() -> None:
    """GemiRec's dictionary interests: each lands on its retrieved items' main first-level code, probability
    posterior x share, interests on one code add up, at most m codes, the most probable first."""
    space = CodeSpace({7: "Tapes", 8: "Gloves", 9: "Meters", 10: "Glue"}, {7: 5, 8: 5, 9: 5, 10: 1}, k=10, max_groups=4)
    root = {7: -2.0, 8: -0.5, 9: -0.1, 10: -0.05}
    predicted = [DictionaryInterest(0.5, {7: 0.75, 8: 0.25}), DictionaryInterest(0.3, {8: 1.0}),
                 DictionaryInterest(0.15, {7: 0.5, 9: 0.5}),  # a tie: the smaller code token
                 DictionaryInterest(0.05, {10: 1.0})]
    picks = dictionary_picks(predicted, root, 2, space)
    assert [(p.code, p.text, p.size) for p in picks] == [(7, "Tapes", 5), (8, "Gloves", 5)]
    assert [p.logp for p in picks] == pytest.approx([np.log(0.5 * 0.75 + 0.15 * 0.5), np.log(0.3)])
    assert [p.code for p in dictionary_picks(predicted, root, 3, space)] == [7, 8, 10]
    assert [p.code for p in dictionary_picks([DictionaryInterest(0.2, {8: 1.0}), DictionaryInterest(0.7, {9: 1.0})],
                                             root, 2, space)] == [9, 8]  # ordered by probability, not walk order
    # no history known to GemiRec: the decoder's codes; too few items under the picks: the decoder tops them up
    assert dictionary_picks([], root, 2, space) == top_codes(2, space)([root])[0]
    small = dictionary_picks([DictionaryInterest(0.9, {10: 1.0})], root, 1, space)
    assert [(p.code, p.logp) for p in small] == [(10, pytest.approx(np.log(0.9))), (9, -0.1), (8, -0.5)]  # 1+5+5 >= k


@pytest.fixture(scope="module")
def gemirec_run(tiny_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tiny_run plus a GemiRec trained by the multi stage (`multi/multi_gemirec/model.pt`)."""
    import shutil

    from genrec.multi import MultiConfig
    from genrec.multi import run as train_multi
    from genrec.multi.config import GemiRecConfig

    run_dir = tmp_path_factory.mktemp("idec_gemirec") / "run"
    shutil.copytree(tiny_run, run_dir)
    cfg = GemiRecConfig(hidden=16, interests=2, dictionary_size=6, dropout=0.0, batch_size=8, lr=1e-2, epochs=4,
                        eval_every=2, threads=1)
    train_multi(MultiConfig(model=cfg, k=10), run_dir)
    return run_dir


def test_gemirec_interests_are_the_posterior_of_the_prompt_history(gemirec_run: Path) -> None:
    """Per history: the posterior's most probable dictionary codes in order, each with shares over valid
    first-level codes; a history of unknown items gets none; the same history gives the same answer."""
    from genrec.decode.interest_sources import GemiRecInterests, first_codes, gemirec_model_path
    from genrec.model.checkpoint import load_checkpoint
    from genrec.multi.train import load_model

    paths = RunPaths(gemirec_run)
    _, tokenizer, _ = load_checkpoint(paths.sft_ckpt)
    first = first_codes(pd.read_parquet(paths.sid_map), tokenizer)
    path = gemirec_model_path(gemirec_run, "multi_gemirec")
    model, inputs, _ = load_model(path)
    ids = inputs.item_ids  # the catalogue GemiRec was trained on (rows 1..N)
    predict = GemiRecInterests(path, first, walk=4)
    got = predict([ids[:3], ids[5:6], ["no such item"], ids[:3]], top_items=5)
    with torch.no_grad():
        h, mask = model.history(torch.tensor([[1, 2, 3]]))
        posterior = torch.softmax(model.posterior(model.extractor(h, mask), h), -1)[0]
    assert [i.prob for i in got[0]] == pytest.approx(sorted(posterior.tolist(), reverse=True)[:4], abs=1e-6)
    assert got[2] == [] and got[3] == got[0] and len(got[1]) == 4
    valid = set(first.values())
    for interest in got[0] + got[1]:
        assert set(interest.shares) <= valid and sum(interest.shares.values()) == pytest.approx(1.0)
        assert all(share * 5 == pytest.approx(round(share * 5)) for share in interest.shares.values())  # of 5 items


def test_recommend_stage_gemirec_interests(gemirec_run: Path) -> None:
    """interest_source=gemirec end to end: m groups per user, each confined to a valid first-level code and
    named by its items' category; the same run twice gives the same lists."""
    from genrec.decode import RecommendConfig
    from genrec.decode import run as recommend

    names = ["Tapes", "Gloves", "Meters", "Glue"]
    lines = []
    for system in ("gemirec_a", "gemirec_b"):
        config = RecommendConfig(system=system, num_beams=20, k=10, decoding="interest", interest_order="score",
                                 interest_source="gemirec", num_interests=3, threads=1)
        manifest = recommend(config, gemirec_run)
        assert manifest.metrics["interest_model"] == "multi_gemirec" and manifest.metrics["dictionary_codes"] == 6
        assert any(p.endswith("multi/multi_gemirec/model.pt") for p in manifest.inputs)
        lines.append([json.loads(line) for line in RunPaths(gemirec_run).recs(system).read_text().splitlines()])
    assert [(a["items"], a["interests"]) for a in lines[0]] == [(b["items"], b["interests"]) for b in lines[1]]
    for line in lines[0]:
        assert len(line["items"]) == 10 and len(set(line["items"])) == 10
        assert len(set(line["interests"])) == 3
        assert all(names[int(i) % 4] == why for i, why in zip(line["items"], line["interests"], strict=True))


def test_recommend_stage_gemirec_needs_its_model(tiny_run: Path) -> None:
    from genrec.decode import RecommendConfig
    from genrec.decode import run as recommend

    config = RecommendConfig(system="idec_gemirec", num_beams=20, k=10, decoding="interest", interest_order="score",
                             interest_source="gemirec",
                             interest_model="my_gemirec", threads=1)
    with pytest.raises(FileNotFoundError,
                       match=r"multi/my_gemirec/model.pt.*genrec multi train.*multi.system=my_gemirec"):
        recommend(config, tiny_run)
