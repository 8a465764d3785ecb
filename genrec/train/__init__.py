"""Training stages: `sft` (genrec.train.sft) and `grpo` (genrec.train.grpo). Light at import."""
