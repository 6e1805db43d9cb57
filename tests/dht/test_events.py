"""Every field of every event a session delivers is documented (an attribute docstring right
under it, which pdoc shows in the API reference): subscribers read these fields, so each needs
its meaning and unit written down."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import typing

import pytest

from dhtviewer.dht import events as ev
from dhtviewer.net.session import EVENT_TYPES, StateChanged


def field_docs(cls: type) -> dict[str, str]:
    """field name -> its attribute docstring, read from the class's source."""
    tree = ast.parse(inspect.getsource(cls))
    body = tree.body[0]
    assert isinstance(body, ast.ClassDef)
    out: dict[str, str] = {}
    for stmt, nxt in zip(body.body, body.body[1:], strict=False):
        if (
            isinstance(stmt, ast.AnnAssign)
            and isinstance(stmt.target, ast.Name)
            and isinstance(nxt, ast.Expr)
            and isinstance(nxt.value, ast.Constant)
            and isinstance(nxt.value.value, str)
        ):
            out[stmt.target.id] = nxt.value.value
    return out


def test_event_types_cover_the_core_union_and_state_changes() -> None:
    assert set(EVENT_TYPES) == {*typing.get_args(ev.Event), StateChanged}
    assert len(EVENT_TYPES) >= 28


@pytest.mark.parametrize("cls", EVENT_TYPES, ids=lambda c: c.__name__)
def test_every_field_is_documented(cls: type) -> None:
    assert cls.__doc__ and cls.__doc__.strip(), f"{cls.__name__} has no docstring"
    docs = field_docs(cls)
    fields = [f.name for f in dataclasses.fields(cls)]
    undocumented = [name for name in fields if not docs.get(name, "").strip()]
    assert not undocumented, f"{cls.__name__}: fields without a docstring: {undocumented}"


@pytest.mark.parametrize("cls", EVENT_TYPES, ids=lambda c: c.__name__)
def test_events_are_small_frozen_dataclasses(cls: type) -> None:
    params = cls.__dataclass_params__  # type: ignore[attr-defined]
    assert params.frozen
    assert hasattr(cls, "__slots__")
    assert "at" in {f.name for f in dataclasses.fields(cls)}
