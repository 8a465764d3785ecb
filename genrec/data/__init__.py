"""Data stage: dataset readers, leave-one-out split, `items.parquet` / `sequences.parquet`."""

from genrec.data.config import DataConfig
from genrec.data.split import training_items
from genrec.data.stage import inputs, load_items, load_sequences, prepare, run

__all__ = ["DataConfig", "inputs", "load_items", "load_sequences", "prepare", "run", "training_items"]
