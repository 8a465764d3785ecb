"""Config of the multi-interest retrieval stage: one discriminated section per model (`model: base|gemirec|ulim|dmi`)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from genrec.config import Epochs, LearningRate, Patience, StrictModel, TrainingConfig

MergeRule = Literal["round_robin", "max_score", "weighted"]
Extractor = Literal["self_attention", "routing"]
CategorySource = Literal["auto", "metadata", "sid"]
SeedSource = Literal["none", "auto", "labelled", "mined"]


class MultiModelConfig(TrainingConfig):
    """What every multi-interest model shares: the extractor, the item softmax and the training schedule."""

    hidden: int = Field(64, ge=8)
    interests: int = Field(4, ge=1, description="K: interest vectors per user (one retrieval list each)")
    extractor: Extractor = Field("self_attention", description="ComiRec-SA attention heads or MIND/ComiRec-DR routing")
    routing_iters: int = Field(3, ge=1, description="dynamic-routing iterations (extractor=routing)")
    max_len: int = Field(20, ge=1, description="history items the model sees (the protocol's 20)")
    dropout: float = Field(0.2, ge=0.0, lt=1.0)
    loss: Literal["full", "sampled"] = Field("full", description="softmax over all items, or over uniform negatives")
    negatives: int = Field(1000, ge=1, description="shared uniform negatives per batch (loss=sampled)")
    lr: LearningRate = 2e-3
    epochs: Epochs = 100
    patience: Patience = Field(3, description="evaluations without validation NDCG@10 gain before stopping")


class BaseConfig(MultiModelConfig):
    """The shared base alone (ComiRec-style): K extracted interests, the target's closest interest trained."""

    model: Literal["base"] = "base"


class GemiRecConfig(MultiModelConfig):
    """GemiRec: a shared interest dictionary, a posterior over the user's next dictionary interests, and one
    retrieval per top predicted interest."""

    model: Literal["gemirec"] = "gemirec"
    dictionary_size: int = Field(64, ge=2, description="interest codes shared by all users")
    dictionary: bool = Field(True, description="off: the shared base (the ablation)")
    generative: bool = Field(True, description="off: quantise the extracted interests instead of predicting codes")
    commitment: float = Field(0.25, ge=0.0, description="VQ commitment weight")
    seed_interests: SeedSource = Field("none", description="fix item codes from k-means of mined interest embeddings")
    encoder: str | None = Field(None, description="sentence-transformers folder for seeding (default all-MiniLM-L6-v2)")


class ULIMConfig(MultiModelConfig):
    """ULIM: category-aware long/short-term interests, a pointer-generator next-category predictor, item
    retrieval inside the top predicted categories."""

    model: Literal["ulim"] = "ulim"
    max_len: int = Field(256, ge=1, description="long histories, rebuilt from the train rows (padded to the longest)")
    short_len: int = Field(5, ge=1, description="most recent items of a category that form its short-term interest")
    pointer: bool = Field(True, description="off: the next category comes from the generator alone (the ablation)")


class DMIConfig(MultiModelConfig):
    """DMI: the base's interests refined by a conditional denoiser (dimension-level noise, cross-attention
    over the pruned history, DDIM steps)."""

    model: Literal["dmi"] = "dmi"
    diffusion: bool = Field(True, description="off: the shared base (the ablation)")
    timesteps: int = Field(50, ge=2, description="length of the cosine noise schedule (levels 1..start_step are used)")
    start_step: int = Field(10, ge=1, description="noise level the refinement starts from (controllable noise)")
    steps: int = Field(4, ge=1, description="denoising steps at inference")
    noise_dims: float = Field(0.5, gt=0.0, le=1.0, description="share of dimensions noised per training sample")
    prune_keep: int = Field(10, ge=1, description="history items each interest attends to (item pruning)")
    reconstruction: float = Field(1.0, ge=0.0, description="weight of || refined - coarse ||^2 in training")

    @model_validator(mode="after")
    def _start_within_schedule(self) -> DMIConfig:
        if self.start_step > self.timesteps:
            raise ValueError(f"start_step={self.start_step} exceeds timesteps={self.timesteps}")
        return self


ModelConfig = Annotated[BaseConfig | GemiRecConfig | ULIMConfig | DMIConfig, Field(discriminator="model")]


class MultiConfig(StrictModel):
    """The `multi` stage: which model, how its per-interest lists merge, how many items per user."""

    model: ModelConfig = BaseConfig()
    merge: MergeRule = Field("max_score", description="round_robin, max_score or weighted (slots by interest weight)")
    k: int = Field(50, ge=10, description="items recommended per user")
    categories: CategorySource = Field("auto", description="ULIM's categories and coverage@10: item metadata "
                                       "`categories` where present, else first-level SID codes")
    category_depth: int = Field(3, ge=1, description="metadata category path levels that name a category")
    system: str | None = Field(None, description="eval/<system>/ folder; default multi_<model>")

    @model_validator(mode="before")
    @classmethod
    def _default_model(cls, data: object) -> object:
        """A `model:` section without `model: <name>` is the shared base."""
        if isinstance(data, dict) and isinstance(data.get("model"), dict) and "model" not in data["model"]:
            data = {**data, "model": {**data["model"], "model": "base"}}
        return data

    @property
    def system_name(self) -> str:
        return self.system or f"multi_{self.model.model}"
