"""Errors raised by the secure-aggregation protocol, each in the KeelError tree."""

from __future__ import annotations

from keelml.core.errors import InvalidInputError, KeelError


class UpdateOutOfRangeError(InvalidInputError):
    """A client's update leaves the fixed-point range; nothing is clipped silently."""


class MessageRejectedError(KeelError, ValueError):
    """A protocol message failed authentication, was replayed, or belongs to another round or phase."""

    exit_code = 4


class ThresholdNotMetError(KeelError, RuntimeError):
    """Too few clients remain to reconstruct the masks; the round fails instead of leaking."""

    exit_code = 9
