"""The `genrec` command line: a thin layer over the stage functions (`genrec.<stage>.run(config, run_dir)`).

Every command takes `--config/-c` (a run YAML; defaults apply without one) and repeatable
`--set key.sub=value` overrides.
"""

from __future__ import annotations

import json
from contextlib import closing
from pathlib import Path
from typing import Annotated, NoReturn, get_args

import typer
from rich.table import Table

from genrec.artifacts import Manifest, RunPaths
from genrec.config import ConfigError
from genrec.mining.cache import MiningCache
from genrec.pipeline import RunConfig, load_run_config, run_pipeline, run_stage
from genrec.progress import console

app = typer.Typer(help="genrec: LLM-driven generative recommender. One stage per command; `genrec run` runs them all.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
data_app = typer.Typer(help="Dataset preparation.", no_args_is_help=True)
app.add_typer(data_app, name="data")

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="run config YAML (configs/*.yaml)")]
SetOpt = Annotated[list[str] | None, typer.Option("--set", "-s", help="override, e.g. --set sft.lr=1e-4 (repeatable)")]


def _load(config: Path | None, overrides: list[str] | None) -> RunConfig:
    try:
        return load_run_config(config, overrides or [])
    except ConfigError as exc:
        console.print(f"[red]config error[/red]\n{exc}")
        raise typer.Exit(2) from None


def _fail(exc: Exception) -> NoReturn:
    console.print(f"[red]error:[/red] {exc}")
    raise typer.Exit(1) from None


def _run_stage(cfg: RunConfig, name: str) -> Manifest:
    """Run one stage from its command: a config without the stage's section uses its defaults; bad input
    (missing file, bad value, unknown id) ends the command with the message and exit code 1."""
    if getattr(cfg, name) is None:
        section_type = next(t for t in get_args(RunConfig.model_fields[name].annotation) if t is not type(None))
        setattr(cfg, name, section_type())
    try:
        return run_stage(cfg, name)
    except (OSError, ValueError, KeyError) as exc:
        _fail(exc)


def metrics_table(rows: dict[str, dict], title: str) -> Table:
    """A table of HR/NDCG@k per system."""
    table = Table(title=title)
    table.add_column("system")
    keys = ["hr@5", "hr@10", "ndcg@5", "ndcg@10"]
    for key in keys:
        table.add_column(key, justify="right")
    for name, metrics in rows.items():
        table.add_row(name, *[f"{metrics.get(k, float('nan')):.4f}" for k in keys])
    return table


@data_app.command("prepare")
def data_prepare(config: ConfigOpt = None, set_: SetOpt = None) -> None:
    """Read the dataset (data.name / data.path / data.interactions), split leave-one-out, write
    items.parquet and sequences.parquet under <run_dir>/data, and print the statistics."""
    cfg = _load(config, set_)
    try:
        manifest = run_stage(cfg, "data")
    except (OSError, ValueError) as exc:
        _fail(exc)
    table = Table(title=f"dataset {cfg.data.name} -> {cfg.run_dir / 'data'}")
    table.add_column("statistic")
    table.add_column("value", justify="right")
    for key, value in manifest.counts.items():
        table.add_row(key, f"{value:,}")
    console.print(table)


@app.command("baseline")
def baseline(system: Annotated[str, typer.Argument(help="mostpop or sasrec")],
             config: ConfigOpt = None, set_: SetOpt = None) -> None:
    """Fit a reference system (MostPop, or SASRec with full-softmax cross-entropy) on the training split,
    write eval/<system>/recs.jsonl and print its test metrics."""
    cfg = _load(config, [*(set_ or []), f"baselines.systems=[{system}]"])
    try:
        run_stage(cfg, "baselines")
        from genrec.eval import evaluate_file

        metrics = evaluate_file(RunPaths(cfg.run_dir).recs(system), cfg.run_dir)
    except (OSError, ValueError) as exc:
        _fail(exc)
    console.print(metrics_table({system: metrics}, f"{system} on {cfg.data.name} (test)"))


@app.command("mine")
def mine(config: ConfigOpt = None, set_: SetOpt = None,
         limit: Annotated[int | None, typer.Option(help="mine a deterministic sample of N items and N users")] = None) -> None:
    """Mine deep interests (needs, motivations, use contexts, lifestyles) of items and users with the LLM
    backends in the `mine:` section (hf / vllm / openai; default: SmolLM2-135M-Instruct on vLLM). Every
    answer is cached in <run_dir>/mine/mining.sqlite, so an interrupted run resumes; writes
    mine/interests.parquet and prints per-backend parse-success rate and speed."""
    overrides = [*(set_ or []), *([f"mine.limit_items={limit}", f"mine.limit_users={limit}"] if limit else [])]
    cfg = _load(config, overrides)
    manifest = _run_stage(cfg, "mine")
    table = Table(title=f"mining -> {RunPaths(cfg.run_dir).interests}")
    for column in ("backend", "requests", "ok", "failed", "asked now", "parse rate", "req/s", "tok/s"):
        table.add_column(column, justify="left" if column == "backend" else "right")
    for label, s in manifest.metrics["backends"].items():
        table.add_row(label, *(str(s[k]) for k in ("requests", "ok", "failed", "asked_now")),
                      f"{s['parse_success_rate']:.1%}", f"{s['items_per_s']:.2f}", f"{s['tokens_per_s']:.0f}")
    console.print(table)
    console.print(f"{manifest.counts['interests']:,} interests for {manifest.counts['items']:,} items and "
                  f"{manifest.counts['users']:,} users (mean agreement {manifest.metrics['mean_agreement']})")


cache_app = typer.Typer(help="Carry mined answers between machines (the mining cache as gzipped JSON lines).",
                        no_args_is_help=True)
app.add_typer(cache_app, name="cache")


@cache_app.command("export")
def cache_export(file: Annotated[Path, typer.Argument(help="output, e.g. users.jsonl.gz")], config: ConfigOpt = None,
                 set_: SetOpt = None,
                 kind: Annotated[list[str] | None, typer.Option(help="only these kinds (item / user; repeatable)")] = None,
                 ) -> None:
    """Write the run's mining answers (raw text, parsed interests, timings) to FILE."""
    path = RunPaths(_load(config, set_).run_dir).mining_cache
    if unknown := set(kind or []) - {"item", "user"}:
        _fail(ValueError(f"unknown kind {sorted(unknown)}: use item or user"))
    if not path.is_file():
        _fail(FileNotFoundError(f"no mining cache at {path}: run `genrec mine` first"))
    with closing(MiningCache(path)) as cache:
        count = cache.export(file, kind)
    console.print(f"{count:,} answers -> {file}")


@cache_app.command("import")
def cache_import(file: Annotated[Path, typer.Argument(help="a file written by `genrec cache export`")],
                 config: ConfigOpt = None, set_: SetOpt = None) -> None:
    """Add the answers in FILE to the run's mining cache; `genrec mine` then asks only what is left."""
    try:
        with closing(MiningCache(RunPaths(_load(config, set_).run_dir).mining_cache)) as cache:
            taken, kept = cache.import_rows(file)
    except (OSError, ValueError) as exc:
        _fail(exc)
    console.print(f"{taken:,} answers taken from {file}, {kept:,} kept from the local cache")


@app.command("label")
def label(config: ConfigOpt = None, set_: SetOpt = None) -> None:
    """Train the reward classifier (RLDI) on behavioural labels and label every mined interest. A user
    interest is positive when the user's later training items support it, an item interest when its
    buyers' other training items do; the classifier (sentence-transformers encoder + MLP head) is scored
    on held-out users/items against plain cosine similarity. Writes label/reward_model/ and
    label/interests_labelled.parquet (score, label, threshold)."""
    cfg = _load(config, set_)
    manifest = _run_stage(cfg, "label")
    held = manifest.metrics["holdout"]
    table = Table(title=f"reward model on held-out entities ({held['pairs']:,} pairs, "
                        f"{held['positive_rate']:.1%} positive)")
    for column in ("pairs", "ROC-AUC", "PR-AUC", "cosine ROC-AUC", "cosine PR-AUC"):
        table.add_column(column, justify="left" if column == "pairs" else "right")
    for prefix, name in (("", "all"), ("user_", "users"), ("item_", "items")):
        table.add_row(name, *(f"{held[f'{prefix}{k}']:.3f}" for k in ("roc_auc", "pr_auc", "cosine_roc_auc", "cosine_pr_auc")))
    console.print(table)
    counts = manifest.counts
    console.print(f"kept {counts['kept']:,} of {counts['interests']:,} mined interests (score >= "
                  f"{manifest.metrics['threshold']:.3f}) -> {RunPaths(cfg.run_dir).interests_labelled}")


@app.command("embed")
def embed(config: ConfigOpt = None, set_: SetOpt = None) -> None:
    """Encode every item for semantic IDs (IEID): item text (embed.template) and its curated interests
    (label/interests_labelled.parquet rows with label 1, weighted by score; else mine/interests.parquet;
    else none) with a local sentence-transformers model, fused by embed.fusion (concat, weighted_sum,
    text_only), optionally with image vectors (embed.image_emb). Writes embed/item_emb.safetensors."""
    cfg = _load(config, set_)
    manifest = _run_stage(cfg, "embed")
    counts, metrics = manifest.counts, manifest.metrics
    console.print(f"{counts['items']:,} items -> {RunPaths(cfg.run_dir).item_emb} (fused dim {counts['dim_fused']}, "
                  f"fusion {cfg.embed.fusion}); interests from {metrics['interest_source']}"
                  f"{' (' + metrics['interest_file'] + ')' if metrics['interest_file'] else ''}: "
                  f"{counts['items_with_interests']:,} items ({metrics['interest_coverage']:.1%})")


@app.command("sid")
def sid(config: ConfigOpt = None, set_: SetOpt = None) -> None:
    """Turn item embeddings into unique semantic IDs like <a_12><b_200><c_7>: an RQ-VAE (sid.quantizer=rqvae;
    MLP autoencoder, residual codebooks with k-means init and dead-code reset) or residual k-means
    (rqkmeans); collisions re-assigned to free last-level codes, else an extra <d_i> level. Writes
    sid/sid_map.parquet and sid/rqvae.safetensors; prints collision rate, codebook use, reconstruction."""
    cfg = _load(config, set_)
    manifest = _run_stage(cfg, "sid")
    m = manifest.metrics
    table = Table(title=f"{m['quantizer']} semantic IDs -> {RunPaths(cfg.run_dir).sid_map}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    rows = {
        "items": f"{manifest.counts['items']:,}",
        "SID length (tokens)": str(manifest.counts["levels"]),
        "collision rate before / after": f"{m['collision_rate_before']:.2%} / {m['collision_rate_after']:.0%}",
        "codebook utilisation per level": " ".join(f"{u:.0%}" for u in m["utilization"]),
        "reconstruction MSE": f"{m['recon_loss']:.5f}",
        "co-consumption ratio (same first code vs random)": f"{m['co_consumption']['ratio']:.2f}",
        "training wall time": f"{m['train_wall_s']:.1f} s",
    }
    for key, value in rows.items():
        table.add_row(key, value)
    console.print(table)


@app.command("sft")
def sft(config: ConfigOpt = None, set_: SetOpt = None) -> None:
    """Supervised fine-tuning with trl's SFTTrainer: history SIDs -> next SID (plus, for sft.model.kind=llm,
    item title <-> SID alignment and user interests -> SID; weights in sft.tasks), loss on the completion
    only. sft.model.kind: scratch (small Llama over SID tokens) or llm (SmolLM2-135M-Instruct by default,
    full fine-tuning or LoRA with sft.model.lora). The checkpoint is chosen by validation NDCG@10 of
    constrained beam search (sft.select_by); a killed run resumes from sft/trainer/. Writes sft/ckpt/.
    sft.distill={teachers: [other runs' sft/ckpt]} also trains towards their mean next-token distribution
    (ensemble distillation). Several GPUs: `accelerate launch -m genrec.cli sft ...`."""
    cfg = _load(config, set_)
    manifest = _run_stage(cfg, "sft")
    table = Table(title=f"SFT ({cfg.sft.model.kind}) -> {RunPaths(cfg.run_dir).sft_ckpt}, "
                        f"{manifest.counts['steps']} steps, {manifest.metrics['train_wall_s']:.0f} s")
    for column in ("step", "valid loss", "hr@10", "ndcg@10"):
        table.add_column(column, justify="right")
    for point in manifest.metrics["valid_curve"]:
        table.add_row(str(point["step"]), *[f"{point[k]:.4f}" if k in point else "-" for k in ("loss", "hr@10", "ndcg@10")])
    console.print(table)
    console.print(f"best {manifest.metrics['select_by']}: {manifest.metrics['best_metric']:.4f}")


@app.command("grpo")
def grpo(config: ConfigOpt = None, set_: SetOpt = None) -> None:
    """Reinforcement learning from sft/ckpt with trl's GRPOTrainer: per prompt a group of
    `grpo.num_generations` rollouts, confined to valid SIDs by the decoding trie, scored by weighted terms
    (grpo.weights: exact_hit, sid_prefix, rank_penalty, invalid_penalty, interest_reward = the reward
    classifier's score of the generated item against the user's curated interests), KL `grpo.beta` to the
    SFT model. The checkpoint is chosen by validation NDCG@10 (step 0 = the SFT model); writes grpo/ckpt/
    and a manifest with per-term reward curves and the invalid-rollout count."""
    cfg = _load(config, set_)
    manifest = _run_stage(cfg, "grpo")
    curves = manifest.metrics["reward_curves"]
    table = Table(title=f"GRPO -> {RunPaths(cfg.run_dir).grpo_ckpt} ({manifest.counts['steps']} steps)")
    for column in ("reward term", "weight", "first step", "last step"):
        table.add_column(column, justify="left" if column == "reward term" else "right")
    for name, weight in zip(manifest.metrics["reward_terms"], manifest.metrics["reward_weights"], strict=True):
        scored = [v for v in curves.get(name, []) if v is not None]  # None: the term scored nobody that step
        ends = (f"{scored[0]:.4f}", f"{scored[-1]:.4f}") if scored else ("-", "-")
        table.add_row(name, f"{weight:g}", *ends)
    console.print(table)
    console.print(f"rollouts {manifest.counts['rollouts']:,} ({manifest.metrics['rollouts_per_s']:.1f}/s), "
                  f"invalid {manifest.counts['invalid_rollouts']}; validation NDCG@10 "
                  f"SFT {manifest.metrics['valid_ndcg10_sft']:.4f} -> best {manifest.metrics['valid_ndcg10_best']:.4f} "
                  f"at step {manifest.counts['best_step']}")


@app.command("recommend")
def recommend(config: ConfigOpt = None, set_: SetOpt = None,
              engine: Annotated[str | None, typer.Option(help="hf (transformers) or vllm; same lists and scores, "
                                                              "vllm batches every beam of a batch per step")] = None,
              decoding: Annotated[str | None, typer.Option(help="beam (default) or interest: one beam group per "
                                                                "predicted interest, merged")] = None) -> None:
    """Rank items for every test user (history = the test row's history) with constrained beam search
    over recommend.checkpoint (sft, grpo or a folder) and every checkpoint in recommend.also: every
    generated SID is a catalogue item, lists are distinct. Writes eval/<system>/recs.jsonl per checkpoint
    and prints their test metrics."""
    cfg = _load(config, [*(set_ or []), *([f"recommend.engine={engine}"] if engine else []),
                         *([f"recommend.decoding={decoding}"] if decoding else [])])
    manifest = _run_stage(cfg, "recommend")
    systems = manifest.metrics["systems"]
    try:
        from genrec.eval import evaluate_file

        rows = {name: evaluate_file(RunPaths(cfg.run_dir).recs(name), cfg.run_dir) for name in systems}
    except (OSError, ValueError, KeyError) as exc:
        _fail(exc)
    console.print(metrics_table(rows, f"{', '.join(systems)} on {cfg.data.name} (test)"))
    for name, m in systems.items():
        console.print(f"{name}: {manifest.counts['users']:,} users, {m['users_per_s']:.1f} users/s ({m['num_beams']} beams)")


@app.command("eval")
def evaluate(config: ConfigOpt = None, set_: SetOpt = None,
             recs: Annotated[Path | None, typer.Option(help="score this recs.jsonl instead of the configured systems")] = None,
             split: Annotated[str, typer.Option(help="test or valid")] = "test") -> None:
    """Score recommendations with full-ranking HR@5/10 and NDCG@5/10. recs.jsonl has one line per user:
    {"user": <user id>, "items": [<item id>, ... best first, >= 10]}."""
    cfg = _load(config, set_)
    try:
        if recs is not None:
            from genrec.eval import evaluate_file

            rows = {recs.parent.name or str(recs): evaluate_file(recs, cfg.run_dir, split)}
        else:
            manifest = run_stage(cfg, "eval")
            rows = manifest.metrics
    except (OSError, ValueError) as exc:
        _fail(exc)
    console.print(metrics_table(rows, f"{cfg.data.name} ({split})"))
    console.print_json(json.dumps(rows))


multi_app = typer.Typer(help="Multi-interest retrievers (shared base, GemiRec, ULIM, DMI).", no_args_is_help=True)
app.add_typer(multi_app, name="multi")


def _multi_report(cfg: RunConfig, manifest: Manifest) -> None:
    from genrec.eval import evaluate_file

    system = cfg.multi.system_name
    try:
        metrics = evaluate_file(RunPaths(cfg.run_dir).recs(system), cfg.run_dir)
    except (OSError, ValueError) as exc:
        _fail(exc)
    console.print(metrics_table({system: metrics}, f"{system} on {cfg.data.name} (test, merge {cfg.multi.merge})"))
    console.print(f"interest collapse (mean pairwise cosine) {manifest.metrics['collapse']:.3f}, "
                  f"category coverage@10 {manifest.metrics['coverage@10']:.2f}")


@multi_app.command("train")
def multi_train(config: ConfigOpt = None, set_: SetOpt = None) -> None:
    """Train the retriever in the `multi:` section (multi.model.model = base, gemirec, ulim or dmi) with early
    stopping on validation NDCG@10 (a killed run resumes), save multi/<system>/model.pt, write
    eval/<system>/recs.jsonl (per-interest lists merged by multi.merge) and print its test metrics."""
    cfg = _load(config, set_)
    _multi_report(cfg, _run_stage(cfg, "multi"))


@multi_app.command("recommend")
def multi_recommend(config: ConfigOpt = None, set_: SetOpt = None) -> None:
    """Re-rank the test users with the saved multi/<system>/model.pt under multi.merge (round_robin,
    max_score, weighted) and multi.k, without training; writes eval/<system>/recs.jsonl."""
    cfg = _load(config, set_)
    if cfg.multi is None:
        from genrec.multi import MultiConfig

        cfg.multi = MultiConfig()
    from genrec.multi import recommend as multi_rank

    try:
        manifest = multi_rank(cfg.multi, cfg.run_dir)
    except (OSError, ValueError, KeyError) as exc:
        _fail(exc)
    _multi_report(cfg, manifest)


@app.command("run")
def run(config: Annotated[Path, typer.Argument(help="run config YAML, e.g. configs/demo.yaml")],
        set_: SetOpt = None,
        force: Annotated[bool, typer.Option(help="re-run every stage even if fresh")] = False) -> None:
    """Run every stage configured in CONFIG, in order, skipping stages whose config and inputs are
    unchanged since their last successful run; print the metrics table and a few test users'
    recommendations (titles, SIDs) beside the interests that explain them at the end."""
    cfg = _load(config, set_)

    def report(name: str, status: str) -> None:
        label = {"skip": "[green]fresh, skipped[/green]", "run": "[yellow]running[/yellow]", "off": "[dim]off[/dim]"}[status]
        console.print(f"stage [bold]{name}[/bold]: {label}")

    try:
        run_pipeline(cfg, force=force, on_stage=report)
    except (OSError, ValueError) as exc:
        _fail(exc)
    paths = RunPaths(cfg.run_dir)
    if cfg.eval is not None:
        rows = {name: json.loads(paths.metrics(name).read_text()) for name in cfg.eval.systems
                if paths.metrics(name).is_file()}
        console.print(metrics_table(rows, f"{cfg.data.name}: test metrics (full ranking)"))
    if cfg.recommend is not None and paths.recs(cfg.recommend.system).is_file():
        from genrec.report import sample_recommendations, samples_tables

        for table in samples_tables(sample_recommendations(cfg.run_dir, cfg.recommend.system), cfg.recommend.system):
            console.print(table)


@app.command("serve")
def serve(config: ConfigOpt = None, set_: SetOpt = None) -> None:
    """Serve recommendations over HTTP (FastAPI + uvicorn) from a checkpoint (serve.checkpoint: sft, grpo or
    a path) by constrained beam search on an in-process vLLM engine (serve.engine=vllm; hf = transformers, the
    fallback; auto = vllm when installed). POST /v1/recommend {"user_id": ...} or {"history": <item ids>},
    "k", optional "interests" -> ranked items (id, title, SID, score) and the user interests that explain
    them; GET /healthz; GET /metrics (Prometheus). Binds serve.host:serve.port (127.0.0.1:8000); when the
    env var named by serve.api_key_env (GENREC_API_KEY) is set, /v1/* needs it in the X-API-Key header."""
    cfg = _load(config, set_)
    from genrec.serve import ServeConfig
    from genrec.serve.app import serve as run_server

    settings = cfg.serve or ServeConfig()
    console.print(f"genrec serve: {settings.checkpoint_path(cfg.run_dir)} on http://{settings.host}:{settings.port} "
                  f"(engine {settings.engine}, {settings.num_beams} beams)")
    try:
        run_server(settings, cfg.run_dir)
    except (OSError, ValueError, RuntimeError) as exc:
        _fail(exc)


if __name__ == "__main__":
    app()
