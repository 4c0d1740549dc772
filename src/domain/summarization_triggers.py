"""When a summarization policy fires (the CELLSTATE reference's SummarizationTrigger).

Triggers are written as the reference writes them, externally tagged: a bare string for a
trigger without parameters, a one-key object otherwise (PascalCase keys are accepted too):

    {"dosage_threshold": {"percent": 80}}   a scope's tokens_used reaches 80 % of its budget
    {"token_threshold": {"tokens": 4000}}   ... reaches each multiple of 4000 tokens
    {"turn_count": {"count": 10}}           every 10th turn of a scope
    {"note_count": {"count": 5}}            every 5th note at the policy's source level
    "scope_close"                           a scope closes
    "manual"                                only when asked (POST .../requests)

Every firing is a pure function of one event and the state of the stream it belongs to at
that event's version (``crossings``): the scope's stream serialises its turns, so each
threshold is crossed by exactly one ``scope.turn_appended``, however many turns race. The
crossing's ``key`` names it for good, and the request it makes gets an id derived from it,
so deciding the same event twice (a redelivery, two deciders) records one request.
"""

from __future__ import annotations

import math
import re
from typing import Any, Literal

import msgspec

from domain.errors import FieldProblem, ValidationFailed

TriggerKind = Literal["dosage_threshold", "token_threshold", "turn_count", "note_count", "scope_close", "manual"]
_PARAMETER: dict[str, tuple[str, int, int]] = {  # kind -> (its one parameter, min, max)
    "dosage_threshold": ("percent", 1, 100),
    "token_threshold": ("tokens", 1, 2_147_483_647),
    "turn_count": ("count", 1, 1_000_000),
    "note_count": ("count", 1, 1_000_000),
}
_BARE = ("scope_close", "manual")
SCOPE_KINDS = frozenset({"dosage_threshold", "token_threshold", "turn_count", "scope_close"})


class Trigger(msgspec.Struct, frozen=True):
    kind: str
    value: int | None = None

    def wire(self) -> Any:
        """The reference's externally tagged spelling."""
        if self.value is None:
            return self.kind
        return {self.kind: {_PARAMETER[self.kind][0]: self.value}}


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def parse_trigger(raw: Any, field: str) -> Trigger:
    """One trigger in the reference's spelling; 422 naming ``field`` otherwise."""
    if isinstance(raw, str) and _snake(raw) in _BARE:
        return Trigger(_snake(raw))
    if isinstance(raw, dict) and len(raw) == 1:
        ((name, params),) = raw.items()
        kind = _snake(str(name))
        if kind in _BARE and params in (None, {}):
            return Trigger(kind)
        if kind in _PARAMETER and isinstance(params, dict) and len(params) == 1:
            key, low, high = _PARAMETER[kind]
            value = params.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and low <= value <= high:
                return Trigger(kind, value)
            raise ValidationFailed([FieldProblem(f"{field}.{name}.{key}", f"an integer from {low} to {high}", "range")])
    known = ", ".join([*_BARE, *(f"{{{k}: {{{p[0]}: n}}}}" for k, p in _PARAMETER.items())])
    raise ValidationFailed([FieldProblem(field, f"not a trigger; one of {known}", "invalid_trigger")])


def parse_triggers(raw: list[Any]) -> list[Trigger]:
    """No trigger at all is allowed: such a policy never fires (the reference's example has none)."""
    return [parse_trigger(t, f"triggers[{i}]") for i, t in enumerate(raw)]


class Crossing(msgspec.Struct, frozen=True):
    """One firing: which trigger, and the key that names this crossing for good."""

    trigger: Trigger
    key: str


def turn_crossings(
    triggers: list[Trigger], *, tokens_before: int, tokens_after: int, budget: int, turn_count: int
) -> list[Crossing]:
    """What one ``scope.turn_appended`` crosses: the scope went from ``tokens_before`` to
    ``tokens_after`` tokens with its ``turn_count``-th turn."""
    out: list[Crossing] = []
    for i, t in enumerate(triggers):
        assert t.value is not None or t.kind not in _PARAMETER
        if t.kind == "dosage_threshold" and t.value is not None:
            line = math.ceil(budget * t.value / 100)
            if tokens_before < line <= tokens_after:
                out.append(Crossing(t, f"{i}:dosage:{t.value}"))
        elif t.kind == "token_threshold" and t.value is not None:
            for k in range(tokens_before // t.value + 1, tokens_after // t.value + 1):
                out.append(Crossing(t, f"{i}:tokens:{k * t.value}"))
        elif t.kind == "turn_count" and t.value is not None and turn_count % t.value == 0:
            out.append(Crossing(t, f"{i}:turns:{turn_count}"))
    return out


def close_crossings(triggers: list[Trigger]) -> list[Crossing]:
    return [Crossing(t, f"{i}:close") for i, t in enumerate(triggers) if t.kind == "scope_close"]


def note_crossings(triggers: list[Trigger], notes_counted: int) -> list[Crossing]:
    """What the ``notes_counted``-th note the policy counted crosses."""
    return [
        Crossing(t, f"{i}:notes:{notes_counted}")
        for i, t in enumerate(triggers)
        if t.kind == "note_count" and t.value is not None and notes_counted % t.value == 0
    ]
