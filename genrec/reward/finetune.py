"""Optional encoder fine-tuning on the behavioural pairs with sentence-transformers' own trainer.

The contrastive loss pulls a context and the interests its behaviour supports together and pushes the
unsupported ones apart; the head is then trained on the fine-tuned embeddings.
"""

from __future__ import annotations

import tempfile

import numpy as np
import pandas as pd
from datasets import Dataset
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
from sentence_transformers.sentence_transformer.losses import OnlineContrastiveLoss

from genrec.reward.config import FinetuneConfig


def finetune_encoder(model: SentenceTransformer, pairs: pd.DataFrame, config: FinetuneConfig, seed: int) -> SentenceTransformer:
    """Fine-tune `model` in place on (context, interest, label) training pairs and return it."""
    sample = pairs.sample(n=min(len(pairs), config.max_pairs), random_state=np.random.RandomState(seed))
    dataset = Dataset.from_dict({"context": sample["context"].tolist(), "interest": sample["interest"].tolist(),
                                 "label": sample["label"].astype(int).tolist()})
    with tempfile.TemporaryDirectory() as out:
        args = SentenceTransformerTrainingArguments(
            output_dir=out, num_train_epochs=config.epochs, per_device_train_batch_size=config.batch_size,
            learning_rate=config.lr, seed=seed, save_strategy="no", report_to=[], use_cpu=True,
            logging_strategy="no", disable_tqdm=True)
        SentenceTransformerTrainer(model=model, args=args, train_dataset=dataset,
                                   loss=OnlineContrastiveLoss(model)).train()
    return model.eval()
