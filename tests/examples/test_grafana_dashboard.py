"""`examples/grafana/ai-stream-gateway.json` cannot drift from the gateway's metrics: every
PromQL expression in it parses, and every metric it names is one `gateway.metrics.Metrics`
exports (read from its registry, so a renamed metric fails here).

The parser below is PromQL's grammar (operators by precedence, vector matching,
aggregations, functions, selectors, range and subquery brackets, offsets) with the value
types the functions check: `rate` of an instant vector fails, as Prometheus would.
Grafana's variables are replaced first: `$__rate_interval`-like ones by a duration,
`$instance`-like ones may only stand inside label-matcher strings.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gateway.metrics import Metrics

DASHBOARD = Path(__file__).resolve().parents[2] / "examples" / "grafana" / "ai-stream-gateway.json"

SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("", "_count", "_sum", "_created"),
}


def exported_metric_names() -> set[str]:
    """The series names a gateway's `/metrics` can carry, from its registry's families."""
    names: set[str] = set()
    for family in Metrics().registry.collect():
        names.update(family.name + suffix for suffix in SUFFIXES[family.type])
    return names


# --- PromQL -------------------------------------------------------------------------------

AGGREGATIONS = {
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
    "bottomk", "topk", "quantile", "limitk", "limit_ratio",
}  # fmt: skip
AGGREGATION_PARAM = {"count_values", "bottomk", "topk", "quantile", "limitk", "limit_ratio"}
# function -> argument types ("v" instant vector, "m" range vector, "s" scalar, "t" string;
# "?" after one: optional), and the type it returns
FUNCTIONS: dict[str, tuple[str, str]] = {
    **{f: ("m", "v") for f in ("rate", "irate", "increase", "delta", "idelta", "deriv",
                               "changes", "resets", "absent_over_time", "present_over_time")},
    **{f"{a}_over_time": ("m", "v") for a in ("avg", "min", "max", "sum", "count", "stddev",
                                               "stdvar", "last")},
    "quantile_over_time": ("sm", "v"),
    "predict_linear": ("ms", "v"),
    "histogram_quantile": ("sv", "v"),
    **{f: ("v", "v") for f in ("abs", "ceil", "floor", "exp", "ln", "log2", "log10", "sqrt",
                               "absent", "timestamp", "sgn", "sort", "sort_desc")},
    "round": ("vs?", "v"),
    "clamp": ("vss", "v"),
    "clamp_min": ("vs", "v"),
    "clamp_max": ("vs", "v"),
    "label_replace": ("vtttt", "v"),
    "scalar": ("v", "s"),
    "vector": ("s", "v"),
    "time": ("", "s"),
}  # fmt: skip
SET_OPERATORS = {"and", "or", "unless"}
KEYWORDS = AGGREGATIONS | SET_OPERATORS | {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset", "atan2",
}  # fmt: skip

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<duration>(?:\d+(?:ms|[smhdwy]))+)(?![\w.])
    | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
    | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
    | (?P<ident>(?:[A-Za-z_]|:(?!\d))[A-Za-z0-9_:]*)  # not the colon of a subquery's [1h:5m]
    | (?P<op>==|!=|>=|<=|=~|!~|[-+*/%^<>=(){}\[\],:@])
    )""",
    re.VERBOSE,
)


class PromQLError(ValueError):
    pass


@dataclass(frozen=True)
class Token:
    kind: str
    text: str


def tokenize(expr: str) -> list[Token]:
    tokens, position = [], 0
    while position < len(expr.rstrip()):
        match = _TOKEN.match(expr, position)
        if match is None or match.end() == position:
            raise PromQLError(f"cannot read {expr[position:]!r}")
        kind = match.lastgroup
        assert kind is not None
        tokens.append(Token(kind, match.group(kind)))
        position = match.end()
    return tokens


class Parser:
    """Recursive descent over PromQL's precedence levels, lowest first; each `_level`
    returns the value type of what it parsed, and `metrics` collects the metric names."""

    LEVELS = (
        ({"or"}, False),
        ({"and", "unless"}, False),
        ({"==", "!=", ">", "<", ">=", "<="}, True),
        ({"+", "-"}, False),
        ({"*", "/", "%", "atan2"}, False),
    )

    def __init__(self, expr: str) -> None:
        self.tokens = tokenize(expr)
        self.at = 0
        self.metrics: set[str] = set()
        self.selector_end = -1  # where the last metric selector ended

    def parse(self) -> str:
        kind = self._level(0)
        if self.at != len(self.tokens):
            raise PromQLError(f"unexpected {self._peek().text!r}")
        return kind

    # tokens
    def _peek(self, ahead: int = 0) -> Token:
        index = self.at + ahead
        return self.tokens[index] if index < len(self.tokens) else Token("end", "")

    def _take(self, text: str | None = None, kind: str | None = None) -> Token:
        token = self._peek()
        if (text is not None and token.text != text) or (kind is not None and token.kind != kind):
            raise PromQLError(f"expected {text or kind}, found {token.text or 'the end'!r}")
        self.at += 1
        return token

    def _accept(self, text: str) -> bool:
        if self._peek().text == text and self._peek().kind in ("op", "ident"):
            self.at += 1
            return True
        return False

    # binary operators
    def _level(self, level: int) -> str:
        if level == len(self.LEVELS):
            return self._unary()
        operators, comparison = self.LEVELS[level]
        left = self._level(level + 1)
        while self._peek().text in operators:
            operator = self._take().text
            if comparison:
                self._accept("bool")
            self._vector_matching()
            right = self._level(level + 1)
            left = self._combine(operator, left, right)
        return left

    def _combine(self, operator: str, left: str, right: str) -> str:
        if "m" in (left, right) or "t" in (left, right):
            raise PromQLError(f"'{operator}' needs instant vectors or scalars")
        if operator in SET_OPERATORS and "s" in (left, right):
            raise PromQLError(f"'{operator}' needs two instant vectors")
        return "v" if "v" in (left, right) else "s"

    def _vector_matching(self) -> None:
        if self._accept("on") or self._accept("ignoring"):
            self._labels()
            grouped = self._accept("group_left") or self._accept("group_right")
            if grouped and self._peek().text == "(":
                self._labels()

    def _unary(self) -> str:
        if self._peek().text in ("-", "+"):
            self._take()
            return self._unary()
        base = self._postfix()
        if self._accept("^"):
            self._vector_matching()
            return self._combine("^", base, self._unary())
        return base

    # operands
    def _postfix(self) -> str:
        kind = self._primary()
        selector = self.selector_end == self.at  # what came last was a metric's selector
        if self._accept("["):
            self._take(kind="duration")
            if self._accept(":"):  # a subquery: any instant vector
                if self._peek().kind == "duration":
                    self._take()
                if kind != "v":
                    raise PromQLError("a subquery needs an instant vector")
            elif kind != "v" or not selector:
                raise PromQLError("a range selects from a metric; use a subquery for more")
            self._take("]")
            kind = "m"
        if self._accept("offset"):
            self._accept("-")
            self._take(kind="duration")
        return kind

    def _primary(self) -> str:
        token = self._peek()
        if token.kind == "number":
            self._take()
            return "s"
        if token.kind == "string":
            self._take()
            return "t"
        if token.text == "(":
            self._take()
            kind = self._level(0)
            self._take(")")
            return kind
        if token.text == "{":
            self._matchers()
            self.selector_end = self.at
            return "v"
        if token.kind != "ident":
            raise PromQLError(f"unexpected {token.text or 'end'!r}")
        if token.text in AGGREGATIONS:
            return self._aggregation()
        if self._peek(1).text == "(":
            return self._function()
        if token.text in KEYWORDS:
            raise PromQLError(f"unexpected keyword {token.text!r}")
        self._take()
        if token.text.lower() in ("inf", "nan"):
            return "s"
        self.metrics.add(token.text)
        if self._peek().text == "{":
            self._matchers()
        self.selector_end = self.at
        return "v"

    def _aggregation(self) -> str:
        name = self._take().text
        grouped = self._grouping()
        self._take("(")
        if name in AGGREGATION_PARAM:
            param = self._level(0)
            if param not in ("s", "t"):
                raise PromQLError(f"{name}'s parameter is a scalar")
            self._take(",")
        if self._level(0) != "v":
            raise PromQLError(f"{name} aggregates an instant vector")
        self._take(")")
        if not grouped:
            self._grouping()
        return "v"

    def _grouping(self) -> bool:
        if self._accept("by") or self._accept("without"):
            self._labels()
            return True
        return False

    def _function(self) -> str:
        name = self._take(kind="ident").text
        if name not in FUNCTIONS:
            raise PromQLError(f"unknown function {name}")
        wanted, returns = FUNCTIONS[name]
        self._take("(")
        given: list[str] = []
        while self._peek().text != ")":
            if given:
                self._take(",")
            given.append(self._level(0))
        self._take(")")
        required = wanted.replace("?", "")
        optional = [wanted[i - 1] for i, c in enumerate(wanted) if c == "?"]
        if not (len(required) - len(optional) <= len(given) <= len(required)):
            raise PromQLError(f"{name} takes {len(required)} arguments, got {len(given)}")
        for index, (want, got) in enumerate(zip(required, given, strict=False)):
            if want != got:
                raise PromQLError(f"{name}: argument {index + 1} is {got}, it needs {want}")
        return returns

    def _labels(self) -> None:
        self._take("(")
        while self._peek().text != ")":
            self._take(kind="ident")
            if not self._accept(","):
                break
        self._take(")")

    def _matchers(self) -> None:
        self._take("{")
        while self._peek().text != "}":
            label = self._take(kind="ident").text
            operator = self._take(kind="op").text
            if operator not in ("=", "!=", "=~", "!~"):
                raise PromQLError(f"{label}: {operator!r} is not a label matcher")
            value = self._take(kind="string").text
            if label == "__name__" and operator == "=":
                self.metrics.add(value[1:-1])
            if not self._accept(","):
                break
        self._take("}")


def parse(expr: str) -> tuple[str, set[str]]:
    """(value type, metric names) of a PromQL expression with Grafana's variables in it."""
    expr = re.sub(
        r"\$__(?:rate_interval|interval|range)\b|\$\{__(?:rate_interval|interval|range)\}",
        "5m",
        expr,
    )
    outside_strings = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    if "$" in outside_strings:
        raise PromQLError("a Grafana variable stands outside a label matcher's string")
    parser = Parser(expr)
    return parser.parse(), parser.metrics


# --- the dashboard ------------------------------------------------------------------------


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


def panels(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every panel, rows' nested panels too."""
    found = []
    for item in items:
        found.append(item)
        found += panels(item.get("panels", []))
    return found


def expressions(board: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (f"{panel['title']} [{target['refId']}]", target["expr"])
        for panel in panels(board["panels"])
        for target in panel.get("targets", [])
    ]


def test_every_expression_parses_and_names_only_exported_metrics():
    exported = exported_metric_names()
    found = expressions(dashboard())
    assert len(found) >= 15
    used: set[str] = set()
    problems = []
    for where, expr in found:
        try:
            kind, metrics = parse(expr)
        except PromQLError as error:
            problems.append(f"{where}: {error}: {expr}")
            continue
        if kind != "v" or not metrics:
            problems.append(f"{where}: not a query of the gateway's series: {expr}")
        problems += [f"{where}: {m} is not exported" for m in sorted(metrics - exported)]
        used |= metrics
    assert not problems, "\n".join(problems)
    families = {
        name.rsplit("_", 1)[0] if name.endswith(("_total", "_bucket")) else name for name in used
    }
    assert {
        "aigw_requests",
        "aigw_time_to_first_token_seconds",
        "aigw_stream_duration_seconds",
        "aigw_open_streams",
        "aigw_retries",
        "aigw_fallbacks",
        "aigw_rate_limited",
        "aigw_tokens",
    } <= families


def test_template_variables_read_exported_metrics():
    exported = exported_metric_names()
    variables = dashboard()["templating"]["list"]
    assert [v["name"] for v in variables] == ["datasource", "instance", "tenant"]
    for variable in variables[1:]:
        metric = re.fullmatch(r"label_values\((\w+), *\w+\)", variable["query"]["query"])
        assert metric is not None and metric.group(1) in exported, variable["name"]


def test_panels_use_the_data_source_variable_and_do_not_overlap():
    board = dashboard()
    every = panels(board["panels"])
    assert len({p["id"] for p in every}) == len(every)
    taken: set[tuple[int, int]] = set()
    for panel in every:
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            assert all(t["datasource"] == panel["datasource"] for t in panel["targets"])
            assert panel["title"] and panel.get("fieldConfig", {}).get("defaults", {}).get("unit")
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        cells = {(x, y) for x in range(grid["x"], grid["x"] + grid["w"])
                 for y in range(grid["y"], grid["y"] + grid["h"])}  # fmt: skip
        assert not cells & taken, f"{panel['title']} overlaps another panel"
        taken |= cells


def test_the_exported_names_come_from_the_registry():
    names = exported_metric_names()
    assert {"aigw_requests_total", "aigw_open_streams", "aigw_overhead_seconds_bucket"} <= names
    assert "aigw_requests" not in names  # a counter's series end in _total
    assert "aigw_open_streams_total" not in names


@pytest.mark.parametrize(
    ("expr", "problem"),
    [
        ("sum(rate(aigw_requests_total[5m]))", None),
        (
            'histogram_quantile(0.9, sum by (le) (rate(aigw_overhead_seconds_bucket{a=~"$x"}'
            "[$__rate_interval])))",
            None,
        ),
        ("rate(aigw_requests_total)", "argument 1 is v, it needs m"),
        ("sum(rate(aigw_requests_total[5m])", "expected )"),
        ("sum by (route (rate(aigw_requests_total[5m]))", "expected )"),
        ("aigw_requests_total{route=}", "expected string"),
        ("rate(aigw_requests_total[5m]) + aigw_requests_total[5m]", "needs instant vectors"),
        ("sum(rate(aigw_requests_total[$tenant]))", "outside a label matcher"),
        ("histogram_quantil(0.9, aigw_overhead_seconds_bucket)", "unknown function"),
        ("sum(aigw_requests_total) by (route) or on (route) group_left vector(1)", None),
        ("max_over_time(sum(aigw_open_streams)[1h:5m])", None),
        ("max_over_time(sum(aigw_open_streams)[1h])", "use a subquery"),
        ("sum(aigw_requests_total offset 1h) > bool 3", None),
    ],
)
def test_the_parser_rejects_what_prometheus_would(expr, problem):
    if problem is None:
        parse(expr)
        return
    with pytest.raises(PromQLError, match=re.escape(problem)):
        parse(expr)


def test_a_metric_the_gateway_does_not_export_is_caught():
    _, metrics = parse(
        'sum(rate(aigw_request_total{outcome="error"}[5m])) / sum(aigw_open_streams)'
    )
    assert metrics == {"aigw_request_total", "aigw_open_streams"}
    assert metrics - exported_metric_names() == {"aigw_request_total"}
