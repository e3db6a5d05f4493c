"""Losses beyond sentence-transformers' own: translation distillation, and the router that lets one
training run mix it with in-batch pair ranking.

A recipe source with ``objective: distill`` yields batches of one text column (a translation, with
the passage prefix) and a ``label`` column: the frozen base model's embedding of the item's English
text, computed once before training by the trainer. :class:`TranslationDistillLoss`
pulls the student's embedding of the translation onto it, as in Reimers & Gurevych (2020,
"Making monolingual sentence embeddings multilingual"), here on unit vectors so the loss is
``2 (1 - cos)`` and its size is comparable to the ranking loss. :class:`PairsOrDistillLoss`
sends each batch to the loss it was made for: batches that carry teacher embeddings to the
distillation loss, all others to the pair loss (MNRL or cached MNRL).
"""
from __future__ import annotations

from typing import Any, Iterable

import torch
from torch import nn

__all__ = ['TranslationDistillLoss', 'PairsOrDistillLoss']


class TranslationDistillLoss(nn.Module):
    """Mean squared L2 distance between the student's embedding of each text and its label vector.

    Parameters
    ----------
    model : SentenceTransformer
        The student (whose output is L2-normalised for the encoders here).
    """

    def __init__(self, model: Any) -> None:
        super().__init__()
        self.model = model

    def forward(self, sentence_features: Iterable[dict[str, torch.Tensor]], labels: torch.Tensor) -> torch.Tensor:
        (features,) = list(sentence_features)
        student = self.model(features)['sentence_embedding']
        return (student - labels.to(student.dtype)).pow(2).sum(-1).mean()


class PairsOrDistillLoss(nn.Module):
    """``distill`` for batches with ``[batch, dim]`` teacher labels, ``pairs`` for every other batch.

    Routing by the batch's content rather than by dataset name (a loss dict) lets the validation
    dataset stay one plain pairs dataset with its ``eval_loss``, as in a run without distillation.
    """

    def __init__(self, pairs: nn.Module, distill: nn.Module) -> None:
        super().__init__()
        self.pairs = pairs
        self.distill = distill

    def forward(self, sentence_features: Iterable[dict[str, torch.Tensor]],
                labels: torch.Tensor | None) -> torch.Tensor:
        if labels is not None and labels.dim() == 2:
            return self.distill(sentence_features, labels)
        return self.pairs(sentence_features, labels)
