"""Dataset names, NAME@VERSION specs and the error tree's contract."""

from __future__ import annotations

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keelml import Workspace
from keelml.core import errors
from keelml.core.errors import InvalidReferenceError, KeelError
from keelml.core.refs import DatasetRef, VersionSpec, check_name, parse_spec

PROPERTY = settings(max_examples=200, deadline=None, derandomize=True, database=None)


@pytest.mark.parametrize("name", ["reviews", "food-reviews_v2", "a", "A.b-c_d", "x" * 128])
def test_valid_names(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        "1reviews",
        "_hidden",
        "-dash",
        "has space",
        "a/b",
        "../escape",
        "a@1",
        "tab\tname",
        "x" * 129,
        "revïews",
        "reviews\n",  # a trailing newline must not slip past the pattern
    ],
    ids=repr,
)
def test_invalid_names(name: str, explains) -> None:
    with pytest.raises(InvalidReferenceError) as info:
        check_name(name)
    assert isinstance(info.value, ValueError)
    explains(info.value, "is not a valid dataset name", repr(name))


def test_invalid_name_is_rejected_by_add_before_anything_is_written(local_ws: Workspace) -> None:
    with pytest.raises(InvalidReferenceError):
        local_ws.datasets.add("bad name", pa.table({"a": [1]}))
    assert local_ws.datasets.list() == []
    assert not (local_ws.storage_root / "datasets").exists()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("reviews", VersionSpec("reviews", None)),
        ("reviews@latest", VersionSpec("reviews", None)),
        ("reviews@3", VersionSpec("reviews", 3)),
        ("reviews@12", VersionSpec("reviews", 12)),
    ],
)
def test_parse_spec(text: str, expected: VersionSpec) -> None:
    assert parse_spec(text) == expected


@pytest.mark.parametrize(
    "text",
    ["reviews@0", "reviews@-1", "reviews@x", "reviews@1.5", "reviews@1@2", "reviews@ 1", "reviews@²"],
    ids=repr,
)
def test_invalid_version_specs(text: str, explains) -> None:
    with pytest.raises(InvalidReferenceError) as info:
        parse_spec(text)
    explains(info.value, "cannot read the version", text, "NAME@N")


@pytest.mark.parametrize("text", ["@1", "1abc@2", "re views@1"])
def test_invalid_name_in_spec(text: str) -> None:
    with pytest.raises(InvalidReferenceError, match="not a valid dataset name"):
        parse_spec(text)


# Any text, and NAME@ followed by digit-like characters of any script (isdigit() is not int()).
spec_texts = st.text(max_size=12) | st.builds(
    lambda v: "d@" + v, st.text(st.characters(categories=("Nd", "No")), min_size=1, max_size=3)
)


@PROPERTY
@given(spec_texts)
def test_parse_spec_either_parses_or_raises_invalid_reference(text: str) -> None:
    try:
        spec = parse_spec(text)
    except InvalidReferenceError:
        return
    assert spec.version is None or spec.version >= 1
    assert text.startswith(spec.name)


def test_dataset_ref_is_frozen_and_hashable() -> None:
    ref = DatasetRef("d", 2, "kd1:abc")
    assert str(ref) == "d@2"
    assert ref.node_id == "dataset:d@2"
    assert {ref: 1}[DatasetRef("d", 2, "kd1:abc")] == 1
    with pytest.raises(AttributeError):
        ref.version = 3  # type: ignore[misc]


# -- the error tree -----------------------------------------------------------------------------


def _error_classes() -> list[type[KeelError]]:
    return [
        obj
        for obj in vars(errors).values()
        if isinstance(obj, type) and issubclass(obj, KeelError) and obj is not KeelError
    ]


@pytest.mark.parametrize("cls", _error_classes(), ids=lambda c: c.__name__)
def test_every_error_refines_a_builtin_and_has_an_exit_code(cls: type[KeelError]) -> None:
    builtin_bases = [
        b for b in cls.__mro__ if b.__module__ == "builtins" and b not in (object, BaseException)
    ]
    assert any(b is not Exception for b in builtin_bases), f"{cls.__name__} refines no builtin error"
    assert cls.exit_code > 1
    err = cls("the problem", expected="e", received="r", fix="the fix")
    assert str(err) == "the problem\n  expected: e\n  received: r\n  fix: the fix"


@pytest.mark.parametrize(
    ("cls", "builtin"),
    [
        (errors.WorkspaceNotFoundError, FileNotFoundError),
        (errors.SourceNotFoundError, FileNotFoundError),
        (errors.DatasetNotFoundError, KeyError),
        (errors.VersionNotFoundError, KeyError),
        (errors.NodeNotFoundError, KeyError),
        (errors.ColumnNotFoundError, KeyError),
        (errors.ColumnNotFoundError, ValueError),
        (errors.SchemaConflictError, ValueError),
        (errors.DuplicateIdError, ValueError),
        (errors.ConfigError, ValueError),
        (errors.BackendUnavailableError, ConnectionError),
        (errors.MissingDependencyError, ImportError),
    ],
)
def test_errors_are_the_builtins_callers_already_catch(cls: type[KeelError], builtin: type) -> None:
    assert issubclass(cls, builtin)


@pytest.mark.parametrize(
    "cls", [errors.DatasetNotFoundError, errors.VersionNotFoundError, errors.ColumnNotFoundError]
)
def test_key_errors_print_their_message_unquoted(cls: type[KeelError]) -> None:
    assert str(cls("no such thing", fix="look")) == "no such thing\n  fix: look"
