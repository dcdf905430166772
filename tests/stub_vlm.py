"""A stand-in for a Qwen-VL model whose answer depends only on how many frames it was shown.

`RewardModel` wraps it with a tiny model's real processor, so every input path (frames, prefixes,
batching, left padding) runs for real; only the network is replaced. The five-way distribution for a
clip of ``2 * g`` frames (``g`` the temporal grid, ``video_grid_thw[:, 0]``) is ``DISTRIBUTIONS[g]``,
and ``calls`` counts forward passes.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import torch

#: Temporal grid size -> the distribution over scores 1..5 the stub answers.
DISTRIBUTIONS = {
    g: np.array([1.0 / (1 + abs(k - g)) for k in range(1, 6)])
    / sum(1.0 / (1 + abs(k - g)) for k in range(1, 6))
    for g in range(1, 257)
}


class StubVLM(torch.nn.Module):
    """Logits whose softmax over the score tokens is ``DISTRIBUTIONS[video_grid_thw[i, 0]]``."""

    def __init__(self, score_token_ids: tuple[int, ...], vocab_size: int):
        super().__init__()
        self.score_token_ids = list(score_token_ids)
        self.vocab_size = vocab_size
        self.calls = 0
        self.batch_sizes: list[int] = []
        self._anchor = torch.nn.Parameter(torch.zeros(1))

    @property
    def device(self) -> torch.device:
        return self._anchor.device

    @property
    def dtype(self) -> torch.dtype:
        return self._anchor.dtype

    def forward(self, input_ids=None, video_grid_thw=None, logits_to_keep=1, **_):
        self.calls += 1
        batch = input_ids.shape[0]
        self.batch_sizes.append(batch)
        logits = torch.full((batch, 1, self.vocab_size), -1e4, dtype=torch.float64)
        for i, grid in enumerate(video_grid_thw[:, 0].tolist()):
            logits[i, 0, self.score_token_ids] = torch.log(torch.tensor(DISTRIBUTIONS[int(grid)]) + 1e-300)
        return SimpleNamespace(logits=logits)


def expected_of(distribution: np.ndarray) -> float:
    return float(np.dot(np.arange(1, 6), distribution))
