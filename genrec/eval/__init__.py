"""Evaluation: the recs.jsonl format and full-ranking HR/NDCG@k."""

from genrec.eval.metrics import topk_metrics
from genrec.eval.recs import read_recs, write_recs
from genrec.eval.stage import EvalConfig, evaluate_file, inputs, run

__all__ = ["EvalConfig", "evaluate_file", "inputs", "read_recs", "run", "topk_metrics", "write_recs"]
