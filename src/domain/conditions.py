"""Declarative edge conditions: a small grammar, parsed and evaluated without ``eval``.

    expr     := or
    or       := and ("or" and)*
    and      := not ("and" not)*
    not      := "not" not | compare
    compare  := value (("==" | "!=" | "<" | "<=" | ">" | ">=" | "in" | "not in") value)?
    value    := number | string | "true" | "false" | "null" | path | call | "(" expr ")"
    path     := name ("." name | "[" integer "]")*      e.g. state.review.score, items[0]
    call     := ("len" | "exists") "(" expr ")"

Names resolve in the execution state (``state.`` may prefix them). A missing path is
``null``; comparing values of different kinds is false, never an error, so a condition can
only ever choose a branch, not crash an execution. Quipu never runs user code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_TOKEN = re.compile(
    r"\s*(?:(?P<num>-?\d+(?:\.\d+)?)|(?P<str>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")"
    r"|(?P<op>==|!=|<=|>=|<|>|\(|\)|\[|\]|\.)|(?P<name>[A-Za-z_][A-Za-z0-9_]*))"
)
_KEYWORDS = {"and", "or", "not", "in", "true", "false", "null", "len", "exists"}
MAX_LENGTH = 2000
MAX_DEPTH = 50


class ConditionError(ValueError):
    """The condition text does not follow the grammar."""


@dataclass(frozen=True)
class Condition:
    text: str
    tree: tuple[Any, ...]

    def evaluate(self, state: dict[str, Any]) -> bool:
        return _truthy(_eval(self.tree, state))


def parse(text: str) -> Condition:
    if len(text) > MAX_LENGTH:
        raise ConditionError(f"a condition has at most {MAX_LENGTH} characters")
    parser = _Parser(_tokens(text))
    tree = parser.expr(0)
    leftover = parser.peek()
    if leftover is not None:
        raise ConditionError(f"unexpected '{leftover[1]}'")
    return Condition(text, tree)


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    position = 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN.match(text, position)
        if not match or match.end() == position:
            raise ConditionError(f"cannot read the condition at character {position + 1}")
        kind = match.lastgroup or ""
        out.append((kind, match.group(kind)))
        position = match.end()
    return out


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens = tokens
        self.at = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        token = self.peek()
        if token is None or (value is not None and token[1] != value):
            raise ConditionError(f"expected '{value}'" if value else "the condition ends too early")
        self.at += 1
        return token

    def _is(self, value: str) -> bool:
        token = self.peek()
        return token is not None and token[1] == value

    def expr(self, depth: int) -> tuple[Any, ...]:
        if depth > MAX_DEPTH:
            raise ConditionError("the condition nests too deeply")
        left = self.conj(depth)
        while self._is("or"):
            self.take()
            left = ("or", left, self.conj(depth))
        return left

    def conj(self, depth: int) -> tuple[Any, ...]:
        left = self.neg(depth)
        while self._is("and"):
            self.take()
            left = ("and", left, self.neg(depth))
        return left

    def neg(self, depth: int) -> tuple[Any, ...]:
        if self._is("not"):
            self.take()
            return ("not", self.neg(depth + 1))
        return self.compare(depth)

    def compare(self, depth: int) -> tuple[Any, ...]:
        left = self.value(depth)
        token = self.peek()
        if token and token[1] in ("==", "!=", "<", "<=", ">", ">=", "in"):
            self.take()
            return ("cmp", token[1], left, self.value(depth))
        if token and token[1] == "not" and self.at + 1 < len(self.tokens) and self.tokens[self.at + 1][1] == "in":
            self.take()
            self.take()
            return ("not", ("cmp", "in", left, self.value(depth)))
        return left

    def value(self, depth: int) -> tuple[Any, ...]:
        kind, text = self.take()
        if kind == "num":
            return ("lit", float(text) if "." in text else int(text))
        if kind == "str":
            return ("lit", text[1:-1].encode().decode("unicode_escape"))
        if text == "(":
            inner = self.expr(depth + 1)
            self.take(")")
            return inner
        if text in ("true", "false"):
            return ("lit", text == "true")
        if text == "null":
            return ("lit", None)
        if text in ("len", "exists"):
            self.take("(")
            argument = self.expr(depth + 1)
            self.take(")")
            return ("call", text, argument)
        if kind == "name" and text not in _KEYWORDS:
            steps: list[str | int] = [] if text == "state" else [text]
            while self._is(".") or self._is("["):
                if self.take()[1] == ".":
                    kind, name = self.take()
                    if kind != "name":
                        raise ConditionError(f"expected a name after '.', got '{name}'")
                    steps.append(name)
                else:
                    kind, index = self.take()
                    if kind != "num" or "." in index:
                        raise ConditionError("a list index is a whole number")
                    steps.append(int(index))
                    self.take("]")
            return ("path", tuple(steps))
        raise ConditionError(f"unexpected '{text}'")


def _eval(node: tuple[Any, ...], state: dict[str, Any]) -> Any:
    op = node[0]
    if op == "lit":
        return node[1]
    if op == "path":
        return _resolve(state, node[1])
    if op == "and":
        return _truthy(_eval(node[1], state)) and _truthy(_eval(node[2], state))
    if op == "or":
        return _truthy(_eval(node[1], state)) or _truthy(_eval(node[2], state))
    if op == "not":
        return not _truthy(_eval(node[1], state))
    if op == "call":
        value = _eval(node[2], state)
        if node[1] == "exists":
            return value is not None
        return len(value) if isinstance(value, (str, list, dict)) else None
    return _compare(node[1], _eval(node[2], state), _eval(node[3], state))


def _resolve(state: Any, steps: tuple[str | int, ...]) -> Any:
    current = state
    for step in steps:
        if isinstance(step, int):
            in_list = isinstance(current, list) and -len(current) <= step < len(current)
            current = current[step] if in_list else None
        else:
            current = current.get(step) if isinstance(current, dict) else None
        if current is None:
            return None
    return current


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    return type(value).__name__


def _compare(op: str, left: Any, right: Any) -> bool:
    if op == "in":
        if isinstance(right, (list, dict)):
            return any(_kind(left) == _kind(item) and left == item for item in right)
        return isinstance(right, str) and isinstance(left, str) and left in right
    if op in ("==", "!="):
        same = _kind(left) == _kind(right) and left == right
        return same if op == "==" else not same
    if _kind(left) != _kind(right) or _kind(left) not in ("number", "str"):
        return False
    return bool({"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}[op])


def _truthy(value: Any) -> bool:
    return value is not None and value is not False and value != 0 and value != "" and value != [] and value != {}
