"""Config of the `recommend` stage (light: no torch at import)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field, model_validator

from genrec.config import StrictModel

if TYPE_CHECKING:
    from genrec.decode.interest import MergeRule


class RecommendTarget(StrictModel):
    """One checkpoint to score and the system name its recommendations are written under."""

    checkpoint: str = Field(description="sft, grpo, or a checkpoint folder")
    system: str = Field(min_length=1, description="writes eval/<system>/recs.jsonl")


class InterestDecoding(StrictModel):
    """How interest-conditioned decoding finds a user's interests; shared by `recommend` and `serve`."""

    decoding: Literal["beam", "interest"] = Field(
        "beam", description="beam: one constrained beam search; interest: one beam group per predicted interest "
                            "(a first-level SID code), beams and slots split by its probability, merged and grouped")
    interest_source: Literal["codes", "mined", "mined_prompt", "gemirec"] = Field(
        "codes", description="decoding=interest: codes = the decoder's most probable first-level codes; mined = the "
                             "user's curated interests (label/interests_labelled.parquet) mapped to codes by text "
                             "embedding (needs embed/item_emb.safetensors), topped up with the decoder's codes; "
                             "mined_prompt = the same interests as text: one group per interest decoding the whole "
                             "catalogue from the prompt conditioned on it (an llm checkpoint trained with interests "
                             "in its prompt), weighted by the classifier's score; "
                             "gemirec = the next dictionary interests the run's GemiRec (interest_model) predicts "
                             "from the history, each mapped to the first-level code of the items it retrieves")
    interest_model: str = Field(
        "multi_gemirec", min_length=1,
        description="interest_source=gemirec: the multi system whose model (multi/<interest_model>/model.pt, from "
                    "`genrec multi train`) predicts")
    num_interests: int = Field(4, ge=0, description="decoding=interest: interests (beam groups) per user, m; 0 (with "
                                                    "interest_order=coverage): none, the plain beam's items re-ranked "
                                                    "for coverage at plain-beam cost")
    interest_order: Literal["score", "interleave", "coverage"] = Field(
        "coverage", description="decoding=interest: score = every interest's share of the list, ordered by score; "
                             "interleave = the same, ordered so every prefix (e.g. the top 10) holds the interests "
                             "in proportion to their probabilities; coverage = the plain beam search beside the "
                             "groups, every item found pooled, the list filled by score minus coverage_penalty per "
                             "item already listed from the same first-level code (the one order measured to keep "
                             "NDCG@10: BENCHMARKS.md, 'Coverage merge')")
    coverage_penalty: float = Field(
        0.05, ge=0, description="interest_order=coverage: the penalty (in summed log-probs) per listed item of the "
                                "same first-level code; 0 = the pooled items by score. 0.05 was chosen on beauty's "
                                "validation users; choose yours with scripts/tune_coverage_penalty.py (scientific: 0)")

    @model_validator(mode="after")
    def _no_interests_only_for_coverage(self) -> InterestDecoding:
        if self.num_interests == 0 and self.interest_order != "coverage":
            raise ValueError(f"num_interests 0 (no interest groups) needs interest_order coverage, got "
                             f"{self.interest_order!r}: the other orders split the list between interests")
        return self

    def merge_rule(self) -> MergeRule:
        """The engine-side merge settings of these options."""
        from genrec.decode.interest import MergeRule

        return MergeRule(self.interest_order, self.coverage_penalty)


class RecommendConfig(InterestDecoding):
    """Rank items for every test user with constrained beam search over a trained checkpoint (and, with
    `also`, over more checkpoints with the same search settings, e.g. the SFT model beside the GRPO one)."""

    checkpoint: str = Field("sft", description="sft, grpo, or a checkpoint folder")
    engine: Literal["hf", "vllm"] = Field(
        "hf", description="hf: transformers generate with the trie logits processor; vllm: the same search on "
                          "vLLM (one engine call per SID level for a whole batch; use a large batch_size, e.g. 256)")
    enforce_eager: bool = Field(False, description="engine=vllm: skip graph compilation (fast start, slower steps)")
    num_beams: int = Field(20, ge=20, description="beam width (the protocol asks for >= 20)")
    k: int = Field(20, ge=10, description="items recommended per user (<= num_beams)")
    system: str = Field("sft", min_length=1, description="writes eval/<system>/recs.jsonl")
    batch_size: int = Field(16, ge=1, description="users per generate call")
    max_users: int | None = Field(None, ge=1, description="only the first N test users (quick looks; eval counts the rest as misses)")
    threads: int = Field(2, ge=1)
    also: list[RecommendTarget] = Field(
        default_factory=list, description="more checkpoints scored the same way, e.g. [{checkpoint: sft, system: sft}]")

    @model_validator(mode="after")
    def _k_fits_beams(self) -> RecommendConfig:
        if self.k > self.num_beams:
            raise ValueError(f"k ({self.k}) must be <= num_beams ({self.num_beams})")
        if self.decoding == "interest" and (self.num_interests > self.k or 2 * self.num_interests > self.num_beams):
            raise ValueError(f"num_interests ({self.num_interests}) must be <= k ({self.k}) and <= num_beams / 2 "
                             f"({self.num_beams // 2}): every interest gets one output slot and two beams")
        return self

    @model_validator(mode="after")
    def _systems_unique(self) -> RecommendConfig:
        systems = [t.system for t in self.targets()]
        duplicate = next((s for s in systems if systems.count(s) > 1), None)
        if duplicate is not None:
            raise ValueError(f"system {duplicate!r} is named twice (recommend.system / recommend.also)")
        return self

    def targets(self) -> list[RecommendTarget]:
        """Every checkpoint to score, the main one (`checkpoint`, `system`) first."""
        return [RecommendTarget(checkpoint=self.checkpoint, system=self.system), *self.also]
