"""One error tree for keelml.

Every error is a :class:`KeelError` and also the builtin it refines, so ``except KeyError`` and
``except ValueError`` keep working for callers who do not know keelml. Each message says what was
expected, what was received, and how to fix it; the CLI prints exactly that, with the exit code of
the class (documented in docs/cli.md), and never a traceback for a user mistake.
"""

from __future__ import annotations


class KeelError(Exception):
    """Base of every keelml error.

    >>> err = KeelError("bad thing", expected="a good thing", received="a bad thing", fix="do better")
    >>> print(err)
    bad thing
      expected: a good thing
      received: a bad thing
      fix: do better
    """

    exit_code = 1

    def __init__(
        self,
        problem: str,
        *,
        expected: str | None = None,
        received: str | None = None,
        fix: str | None = None,
    ) -> None:
        self.problem = problem
        self.expected = expected
        self.received = received
        self.fix = fix
        super().__init__(problem)

    def __str__(self) -> str:
        lines = [self.problem]
        for label, value in (("expected", self.expected), ("received", self.received), ("fix", self.fix)):
            if value:
                lines.append(f"  {label}: {value}")
        return "\n".join(lines)


# -- not found (exit 3) -------------------------------------------------------------------------


class NotFoundError(KeelError, LookupError):
    exit_code = 3


class WorkspaceNotFoundError(NotFoundError, FileNotFoundError):
    """No keel.toml at or above the given directory."""


class SourceNotFoundError(NotFoundError, FileNotFoundError):
    """An input file or directory does not exist."""


class DatasetNotFoundError(NotFoundError, KeyError):
    """No dataset with that name in the catalog."""

    def __str__(self) -> str:  # KeyError would quote the whole message otherwise
        return KeelError.__str__(self)


class VersionNotFoundError(NotFoundError, KeyError):
    """The dataset exists but not that version (or it was removed by gc)."""

    def __str__(self) -> str:
        return KeelError.__str__(self)


class NodeNotFoundError(NotFoundError, KeyError):
    """No lineage node with that id."""

    def __str__(self) -> str:
        return KeelError.__str__(self)


# -- invalid input (exit 4) ---------------------------------------------------------------------


class InvalidInputError(KeelError, ValueError):
    exit_code = 4


class UnreadableSourceError(InvalidInputError):
    """The file exists but cannot be parsed in the format its extension names."""


class EmptySourceError(InvalidInputError):
    """The input has no rows (or no columns)."""


class ColumnNotFoundError(InvalidInputError, KeyError):
    """A role column (label, time, id) or a requested column is not in the data."""

    def __str__(self) -> str:
        return KeelError.__str__(self)


class DuplicateIdError(InvalidInputError):
    """The id column has repeated values, within the input or against the existing table."""


class InvalidReferenceError(InvalidInputError):
    """A ``NAME@VERSION`` string that cannot be parsed, or an invalid dataset name."""


# -- conflicts (exit 5) -------------------------------------------------------------------------


class ConflictError(KeelError, ValueError):
    exit_code = 5


class SchemaConflictError(ConflictError):
    """Appended data whose schema does not match the dataset's current schema."""


class AlreadyExistsError(ConflictError):
    """A dataset or workspace that already exists where a new one was asked for."""


# -- configuration (exit 6) ---------------------------------------------------------------------


class ConfigError(KeelError, ValueError):
    exit_code = 6


class BackendUnavailableError(KeelError, ConnectionError):
    """A backend named in keel.toml cannot be reached (e.g. the PostgreSQL server is down)."""

    exit_code = 7


class MissingDependencyError(KeelError, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""

    exit_code = 8


def missing_dependency(module: str, extra: str, purpose: str) -> MissingDependencyError:
    """Build the error raised when an optional module is absent.

    >>> print(missing_dependency("psycopg", "postgres", "a PostgreSQL catalog"))
    a PostgreSQL catalog needs the optional module 'psycopg', which is not installed
      fix: pip install 'keelml[postgres]'
    """
    return MissingDependencyError(
        f"{purpose} needs the optional module {module!r}, which is not installed",
        fix=f"pip install 'keelml[{extra}]'",
    )
