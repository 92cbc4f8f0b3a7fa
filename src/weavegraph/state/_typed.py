"""Typed state slots: pydantic-validated values stored in ``extra`` under a schema-versioned key."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, cast

from pydantic import TypeAdapter, ValidationError

from ..errors import TypedSlotError
from ._frozen import freeze_json

T = TypeVar("T")

_STORAGE_SUFFIX = re.compile(r"^(?P<name>.+)@v(?P<version>\d+)$")


@dataclass(frozen=True, slots=True)
class StateKey(Generic[T]):
    """A named, typed, schema-versioned slot in ``extra``.

    ``StateKey("plan", Plan, version=2)`` stores ``Plan`` values (validated by pydantic) under the
    storage key ``"plan@v2"``. Reading a slot written with another version is an error, not a guess.
    """

    name: str
    type_: type[T] | Any
    version: int = 1
    _adapter: TypeAdapter[Any] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        name = cast(object, self.name)  # checked: callers are untyped user code
        if not isinstance(name, str) or not name or "@" in name:
            raise ValueError(f"StateKey name must be a non-empty str without '@', got {name!r}")
        version = cast(object, self.version)
        if type(version) is not int or version < 1:
            raise ValueError(f"StateKey version must be an int >= 1, got {version!r}")
        object.__setattr__(self, "_adapter", TypeAdapter(self.type_))

    @property
    def storage_key(self) -> str:
        """The key under which the value lives in ``extra``."""
        return f"{self.name}@v{self.version}"

    def encode(self, value: T) -> Any:
        """Validate ``value`` and return its frozen JSON form."""
        try:
            validated = self._adapter.validate_python(value)
            return freeze_json(self._adapter.dump_python(validated, mode="json"))
        except ValidationError as exc:
            raise TypedSlotError(self.storage_key, f"invalid value: {exc}") from exc

    def decode(self, raw: Any) -> T:
        """The typed value of a stored ``raw`` one; TypedSlotError if it no longer validates."""
        try:
            return self._adapter.validate_python(raw)
        except ValidationError as exc:
            raise TypedSlotError(
                self.storage_key, f"stored value does not validate: {exc}"
            ) from exc

    def read(self, extra: Mapping[str, Any]) -> T | None:
        """The slot's value in ``extra``, or None when absent. Another schema version is an error."""
        if self.storage_key in extra:
            return self.decode(extra[self.storage_key])
        for key in extra:
            match = _STORAGE_SUFFIX.match(key)
            if match and match["name"] == self.name:
                raise TypedSlotError(
                    self.storage_key,
                    f"found schema version {match['version']} ({key!r}), expected {self.version}; "
                    "migrate the value or read it with the matching StateKey",
                )
        return None
