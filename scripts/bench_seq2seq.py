"""Benchmark an encoder-decoder (T5, TIGER's model class) beside genrec's decoder-only `scratch` SFT.

TIGER and GRID's reproduction of it train a T5 encoder-decoder; genrec's `scratch` kind is a decoder-only Llama.
This script measures whether the model class matters on our data, changing nothing else: the same prepared split,
SID map, tokenizer and prompt tokens (genrec's `ExampleBuilder`: `<bos>` history SIDs `<ans>` -> SID `<eos>`), the
same optimiser recipe (AdamW, cosine schedule with warm-up, label smoothing, batch 256), the same checkpoint choice
(validation-probe NDCG@10 on a seeded user sample, uniform average of the best `--average-top` epoch checkpoints),
the same trie-constrained beam search (genrec's `constrained_beam_search`, 20 beams, every generation parameter
explicit) and the same test scoring. The encoder reads the prompt; the decoder starts from `<ans>` and writes the SID.

    OMP_NUM_THREADS=1 python scripts/bench_seq2seq.py --dataset scientific --data-run runs/scientific_text \
        --sid-map runs/scientific_text/sid/sid_map.parquet --out runs/seq2seq/t5_2x2 --name t5_2x2 --threads 1 \
        --compare sasrec=runs/scientific_text/eval/sasrec/recs.jsonl

Writes `benchmarks/results/seq2seq_<dataset>.json` (one entry per `--name`, merged) and `<out>/recs.jsonl`. A killed
run resumes from its newest epoch checkpoint in `<out>/trainer/` (its `train_wall_s` then counts the resumed part).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from collections.abc import Callable
from pathlib import Path

import torch
from datasets import Dataset
from transformers import (DataCollatorForSeq2Seq, T5Config, T5ForConditionalGeneration, Trainer, TrainingArguments,
                          set_seed)
from transformers.trainer_utils import get_last_checkpoint

from genrec.artifacts import command_line, machine_description, write_json_merged
from genrec.config import REPO_ROOT
from genrec.data import load_sequences
from genrec.decode.hf_beam import constrained_beam_search
from genrec.decode.trie import SidTrie
from genrec.eval.metrics import paired_difference, topk_metrics, user_ndcg
from genrec.eval.recs import read_recs, write_recs
from genrec.model.config import ModelInfo
from genrec.model.sid_tokens import parse_sid, sid_vocabulary
from genrec.model.sources import read_sid_map
from genrec.model.tokenizer import ans_token_id, scratch_tokenizer
from genrec.train.checkpoint_average import load_average
from genrec.train.sft_data import ExampleBuilder, SftSources, history_examples, train_examples, valid_sample
from genrec.train.sft_trainer import RankingProbe

RESULTS = REPO_ROOT / "benchmarks" / "results"


def t5_model(vocab_size: int, pad: int, eos: int, start: int, args: argparse.Namespace) -> T5ForConditionalGeneration:
    """A T5 over the SID vocabulary; by default with the `scratch` decoder's widths and feed-forward (SwiGLU)."""
    config = T5Config(vocab_size=vocab_size, d_model=args.hidden, d_kv=args.d_kv or args.hidden // args.heads,
                      d_ff=args.ff, num_layers=args.encoder_layers, num_decoder_layers=args.decoder_layers,
                      num_heads=args.heads, dropout_rate=args.dropout, feed_forward_proj=args.ff_act,
                      tie_word_embeddings=True, pad_token_id=pad, eos_token_id=eos, decoder_start_token_id=start)
    return T5ForConditionalGeneration(config).to(torch.float32)


def choose_average(model: T5ForConditionalGeneration, trainer_dir: Path, probe: Callable[[], dict[str, float]],
                   average_top: int) -> tuple[list[dict], list[dict]]:
    """Probe every epoch checkpoint, then load the uniform average of the `average_top` best by NDCG@10 (ties: the
    later step) into `model`. Returns the probe curve and the averaged entries."""
    curve = []
    for checkpoint in sorted(trainer_dir.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1])):
        load_average(model, [checkpoint])
        curve.append({"step": int(checkpoint.name.split("-")[1]), **probe()})
        print(json.dumps(curve[-1]), file=sys.stderr)
    best = sorted(curve, key=lambda c: (c["ndcg@10"], c["step"]), reverse=True)[:average_top]
    load_average(model, [trainer_dir / f"checkpoint-{c['step']}" for c in best])
    return curve, best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--data-run", type=Path, required=True, help="run folder whose data/ holds the prepared split")
    parser.add_argument("--sid-map", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True, help="folder for trainer checkpoints and recs.jsonl")
    parser.add_argument("--name", required=True, help="entry name in the results file")
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--d-kv", type=int, default=None, help="width of one attention head (default hidden/heads)")
    parser.add_argument("--ff", type=int, default=512)
    parser.add_argument("--ff-act", choices=["gated-silu", "relu"], default="gated-silu",
                        help="feed-forward: SwiGLU as the scratch decoder, or ReLU as TIGER")
    parser.add_argument("--encoder-layers", type=int, default=2)
    parser.add_argument("--decoder-layers", type=int, default=2)
    parser.add_argument("--dropout", type=float, default=0.0)
    parser.add_argument("--epochs", type=float, default=12)
    parser.add_argument("--lr", type=float, default=0.002)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--warmup", type=float, default=0.05)
    parser.add_argument("--label-smoothing", type=float, default=0.2)
    parser.add_argument("--average-top", type=int, default=3)
    parser.add_argument("--valid-users", type=int, default=512)
    parser.add_argument("--num-beams", type=int, default=20)
    parser.add_argument("--eval-batch-size", type=int, default=32)
    parser.add_argument("--max-steps", type=int, default=-1, help="stop early (smoke runs)")
    parser.add_argument("--test-users", type=int, default=None, help="score only the first N test users")
    parser.add_argument("--seed", type=int, default=45)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--results", type=Path, default=None, help="default benchmarks/results/seq2seq_<dataset>.json")
    parser.add_argument("--compare", action="append", default=[],
                        help="NAME=recs.jsonl of a reference system, scored on the same test users (paired)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for path in (args.data_run / "data", args.sid_map, *(Path(c.split("=", 1)[1]) for c in args.compare)):
        if not path.exists():
            raise SystemExit(f"bench_seq2seq: {path} does not exist")

    sequences = load_sequences(args.data_run)
    sid_map = read_sid_map(args.sid_map)
    sid_of = dict(zip(sid_map["item_id"], sid_map["sid"], strict=True))
    tokenizer = scratch_tokenizer(sid_vocabulary(sid_map["sid"]))
    info = ModelInfo(kind="scratch", sid_levels=len(parse_sid(sid_map["sid"].iloc[0])))
    builder = ExampleBuilder(tokenizer, info, SftSources(sequences, sid_of, {}, {}))
    pad, eos, start = tokenizer.pad_token_id, tokenizer.eos_token_id, ans_token_id(tokenizer)
    trie = SidTrie.from_sid_map(sid_map, tokenizer)

    set_seed(args.seed)  # initial weights too
    model = t5_model(len(tokenizer), pad, eos, start, args)
    train, _ = train_examples(builder, {"history": 1.0}, args.seed)
    dataset = Dataset.from_dict({"input_ids": [p for p, _ in train], "labels": [c for _, c in train]})
    valid_rows = valid_sample(sequences, args.valid_users, args.seed)
    probe = RankingProbe(users=list(valid_rows["user_id"]),
                         prompts=[prompt for prompt, _ in history_examples(builder, valid_rows)],
                         targets=dict(zip(valid_rows["user_id"], valid_rows["target"], strict=True)), trie=trie,
                         num_beams=args.num_beams, batch_size=args.eval_batch_size)

    trainer_dir = args.out / "trainer"
    training = TrainingArguments(
        output_dir=str(trainer_dir), num_train_epochs=args.epochs, max_steps=args.max_steps,
        per_device_train_batch_size=args.batch_size, learning_rate=args.lr, warmup_steps=args.warmup,
        lr_scheduler_type="cosine", label_smoothing_factor=args.label_smoothing, save_strategy="epoch",
        eval_strategy="no", logging_steps=50, report_to="none", seed=args.seed, data_seed=args.seed,
        disable_tqdm=True, dataloader_num_workers=0, dataloader_pin_memory=False,
        train_sampling_strategy="group_by_length",
    )
    collator = DataCollatorForSeq2Seq(tokenizer, model=model, padding=True, label_pad_token_id=-100)
    trainer = Trainer(model=model, args=training, train_dataset=dataset, data_collator=collator)
    started = time.perf_counter()
    trainer.train(resume_from_checkpoint=get_last_checkpoint(str(trainer_dir)) if trainer_dir.is_dir() else None)
    train_wall = time.perf_counter() - started

    curve, best = choose_average(model, trainer_dir, lambda: probe.metrics(model), args.average_top)
    chosen = probe.metrics(model)

    test = sequences[sequences["split"] == "test"]
    if args.test_users:
        test = test.head(args.test_users)
    prompts = [prompt for prompt, _ in history_examples(builder, test)]
    users = list(test["user_id"])
    started = time.perf_counter()
    model.eval()
    ranked = constrained_beam_search(model, prompts, trie, args.num_beams, args.num_beams, args.eval_batch_size)
    rec_wall = time.perf_counter() - started
    recs_path = args.out / "recs.jsonl"
    write_recs(recs_path, ((user, [item for item, _ in items]) for user, items in zip(users, ranked, strict=True)))
    recs = read_recs(recs_path)
    targets = dict(zip(test["user_id"], test["target"], strict=True))
    ours = user_ndcg(recs, targets)
    references = {}
    for name, path in (item.split("=", 1) for item in args.compare):
        reference = read_recs(Path(path))
        references[name] = {**topk_metrics(reference, targets, [5, 10]),
                            "paired_ndcg@10": paired_difference(ours, user_ndcg(reference, targets))}
    entry = {
        "metrics": topk_metrics(recs, targets, [5, 10]), "test_users": len(targets),
        "train_wall_s": round(train_wall, 1), "train_steps": trainer.state.global_step, "train_examples": len(train),
        "parameters": sum(p.numel() for p in model.parameters()), "valid_curve": curve,
        "averaged_steps": [c["step"] for c in best], "valid_after_average": chosen,
        "recommend_users_per_s": round(len(users) / rec_wall, 2), "reference_same_users": references,
        "model": {k: getattr(args, k) for k in ("hidden", "heads", "d_kv", "ff", "ff_act", "encoder_layers",
                                                "decoder_layers", "dropout")},
        "recipe": {k: getattr(args, k) for k in ("epochs", "lr", "batch_size", "warmup", "label_smoothing",
                                                 "average_top", "valid_users", "num_beams", "seed")},
        "sid_map": str(args.sid_map), "command": command_line(), "machine": machine_description(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    results = args.results or RESULTS / f"seq2seq_{args.dataset}.json"
    write_json_merged(results, {"dataset": args.dataset, "variants": {args.name: entry}}, sections=("variants",))
    print(json.dumps({args.name: entry["metrics"], "references": references, "train_wall_s": entry["train_wall_s"]}),
          file=sys.stderr)


if __name__ == "__main__":
    main()
