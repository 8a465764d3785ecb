"""The test users that have curated (label 1) mined interests: plain beam vs interest decoding with the decoder's
codes vs the users' mined interests mapped to codes (m=4, score order), HF engine, same checkpoint. Adds the
`mined_sample` entry to benchmarks/results/interest_decoding_scientific.json (run after bench_interest_decoding.py,
with runs/idec_scientific/label linked to the mined run's label/).

    nice -n 15 python scripts/bench_interest_mined_sample.py
"""
import json, sys
import torch
sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
from bench_interest_decoding import Breadth
from genrec.artifacts import RunPaths, command_line
from genrec.data import load_sequences
from genrec.decode.hf_beam import constrained_beam_search, interest_beam_search
from genrec.decode.interest_sources import interest_selector
from genrec.decode.trie import SidTrie
from genrec.eval.metrics import topk_metrics
from genrec.model.checkpoint import load_checkpoint
from genrec.model.sources import HistoryPrompts, read_sid_map, user_interests

torch.set_num_threads(1)
from genrec.config import REPO_ROOT
run = RunPaths(REPO_ROOT / "runs" / "idec_scientific")
model, tok, info = load_checkpoint(run.sft_ckpt)
sid_map = read_sid_map(run.sid_map)
trie = SidTrie.from_sid_map(sid_map, tok)
curated = user_interests(run.interests_labelled, limit=4)
test = load_sequences(run.root).query("split == 'test'")
test = test[test.user_id.astype(str).isin(curated)]
users = list(test.user_id.astype(str))
prompter = HistoryPrompts.from_run(run.root, tok, info, sid_map)
prompts = [prompter.ids(list(h)) for h in test.history]
targets = dict(zip(users, test.target.astype(str)))
codes_for, _ = interest_selector("codes", 4, 20, run.root, sid_map, tok, users)
mined_for, counts = interest_selector("mined", 4, 20, run.root, sid_map, tok, users)
out = {"users": len(users), **counts}
beam = constrained_beam_search(model, prompts, trie, 20, 20, 32)
variants = {"beam": {u: [i for i, _ in r] for u, r in zip(users, beam)}}
chosen = {}
for name, sel in (("interest_codes_m4_score", codes_for), ("interest_mined_m4_score", mined_for)):
    recs = interest_beam_search(model, prompts, trie, 20, 20, 32, sel(users, list(test.history), 20))
    variants[name] = {u: [r.item for r in rs] for u, rs in zip(users, recs)}
    chosen[name] = {u: sorted({r.code for r in rs}) for u, rs in zip(users, recs)}
breadth = Breadth(run.root)
for name, recs in variants.items():
    out[name] = {**{k: round(v, 4) for k, v in topk_metrics(recs, targets).items()}, **breadth(recs)}
out["users_whose_groups_changed"] = sum(chosen["interest_codes_m4_score"][u] != chosen["interest_mined_m4_score"][u] for u in users)
print(json.dumps(out, indent=1))
result_path = REPO_ROOT / "benchmarks" / "results" / "interest_decoding_scientific.json"
result = json.loads(result_path.read_text())
result["mined_sample"] = {"command": command_line(),
                          "interests": str(run.interests_labelled.resolve()), **out}
result_path.write_text(json.dumps(result, indent=2) + "\n")
