"""A reviewable data schema, inferred from a reference version's stored profile (no rescan).

The schema says what a later version, or a serving batch, must look like: column types, which
columns are required in which environment (the label in training only, as in TFX), numeric ranges,
allowed categories, missing-rate bounds and the uniqueness of the id. It round-trips through YAML
so a person can review and edit it (``keel data schema NAME --write schema.yaml``).

>>> col = ColumnSchema("score", "categorical", "string", role="label", allowed=("great", "other"))
>>> col.required_in("serving"), col.required_in("training")
(False, True)
>>> DataSchema.from_yaml(DataSchema((col,)).to_yaml()).column("score").allowed
('great', 'other')
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, get_args

from keelml.core.errors import ColumnNotFoundError, InvalidInputError, SourceNotFoundError
from keelml.data.profile import ColumnProfile, DatasetProfile

Environment = Literal["training", "serving"]
Role = Literal["feature", "label", "id", "time"]
ColumnKind = Literal["numeric", "categorical", "text", "boolean", "temporal", "other"]
ENVIRONMENTS: tuple[Environment, ...] = ("training", "serving")
MAX_DOMAIN = 50  # categorical columns with more distinct values get no list of allowed values
DEFAULT_VIOLATION_RATE = 0.01  # out-of-range / unknown values above this share of rows block
DEFAULT_MAX_DRIFT = 0.1  # L-infinity (categorical) or Kolmogorov-Smirnov (numeric) distance


def _bad(problem: str, received: str, fix: str, expected: str | None = None) -> InvalidInputError:
    return InvalidInputError(problem, expected=expected, received=received, fix=fix)


@dataclass(frozen=True, slots=True)
class ColumnSchema:
    """What one column must look like; validated on construction."""

    name: str
    kind: ColumnKind
    dtype: str
    role: Role = "feature"
    environments: tuple[Environment, ...] | None = None  # where it must be present (label: training)
    max_missing_rate: float = 0.0
    minimum: float | None = None
    maximum: float | None = None
    allowed: tuple[str, ...] | None = None
    unique: bool = False
    max_violation_rate: float = DEFAULT_VIOLATION_RATE
    max_drift: float = DEFAULT_MAX_DRIFT
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.environments is None:
            object.__setattr__(self, "environments", ("training",) if self.role == "label" else ENVIRONMENTS)
        where = f"schema column {self.name!r}"
        if not self.name:
            raise _bad("a schema column has no name", "''", "give every column a name")
        if self.kind not in get_args(ColumnKind):
            raise _bad(
                f"{where} has an unknown kind",
                self.kind,
                "use one of " + ", ".join(get_args(ColumnKind)),
            )
        if self.role not in get_args(Role):
            raise _bad(f"{where} has an unknown role", self.role, "use feature, label, id or time")
        unknown = [e for e in self.environments or () if e not in ENVIRONMENTS]
        if unknown:
            raise _bad(f"{where} names an unknown environment", str(unknown), "use training and/or serving")
        for key in ("max_missing_rate", "max_violation_rate", "max_drift"):
            value = getattr(self, key)
            if not 0.0 <= value <= 1.0:
                raise _bad(f"{where}: {key} must be a share of rows", repr(value), "use a number in [0, 1]")
        if self.minimum is not None and self.maximum is not None and self.minimum > self.maximum:
            raise _bad(
                f"{where}: minimum is above maximum",
                f"{self.minimum} > {self.maximum}",
                "swap or correct the bounds",
            )

    def required_in(self, environment: Environment) -> bool:
        return environment in (self.environments or ())

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["environments"] = list(self.environments or ())
        out["allowed"] = list(self.allowed) if self.allowed is not None else None
        out["notes"] = list(self.notes)
        return {k: v for k, v in out.items() if v is not None and (v != [] or k == "environments")}

    @staticmethod
    def from_dict(data: dict[str, Any]) -> ColumnSchema:
        if not isinstance(data, dict):
            raise _bad("a schema column is not a mapping", repr(data)[:80], "write each column as key: value")
        known = set(ColumnSchema.__dataclass_fields__)
        extra = sorted(set(data) - known)
        if extra:
            raise _bad(
                f"schema column {data.get('name')!r} has unknown keys",
                ", ".join(extra),
                "remove them; known keys: " + ", ".join(sorted(known)),
            )
        values = dict(data)
        for key in ("environments", "allowed", "notes"):
            if values.get(key) is not None:
                values[key] = tuple(str(v) if key != "environments" else v for v in values[key])
        for key in ("minimum", "maximum", "max_missing_rate", "max_violation_rate", "max_drift"):
            if values.get(key) is not None:
                values[key] = float(values[key])
        try:
            return ColumnSchema(**values)
        except TypeError as exc:
            raise _bad(
                "a schema column is incomplete", str(exc), "give at least name, kind and dtype"
            ) from exc


@dataclass(frozen=True, slots=True)
class DataSchema:
    """The schema of a dataset: one entry per column, plus where it was inferred from."""

    columns: tuple[ColumnSchema, ...]
    dataset: str | None = None
    source: str | None = None  # the version it was inferred from, e.g. "reviews@1"
    notes: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        names = [c.name for c in self.columns]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise _bad("the schema lists a column twice", ", ".join(dupes), "keep one entry per column")

    def column(self, name: str) -> ColumnSchema:
        for col in self.columns:
            if col.name == name:
                return col
        raise ColumnNotFoundError(
            f"the schema has no column {name!r}",
            expected="one of " + ", ".join(c.name for c in self.columns),
            received=name,
            fix="check the column name, or add it to the schema file",
        )

    @property
    def label(self) -> str | None:
        return next((c.name for c in self.columns if c.role == "label"), None)

    @property
    def id(self) -> str | None:
        return next((c.name for c in self.columns if c.role == "id"), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "source": self.source,
            "notes": list(self.notes),
            "columns": [c.to_dict() for c in self.columns],
        }

    @staticmethod
    def from_dict(data: Any) -> DataSchema:
        if not isinstance(data, dict) or not isinstance(data.get("columns"), list):
            raise _bad(
                "this is not a keelml schema",
                repr(data)[:80],
                "write one with `keel data schema NAME --write schema.yaml` and edit it",
                expected="a mapping with a 'columns' list",
            )
        return DataSchema(
            tuple(ColumnSchema.from_dict(c) for c in data["columns"]),
            data.get("dataset"),
            data.get("source"),
            tuple(str(n) for n in data.get("notes") or ()),
        )

    def to_yaml(self) -> str:
        import yaml

        return str(yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True))

    @staticmethod
    def from_yaml(text: str) -> DataSchema:
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise _bad(
                "the schema is not valid YAML", str(exc).splitlines()[0], "fix the YAML syntax"
            ) from exc
        return DataSchema.from_dict(data)

    def write(self, path: str | Path) -> Path:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(self.to_yaml(), encoding="utf-8")
        return target

    @staticmethod
    def read(path: str | Path) -> DataSchema:
        source = Path(path)
        if not source.is_file():
            raise SourceNotFoundError(
                f"schema file {source} does not exist",
                expected="a YAML file written by `keel data schema NAME --write FILE`",
                received=str(source),
                fix="check the path, or write one with `keel data schema NAME --write FILE`",
            )
        return DataSchema.from_yaml(source.read_text(encoding="utf-8"))


def infer_schema(
    profile: DatasetProfile,
    *,
    label: str | None = None,
    id: str | None = None,
    time: str | None = None,
    dataset: str | None = None,
    source: str | None = None,
) -> DataSchema:
    """Infer a schema from a stored profile: observed ranges, domains and missing rates.

    Columns whose profile cannot support a constraint get a note saying why (all missing, bytes
    that are not UTF-8 text, too many distinct values for a domain).
    """
    roles: dict[str, Role] = {}
    for role, name in (("label", label), ("id", id), ("time", time)):
        if name is not None:
            roles[name] = role  # type: ignore[assignment]
    columns = tuple(_infer_column(c, roles.get(c.name, "feature")) for c in profile.columns)
    notes = tuple(f"{c.name}: {n}" for c in columns for n in c.notes)
    return DataSchema(columns, dataset, source, notes)


def _infer_column(col: ColumnProfile, role: Role) -> ColumnSchema:
    notes: list[str] = []
    base = ColumnSchema(
        col.name,
        col.kind,
        col.dtype,
        role=role,
        unique=role == "id",
    )
    rate = col.missing_rate
    if col.rows and col.nulls == col.rows:
        notes.append("all values are missing in the reference: only its presence is checked")
        return replace(base, max_missing_rate=1.0, notes=tuple(notes))
    # Observed rate plus slack (half of it, at least 2 points), so sampling noise does not block.
    bound = 0.0 if rate == 0 else min(1.0, round(rate + max(0.02, 0.5 * rate), 4))
    base = replace(base, max_missing_rate=bound)
    if col.dtype in ("binary", "large_binary"):
        notes.append("holds bytes, not text: values that are not valid UTF-8; re-encode the source as UTF-8")
    # ids and times of new rows are new values: no range for them
    if (
        col.kind in ("numeric", "temporal")
        and role == "feature"
        and col.moments is not None
        and col.moments.count
    ):
        base = replace(base, minimum=col.moments.minimum, maximum=col.moments.maximum)
    distinct = col.distinct_estimate
    if col.kind in ("categorical", "boolean") or (role == "label" and col.top is not None):
        if col.top is not None and col.top.other == 0 and len(col.top.counts) <= MAX_DOMAIN:
            base = replace(base, allowed=tuple(sorted(v for v, _ in col.top.counts)))
        elif col.kind == "categorical" and role not in ("id", "time"):
            notes.append(f"high cardinality (~{distinct:,} distinct values): no list of allowed values")
            if distinct > 0.5 * (col.rows - col.nulls) and col.rows > 100:
                notes.append("nearly every value is distinct: an identifier or free text?")
    return replace(base, notes=tuple(notes))
