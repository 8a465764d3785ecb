"""Benchmark semantic IDs: text-only vs interest-enriched embeddings, RQ-VAE vs RQ-KMeans, on one dataset.

Runs the real stages: `data` and `embed` into runs/bench_sid/<dataset>/ (skipped when fresh) (interests copied from
--interests-run when it has them: label/interests_labelled.parquet, else mine/interests.parquet), then the
`sid` stage per variant in runs/bench_sid/<dataset>_<variant>/ (data/ and embed/ symlinked), so each
variant's sid_map.parquet stays available to the SFT benchmark. Variants: {text, interest} x {rqvae, rqkmeans}
(`--variants` picks some); `interest` only when some item has interests. Merges into
benchmarks/results/sid_<dataset>.json, so rows measured earlier (each with its own date and command) stay.

    nice -n 10 python scripts/bench_sid.py --dataset scientific --interests-run runs/scientific_full
"""

from __future__ import annotations

import argparse
import shutil
import sys
from datetime import UTC, datetime
from pathlib import Path

from genrec.artifacts import RunPaths, command_line, machine_description, read_manifest, write_json_merged
from genrec.config import REPO_ROOT
from genrec.data import DataConfig
from genrec.embed import EmbedConfig
from genrec.pipeline import reuse_or_run
from genrec.sid import RQVAEConfig, SidConfig
from genrec.sid import run as run_sid

RESULTS = REPO_ROOT / "benchmarks" / "results"
VARIANTS = {"text_rqvae": ("text", "rqvae"), "text_rqkmeans": ("text", "rqkmeans"),
            "interest_rqvae": ("fused", "rqvae"), "interest_rqkmeans": ("fused", "rqkmeans")}


def copy_interests(source: Path | None, run_dir: Path) -> str:
    """Copy the source run's labelled (preferred) or mined interests into run_dir; returns what was copied."""
    if source is None:
        return "none"
    src, dst = RunPaths(source), RunPaths(run_dir)
    for name, a, b in (("labelled", src.interests_labelled, dst.interests_labelled), ("mined", src.interests, dst.interests)):
        if a.is_file():
            b.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(a, b)
            return f"{name} ({a})"
    return "none"


def variant_dir(base: Path, name: str) -> Path:
    """runs/bench_sid/<dataset>_<variant> with data/ and embed/ linked to the base run."""
    run_dir = base.parent / f"{base.name}_{name}"
    run_dir.mkdir(parents=True, exist_ok=True)
    for stage in ("data", "embed"):
        link = run_dir / stage
        if not link.exists():
            link.symlink_to((base / stage).resolve(), target_is_directory=True)
    return run_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--interests-run", type=Path, default=None, help="run folder holding mine/ or label/ interests")
    parser.add_argument("--epochs", type=int, default=RQVAEConfig().epochs, help="RQ-VAE epochs")
    parser.add_argument("--max-tokens", type=int, default=EmbedConfig().max_tokens)
    parser.add_argument("--root", type=Path, default=REPO_ROOT / "runs" / "bench_sid")
    parser.add_argument("--variants", default=",".join(VARIANTS),
                        help=f"comma-separated subset of {','.join(VARIANTS)} (default: all)")
    args = parser.parse_args()
    wanted = args.variants.split(",")
    if unknown := set(wanted) - set(VARIANTS):
        parser.error(f"unknown variant(s) {sorted(unknown)}; choose from {','.join(VARIANTS)}")

    base = args.root / args.dataset
    data_config, embed_config = DataConfig(name=args.dataset), EmbedConfig(max_tokens=args.max_tokens)
    reuse_or_run("data", data_config, base)
    copied = copy_interests(args.interests_run, base)
    embed_manifest, _ = reuse_or_run("embed", embed_config, base)
    has_interests = embed_manifest.counts["items_with_interests"] > 0
    if not has_interests and any(name.startswith("interest") for name in wanted):
        print("no item has interests: interest variants skipped", file=sys.stderr)
        wanted = [name for name in wanted if not name.startswith("interest")]
    command, date = command_line(), datetime.now(UTC).isoformat(timespec="seconds")

    variants = {}
    for name in wanted:
        embedding, quantizer = VARIANTS[name]
        config = SidConfig(quantizer=quantizer, embedding=embedding, rqvae=RQVAEConfig(epochs=args.epochs))
        print(f"== {args.dataset} {name}", file=sys.stderr, flush=True)
        manifest = run_sid(config, variant_dir(base, name))
        m = manifest.metrics
        variants[name] = {
            "embedding": embedding, "quantizer": quantizer,
            "collision_rate": m["collision_rate_before"], "collision_rate_after": m["collision_rate_after"],
            "utilization": m["utilization"], "recon_loss": m["recon_loss"], "recon_rel": m["recon_rel"],
            "wall_s": m["train_wall_s"], "stage_wall_s": manifest.wall_s, "sid_tokens": manifest.counts["levels"],
            "reassigned": manifest.counts["reassigned"], "co_consumption": m["co_consumption"],
            "sid_map": str(RunPaths(variant_dir(base, name)).sid_map.relative_to(REPO_ROOT)),
            "date": date, "command": command,
        }
    data_manifest = read_manifest(RunPaths(base).stage_dir("data"))
    result = {
        "command": command,
        "commands": [command],
        "machine": machine_description(),
        "date": date,
        "dataset": args.dataset,
        "items": embed_manifest.counts["items"],
        "users": data_manifest.counts.get("users") if data_manifest else None,
        "interests": copied,
        "interest_coverage": embed_manifest.metrics["interest_coverage"],
        "embed": {"model": "all-MiniLM-L6-v2", "max_tokens": args.max_tokens, "fusion": "concat", "alpha": 0.5,
                  "wall_s": embed_manifest.wall_s},
        "sid": {"levels": 3, "codebook_size": 256, "collisions": "reassign", "rqvae_epochs": args.epochs},
        "variants": variants,
        "co_consumption_ratio": {name: v["co_consumption"]["ratio"] for name, v in variants.items()},
    }
    write_json_merged(RESULTS / f"sid_{args.dataset}.json", result, ["variants", "co_consumption_ratio"], ["commands"])
    print(f"wrote {RESULTS / f'sid_{args.dataset}.json'}", file=sys.stderr)


if __name__ == "__main__":
    main()
