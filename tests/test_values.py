"""values.Value: the part of a dataclass the records of a warm create use, held to what
dataclasses does for the same declarations."""

from __future__ import annotations

import dataclasses

import pytest

from overlay_venv.values import Value, fresh


class Point(Value):
    x: int
    y: int = 0
    tags: list = fresh(list)


class Frozen(Value, frozen=True):
    name: str
    parts: tuple = ()


@dataclasses.dataclass
class PointDC:
    x: int
    y: int = 0
    tags: list = dataclasses.field(default_factory=list)


def test_fields_are_the_annotations_in_order():
    assert Point.FIELDS == ("x", "y", "tags") == tuple(f.name for f in dataclasses.fields(PointDC))


@pytest.mark.parametrize("args, kwargs", [((1,), {}), ((1, 2), {}), ((), {"x": 3, "tags": ["a"]}), ((4,), {"y": 5})])
def test_construction_and_equality_as_a_dataclass(args, kwargs):
    value, reference = Point(*args, **kwargs), PointDC(*args, **kwargs)
    assert value.as_dict() == dataclasses.asdict(reference)
    assert value == Point(*args, **kwargs) and value != Point(99)
    assert repr(value) == repr(reference).replace("PointDC", "Point")


def test_a_fresh_default_is_new_for_each_instance():
    one, two = Point(1), Point(2)
    one.tags.append("x")
    assert two.tags == [] and "tags" not in vars(Point)


@pytest.mark.parametrize(
    "args, kwargs",
    [((), {}), ((1, 2, [], 4), {}), ((1,), {"x": 2}), ((1,), {"z": 2})],
    ids=["missing", "too-many", "twice", "unknown"],
)
def test_wrong_arguments_are_a_type_error_as_for_a_dataclass(args, kwargs):
    with pytest.raises(TypeError):
        PointDC(*args, **kwargs)
    with pytest.raises(TypeError):
        Point(*args, **kwargs)


def test_frozen_refuses_assignment_and_deletion_and_hashes_by_value():
    value = Frozen("a", ("b",))
    with pytest.raises(AttributeError):
        value.name = "c"
    with pytest.raises(AttributeError):
        del value.name
    assert hash(value) == hash(Frozen("a", ("b",))) and {value, Frozen("a", ("b",))} == {value}


def test_a_mutable_value_is_unhashable_and_assignable():
    value = Point(1)
    value.y = 7
    assert value.y == 7
    with pytest.raises(TypeError):
        hash(value)


def test_replace_copies_with_changes_and_as_dict_nests():
    base = Frozen("a")
    outer = Point(1, tags=[base, (base,)])
    assert base.replace(parts=(1,)) == Frozen("a", (1,)) and base == Frozen("a")
    assert outer.as_dict() == {"x": 1, "y": 0, "tags": [{"name": "a", "parts": ()}, ({"name": "a", "parts": ()},)]}
    with pytest.raises(TypeError):
        base.replace(nope=1)


def test_comparison_with_another_type_is_not_equal():
    assert Point(1) != PointDC(1) and Point(1) != (1, 0, [])


def test_the_records_of_a_warm_create_import_no_dataclasses():
    import subprocess
    import sys

    # Only what these imports add: an interpreter's own site (.pth files) may have loaded typing already.
    code = (
        "import sys; before = set(sys.modules); import overlay_venv.commands.created, overlay_venv.record, "
        "overlay_venv.stack; print(sorted({'dataclasses', 'inspect', 'typing'} & (set(sys.modules) - before)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


class Point3(Point):
    z: int = 0
    more: list = fresh(list)


@dataclasses.dataclass
class Point3DC(PointDC):
    z: int = 0
    more: list = dataclasses.field(default_factory=list)


def test_a_subclass_keeps_its_parents_fields_first_as_a_dataclass_does():
    assert Point3.FIELDS == tuple(f.name for f in dataclasses.fields(Point3DC))
    value, reference = Point3(1, z=2), Point3DC(1, z=2)
    assert value.as_dict() == dataclasses.asdict(reference)
    assert value.tags is not Point3(1).tags and value.more == []
