"""What a quantiser returns: codes, last-level distances (for collision re-assignment), state to save."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Quantized:
    """codes [N, L]; last_dist [N, K] squared distance of each item's last residual to every last-level code;
    recon_loss: mean squared error of the reconstruction in input space; tensors: the quantiser's weights."""

    codes: np.ndarray
    last_dist: np.ndarray
    recon_loss: float
    tensors: dict[str, np.ndarray]
    history: dict[str, list[float]] = field(default_factory=dict)
