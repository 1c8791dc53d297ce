"""Value classes for the records a warm ``create`` touches, without the ``dataclasses`` module.

Importing dataclasses pulls in inspect, ast, dis and tokenize, and each decorated class compiles its
methods at import: together ~11 ms of a ~60 ms warm create (measured on the 2-core machines, Python
3.11), for six small classes. :class:`Value` gives what those classes used of a dataclass: fields
declared as annotations in order, defaults (:func:`fresh` for a new list or dict per instance),
keyword or positional construction, equality, a readable repr, ``replace`` and ``as_dict``, and
``frozen=True``. Everything else in the package may keep using dataclasses.
"""

from __future__ import annotations


class fresh:
    """A default made new for each instance: ``tags: list = fresh(list)``."""

    __slots__ = ("factory",)

    def __init__(self, factory):
        self.factory = factory


_MISSING = object()


class Value:
    """Subclass with annotated fields (``name: str``, ``count: int = 0``); ``frozen=True`` in the
    class line refuses assignment after construction."""

    FIELDS: tuple[str, ...] = ()
    _DEFAULTS: dict = {}
    _FROZEN = False

    def __init_subclass__(cls, frozen: bool = False, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        own = tuple(cls.__dict__.get("__annotations__", {}))
        # A subclass of a Value class keeps its parent's fields first, as a dataclass's does.
        cls.FIELDS = tuple(dict.fromkeys([*cls.FIELDS, *own]))
        cls._DEFAULTS = {**cls._DEFAULTS, **{name: cls.__dict__[name] for name in own if name in cls.__dict__}}
        cls._FROZEN = frozen or cls._FROZEN
        for name in own:
            if isinstance(cls.__dict__.get(name), fresh):
                delattr(cls, name)  # not a shared class attribute: each instance gets its own

    def __init__(self, *args, **kwargs) -> None:
        if len(args) > len(self.FIELDS):
            raise TypeError(f"{type(self).__name__}() takes {len(self.FIELDS)} values, {len(args)} given")
        values = dict(zip(self.FIELDS, args))
        for name, value in kwargs.items():
            if name not in self.FIELDS or name in values:
                raise TypeError(f"{type(self).__name__}() got an unexpected or repeated field {name!r}")
            values[name] = value
        for name in self.FIELDS:
            value = values.get(name, _MISSING)
            if value is _MISSING:
                default = self._DEFAULTS.get(name, _MISSING)
                if default is _MISSING:
                    raise TypeError(f"{type(self).__name__}() is missing the field {name!r}")
                value = default.factory() if isinstance(default, fresh) else default
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value) -> None:
        if self._FROZEN:
            raise AttributeError(f"cannot assign to field {name!r} of a frozen {type(self).__name__}")
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        if self._FROZEN:
            raise AttributeError(f"cannot delete field {name!r} of a frozen {type(self).__name__}")
        object.__delattr__(self, name)

    def _values(self) -> tuple:
        return tuple(getattr(self, name) for name in self.FIELDS)

    def __eq__(self, other) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self) -> int:
        if not self._FROZEN:
            raise TypeError(f"unhashable type: {type(self).__name__!r}")
        return hash(self._values())

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.FIELDS)
        return f"{type(self).__name__}({shown})"

    def replace(self, **changes):
        """A copy with ``changes``, as dataclasses.replace makes one."""
        return type(self)(**{**{name: getattr(self, name) for name in self.FIELDS}, **changes})

    def as_dict(self) -> dict:
        """The fields as plain data, nested values (and lists, tuples, dicts of them) too, as
        dataclasses.asdict gives them."""
        return {name: _plain(getattr(self, name)) for name in self.FIELDS}


def _plain(value):
    if isinstance(value, Value):
        return value.as_dict()
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(item) for item in value)
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value
