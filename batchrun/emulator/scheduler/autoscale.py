"""A small evaluator for Batch autoscale formulas.

Supported: statements ``$Name = expr;`` or ``name = expr;`` (newline or ``;`` separated, ``//`` comments);
numbers, ``+ - * /``, unary minus, parentheses, ``min(...)``, ``max(...)``, ``avg(...)``, ``sum(...)``,
``ceil/floor/round(x)``, earlier variables, the task metrics ``$PendingTasks``, ``$ActiveTasks``,
``$RunningTasks`` read as current values (also through ``.GetSample(1)`` / ``.GetSample(N)``, which return the
current value because the emulator keeps no history), and ``$NodeDeallocationOption = requeue | terminate |
taskcompletion | retaineddata``. Anything else raises :class:`FormulaError` naming the unsupported piece.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from datetime import timedelta

from batchrun.emulator.model import Body, Model, job_pool_id
from batchrun.emulator.timefmt import iso, now, parse_duration

OUTPUTS = ("$TargetDedicatedNodes", "$TargetLowPriorityNodes", "$NodeDeallocationOption")
# Older names Batch still accepts in formulas (and its own REST samples use).
ALIASES = {"$TargetDedicated": "$TargetDedicatedNodes", "$TargetLowPriority": "$TargetLowPriorityNodes"}
METRICS = ("$PendingTasks", "$ActiveTasks", "$RunningTasks")
DEALLOCATION_OPTIONS = ("requeue", "terminate", "taskcompletion", "retaineddata")
FUNCTIONS: dict[str, Callable[[list[float]], float]] = {
    "min": min,
    "max": max,
    "sum": sum,
    "avg": lambda values: sum(values) / len(values),
    "ceil": lambda values: float(math.ceil(values[0])),
    "floor": lambda values: float(math.floor(values[0])),
    "round": lambda values: float(round(values[0])),
}
ONE_ARGUMENT = ("ceil", "floor", "round")

_TOKEN = re.compile(
    r"\s*(?:(?P<number>\d+(?:\.\d*)?|\.\d+)|(?P<name>\$?[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<punct>[-+*/(),;=.]))"
)


class FormulaError(Exception):
    """The formula uses something this evaluator does not support, or cannot be evaluated."""


Value = float | str


def _tokenize(text: str) -> list[str]:
    text = re.sub(r"//[^\n]*", "", text)
    tokens: list[str] = []
    position = 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        if text[position] == "\n":
            tokens.append(";")
            position += 1
            continue
        match = _TOKEN.match(text, position)
        if match is None:
            snippet = text[position:].strip()[:20]
            raise FormulaError(
                f"unsupported syntax at '{snippet}' (supported: assignments, numbers, + - * /, "
                "parentheses, min/max/avg/sum/ceil/floor/round, task metrics)"
            )
        if "\n" in text[position : match.start(match.lastgroup or 0)]:
            tokens.append(";")
        tokens.append(match.group(match.lastgroup or 0))
        position = match.end()
    return tokens


class _Evaluator:
    def __init__(self, tokens: list[str], metrics: Mapping[str, float]) -> None:
        self.tokens = tokens
        self.position = 0
        self.variables: dict[str, Value] = {}
        self.metrics = metrics

    def peek(self) -> str | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self) -> str:
        token = self.peek()
        if token is None:
            raise FormulaError("the formula ends in the middle of an expression")
        self.position += 1
        return token

    def run(self) -> dict[str, Value]:
        while self.peek() is not None:
            if self.peek() == ";":
                self.take()
                continue
            name = self.take()
            name = ALIASES.get(name, name)
            if not re.fullmatch(r"\$?[A-Za-z_][A-Za-z0-9_]*", name):
                raise FormulaError(f"expected a variable name at the start of a statement, found '{name}'")
            if name.startswith("$") and name not in OUTPUTS:
                raise FormulaError(f"'{name}' cannot be assigned (assignable: {', '.join(OUTPUTS)})")
            if self.take() != "=":
                raise FormulaError(f"expected '=' after '{name}'")
            if name == "$NodeDeallocationOption":
                option = self.take()
                if option not in DEALLOCATION_OPTIONS:
                    raise FormulaError(
                        f"$NodeDeallocationOption must be one of {', '.join(DEALLOCATION_OPTIONS)}"
                    )
                self.variables[name] = option
            else:
                self.variables[name] = self.expression()
            if self.peek() not in (None, ";"):
                raise FormulaError(f"unsupported syntax '{self.peek()}' after the assignment to '{name}'")
        return self.variables

    def expression(self) -> float:
        value = self.term()
        while self.peek() in ("+", "-"):
            operator = self.take()
            right = self.term()
            value = value + right if operator == "+" else value - right
        return value

    def term(self) -> float:
        value = self.unary()
        while self.peek() in ("*", "/"):
            operator = self.take()
            right = self.unary()
            if operator == "/" and right == 0:
                raise FormulaError("division by zero")
            value = value * right if operator == "*" else value / right
        return value

    def unary(self) -> float:
        if self.peek() == "-":
            self.take()
            return -self.unary()
        if self.peek() == "+":
            self.take()
            return self.unary()
        return self.primary()

    def primary(self) -> float:
        token = self.take()
        if token == "(":
            value = self.expression()
            if self.take() != ")":
                raise FormulaError("missing ')'")
            return value
        if re.fullmatch(r"\d+(?:\.\d*)?|\.\d+", token):
            return float(token)
        if token in FUNCTIONS:
            return self.call(token)
        if token in METRICS:
            value = float(self.metrics.get(token, 0))
            if self.peek() == ".":
                self.take()
                method = self.take()
                if method != "GetSample":
                    raise FormulaError(f"'{token}.{method}' is not supported (only GetSample)")
                if self.take() != "(":
                    raise FormulaError("expected '(' after GetSample")
                self.expression()
                if self.take() != ")":
                    raise FormulaError("missing ')' after GetSample(...)")
            return value
        token = ALIASES.get(token, token)
        if token in self.variables:
            variable = self.variables[token]
            if isinstance(variable, str):
                raise FormulaError(f"'{token}' is not a number")
            return variable
        if token.startswith("$"):
            raise FormulaError(
                f"'{token}' is not supported by the local emulator (supported inputs: {', '.join(METRICS)})"
            )
        raise FormulaError(f"'{token}' is not defined before use (unsupported function or variable)")

    def call(self, name: str) -> float:
        if self.take() != "(":
            raise FormulaError(f"expected '(' after {name}")
        arguments = [self.expression()]
        while self.peek() == ",":
            self.take()
            arguments.append(self.expression())
        if self.take() != ")":
            raise FormulaError(f"missing ')' after the arguments of {name}")
        if name in ONE_ARGUMENT and len(arguments) != 1:
            raise FormulaError(f"{name} takes exactly one argument")
        return FUNCTIONS[name](arguments)


def evaluate(formula: str, metrics: Mapping[str, float]) -> dict[str, Value]:
    """Evaluate ``formula``; returns every assigned variable (outputs included)."""
    if not formula.strip():
        raise FormulaError("the formula is empty")
    return _Evaluator(_tokenize(formula), metrics).run()


def targets(results: Mapping[str, Value], current_dedicated: int, current_low: int) -> tuple[int, int, str]:
    """(dedicated, low-priority, deallocation option) from results; unassigned targets keep their value."""

    def whole(name: str, default: int) -> int:
        value = results.get(name, default)
        if isinstance(value, str):
            raise FormulaError(f"{name} must be a number")
        return max(0, int(value))

    option = results.get("$NodeDeallocationOption", "requeue")
    return (
        whole("$TargetDedicatedNodes", current_dedicated),
        whole("$TargetLowPriorityNodes", current_low),
        str(option),
    )


def results_text(results: Mapping[str, Value], chosen: tuple[int, int, str] | None = None) -> str:
    """Batch's ``autoScaleRun.results`` form: ``$Name=value;...``, led by the three outputs Batch always
    reports (recorded: ``$TargetDedicatedNodes=3;$TargetLowPriorityNodes=0;$NodeDeallocationOption=requeue``).
    """
    if chosen is not None:
        outputs: dict[str, Value] = {
            "$TargetDedicatedNodes": chosen[0],
            "$TargetLowPriorityNodes": chosen[1],
            "$NodeDeallocationOption": chosen[2],
        }
        aliases = ("$TargetDedicated", "$TargetLowPriority")
        others = {k: v for k, v in results.items() if k not in outputs and k not in aliases}
        results = {**outputs, **others}

    def show(value: Value) -> str:
        if isinstance(value, str):
            return value
        return str(int(value)) if value == int(value) else str(value)

    return ";".join(f"{name}={show(value)}" for name, value in results.items())


DEFAULT_INTERVAL = "PT15M"


def task_metrics(model: Model, pool_id: str) -> dict[str, float]:
    """Task numbers of the jobs on ``pool_id`` (lock held): the formula inputs the emulator supports."""
    active = running = 0
    for job_id, job in model.jobs.items():
        if job_pool_id(job).lower() != pool_id.lower() or job["state"] not in ("active", "disabling"):
            continue
        counts = model.tasks[job_id].counts
        active += counts["active"]
        running += counts["running"] + counts["preparing"]
    return {"$ActiveTasks": active, "$RunningTasks": running, "$PendingTasks": active + running}


def next_evaluation(pool: Body) -> str:
    interval = parse_duration(str(pool.get("autoScaleEvaluationInterval", DEFAULT_INTERVAL)))
    return iso(now() + (interval or timedelta(minutes=15)))
