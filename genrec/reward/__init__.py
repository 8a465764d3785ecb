"""Reward-labelled deep interests (RLDI): behavioural labels, a light classifier, the label stage.

`RewardModel.load(path).score(contexts, interests)` is the scoring API other stages (GRPO) use; it is
imported lazily so that importing the config does not pull in torch.
"""

from typing import TYPE_CHECKING, Any

from genrec.reward.config import LabelConfig
from genrec.reward.stage import inputs, run

if TYPE_CHECKING:
    from genrec.reward.model import RewardModel

__all__ = ["LabelConfig", "RewardModel", "inputs", "run"]


def __getattr__(name: str) -> Any:
    if name == "RewardModel":
        from genrec.reward.model import RewardModel

        return RewardModel
    raise AttributeError(f"module 'genrec.reward' has no attribute {name!r}")
