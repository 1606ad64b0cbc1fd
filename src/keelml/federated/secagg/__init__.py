"""Secure aggregation: SecAgg+ (Bell et al. 2020) with X25519, HKDF, AES-CTR masks and Shamir shares.

The server learns the sum of the surviving clients' updates and nothing else about any one of them
(honest-but-curious server, fewer than t colluding clients). See docs/secure-aggregation.md.

    from keelml.federated.secagg import SecAggConfig, secure_sum
    result = secure_sum(updates, SecAggConfig(), dropped_after_masking={3})
    result.total, result.survivors, result.error_bound
"""

from keelml.federated.secagg.client import SecAggClient
from keelml.federated.secagg.config import RoundPlan, SecAggConfig
from keelml.federated.secagg.errors import MessageRejectedError, ThresholdNotMetError, UpdateOutOfRangeError
from keelml.federated.secagg.server import SecAggServer
from keelml.federated.secagg.simulate import PhaseTiming, SecAggResult, run_round, secure_sum

__all__ = [
    "MessageRejectedError",
    "PhaseTiming",
    "RoundPlan",
    "SecAggClient",
    "SecAggConfig",
    "SecAggResult",
    "SecAggServer",
    "ThresholdNotMetError",
    "UpdateOutOfRangeError",
    "run_round",
    "secure_sum",
]
