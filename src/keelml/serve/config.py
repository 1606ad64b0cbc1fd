"""The ``[serve]`` section of keel.toml: limits, logging cadence, reload cadence, auth, features.

>>> ServeConfig().max_batch_rows
256
>>> ServeConfig.from_mapping({"max_batch_rows": 0})
Traceback (most recent call last):
...
keelml.core.errors.ConfigError: keel.toml [serve] has invalid settings
  expected: the keys documented in docs/serving.md
  received: max_batch_rows: Input should be greater than or equal to 1
  fix: correct the listed keys in the [serve] section of keel.toml
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from keelml.core.errors import ConfigError


class ServeConfig(BaseModel):
    """Validated serving settings; every limit is a hard 4xx at the edge, never a crash inside."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_batch_rows: int = Field(default=256, ge=1, le=100_000, description="rows per /v1/predict call")
    max_body_bytes: int = Field(default=1_048_576, ge=256, le=256 * 1_048_576, description="request body")
    max_text_chars: int = Field(default=10_000, ge=1, description="characters of one text field")
    log_flush_rows: int = Field(default=1_000, ge=1, description="request-log rows per Delta commit")
    log_flush_seconds: float = Field(default=2.0, gt=0, le=3600, description="longest wait before a commit")
    log_queue_rows: int = Field(default=200_000, ge=1, description="rows buffered before back-pressure")
    reload_seconds: float = Field(default=5.0, gt=0, le=86_400, description="how often the alias is polled")
    api_key_env: str = Field(default="KEEL_API_KEY", min_length=1, description="env var holding the key")
    model_threads: int = Field(default=1, ge=1, le=256, description="ONNX Runtime intra-op threads")
    model_spinning: bool = Field(
        default=False, description="ONNX Runtime threads spin-wait between operators (burns CPU under load)"
    )
    freeze_gc: bool = Field(default=True, description="move start-up objects out of the cyclic GC's reach")
    features: tuple[str, ...] = Field(default=(), description="VIEW:FEATURE looked up for entity keys")

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any] | None) -> ServeConfig:
        try:
            return cls.model_validate(dict(raw or {}))
        except ValidationError as exc:
            raise ConfigError(
                "keel.toml [serve] has invalid settings",
                expected="the keys documented in docs/serving.md",
                received="; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()),
                fix="correct the listed keys in the [serve] section of keel.toml",
            ) from exc

    def with_overrides(self, **changes: Any) -> ServeConfig:
        """A copy with ``changes`` applied and validated again (used by CLI options)."""
        return ServeConfig.from_mapping({**self.model_dump(), **changes})
