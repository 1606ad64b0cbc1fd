"""Labeling: query strategies, the active-learning loop, the label store and annotator agreement.

``ws.labels`` (registered here) suggests the next rows to label, imports labeled batches, reports
agreement and replays the loop. Strategies are plain functions over model outputs under one small
protocol (:class:`Strategy`); register your own with :func:`register_strategy`.
"""

from keelml.labeling import strategies as _strategies  # noqa: F401  (registers the built-in strategies)
from keelml.labeling.agreement import (
    Agreement,
    cohen_kappa,
    fleiss_kappa,
    krippendorff_alpha,
)
from keelml.labeling.batch import BatchRejectedError, Finding
from keelml.labeling.consensus import AgreementReport
from keelml.labeling.models import mc_dropout_probs
from keelml.labeling.protocol import (
    BudgetTooLargeError,
    EmptyPoolError,
    ModelOutputs,
    ScoreStrategy,
    Strategy,
    get_strategy,
    register_strategy,
    select,
    strategy_names,
)
from keelml.labeling.simulate import SimulationConfig, SimulationResult, simulate
from keelml.labeling.store import ImportResult, LabelStore, Suggestion
from keelml.labeling.strategies import bald_scores, entropy_scores, kcenter_greedy, margin_scores

__all__ = [
    "Agreement",
    "AgreementReport",
    "BatchRejectedError",
    "BudgetTooLargeError",
    "EmptyPoolError",
    "Finding",
    "ImportResult",
    "LabelStore",
    "ModelOutputs",
    "ScoreStrategy",
    "SimulationConfig",
    "SimulationResult",
    "Strategy",
    "Suggestion",
    "bald_scores",
    "cohen_kappa",
    "entropy_scores",
    "fleiss_kappa",
    "get_strategy",
    "kcenter_greedy",
    "krippendorff_alpha",
    "margin_scores",
    "mc_dropout_probs",
    "register_strategy",
    "select",
    "simulate",
    "strategy_names",
]
