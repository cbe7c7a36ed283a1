#!/usr/bin/env python3
"""Checks deploy/grafana/tern-dashboard.json against docs/metrics.md, and hands its queries
to Prometheus's own parser.

  check_dashboard.py DASHBOARD.json [--rules-out FILE] [--print-exprs] [--names-in FILE ...]

Structure: unique panel ids, a gridPos inside the 24-column grid on every panel, no two
panels on the same cells, the `datasource` and `instance` variables, the datasource variable
on every panel and target, a non-empty expr on every target. Queries: every metric is one
docs/metrics.md lists (histograms only with _bucket, _sum or _count), every selector of a
tern or process metric filters on instance=~"$instance", every label named (matchers, by/on
lists, {{legend}}) is one the document lists, and no unknown $variable is left. The Python
side only tokenises; whether a query parses is promtool's to say: --rules-out writes every
expr, with Grafana's variables substituted, as a recording rule, for `promtool check rules`.
--print-exprs prints the substituted exprs one per line. --names-in scans another file (the
alert rules, their tests) for tern_ and process_ names missing from the document.
Exits 1 with one line per problem; writes and prints nothing then.
"""

import argparse
import json
import pathlib
import re
import sys

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
GRID_COLUMNS = 24
INSTANCE_MATCHER = ("instance", "=~", "$instance")
# What the check substitutes for Grafana's variables: values any Prometheus accepts.
SUBSTITUTES = {"instance": ".*", "__rate_interval": "1m", "__interval": "1m", "__range": "1h"}
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
# Labels Prometheus itself adds or uses: target labels and the histogram bucket bound.
BUILTIN_LABELS = {"instance", "job", "le", "__name__"}
# Metrics of Prometheus itself that a tern dashboard may use.
BUILTIN_METRICS = {"up"}
# Operators, modifiers and aggregations: an aggregation may be followed by "by (...)" rather
# than "(", so it cannot be told from a metric name by what follows it.
KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left",
            "group_right", "offset", "bool", "atan2", "inf", "nan", "sum", "min", "max", "avg",
            "group", "stddev", "stdvar", "count", "count_values", "bottomk", "topk", "quantile"}
LABEL_LIST_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right"}
METRIC_NAME = re.compile(r"\b(?:tern|process)_[A-Za-z0-9_]*\b")
VARIABLE = re.compile(r"\$(?:\{(\w+)(?::\w+)?\}|(\w+))")


class Problems:
    """Collects one line per problem, so a run reports all of them at once."""

    def __init__(self):
        self.lines = []

    def add(self, where, message):
        self.lines.append(f"{where}: {message}")


# ---------------------------------------------------------------------- docs/metrics.md

def parse_metrics_doc(path):
    """Returns ({allowed metric name: base name}, {base name: labels}) from the doc's tables.

    A table row names its metrics in backticks in the first cell and their labels in
    backticks in the second; rows under a "Histograms" heading allow only the series names
    with _bucket, _sum and _count.
    """
    allowed = {}
    labels = {}
    histograms = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            histograms = "histogram" in line.lower()
            continue
        if not line.startswith("|"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        names = [n for n in re.findall(r"`([^`]+)`", cells[0])
                 if re.fullmatch(r"(?:tern|process)_[a-z0-9_]+", n)]
        if not names:
            continue
        row_labels = set()
        if len(cells) > 1:
            row_labels = {lab for lab in re.findall(r"`([^`]+)`", cells[1])
                          if re.fullmatch(r"[a-z_][a-z0-9_]*", lab)}
        for name in names:
            labels[name] = row_labels
            if histograms:
                for suffix in HISTOGRAM_SUFFIXES:
                    allowed[name + suffix] = name
            else:
                allowed[name] = name
    return allowed, labels


# ---------------------------------------------------------------------- PromQL tokens

TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<comment>\#[^\n]*)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
  | (?P<variable>\$\{\w+(?::\w+)?\}|\$\w+)
  | (?P<number>(?:0x[0-9a-fA-F]+|[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)[a-zA-Z0-9]*)
  | (?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
  | (?P<op>=~|!~|!=|==|<=|>=|[-+*/%^<>=,(){}\[\]@])
""", re.VERBOSE)


def tokenize(expr):
    """Yields (kind, text); raises ValueError at a character no PromQL token starts with."""
    pos = 0
    while pos < len(expr):
        m = TOKEN.match(expr, pos)
        if not m:
            raise ValueError(f"unexpected character {expr[pos]!r} at offset {pos}")
        pos = m.end()
        if m.lastgroup not in ("space", "comment"):
            yield m.lastgroup, m.group()


def unquote(text):
    if text.startswith("`"):
        return text[1:-1]
    return bytes(text[1:-1], "utf-8").decode("unicode_escape")


def scan_expr(expr):
    """Returns (selectors, label names) of a PromQL expression.

    A selector is (metric name or None, [(label, operator, value)]). This is a tokeniser with
    just enough context to tell metric names, labels and functions apart; promtool judges
    the grammar.
    """
    tokens = list(tokenize(expr))
    selectors = []
    label_names = set()
    i = 0

    def read_matchers(start):
        # tokens[start] is "{"; returns (matchers, index after "}").
        matchers = []
        j = start + 1
        while j < len(tokens) and tokens[j][1] != "}":
            if tokens[j][1] == ",":
                j += 1
                continue
            if (j + 2 < len(tokens) and tokens[j][0] == "ident" and tokens[j + 1][0] == "op"
                    and tokens[j + 2][0] == "string"):
                matchers.append((tokens[j][1], tokens[j + 1][1], unquote(tokens[j + 2][1])))
                j += 3
            else:
                raise ValueError(f"cannot read the label matcher at {tokens[j][1]!r}")
        if j >= len(tokens):
            raise ValueError("unclosed {")
        return matchers, j + 1

    while i < len(tokens):
        kind, text = tokens[i]
        following = tokens[i + 1][1] if i + 1 < len(tokens) else None
        if kind == "ident" and text in LABEL_LIST_KEYWORDS and following == "(":
            j = i + 2
            while j < len(tokens) and tokens[j][1] != ")":
                if tokens[j][0] == "ident":
                    label_names.add(tokens[j][1])
                j += 1
            i = j + 1
        elif kind == "ident" and (text in KEYWORDS or following == "("):
            i += 1  # an operator, a modifier or a function
        elif kind == "ident":
            matchers = []
            i += 1
            if following == "{":
                matchers, i = read_matchers(i)
            selectors.append((text, matchers))
        elif text == "{":
            matchers, i = read_matchers(i)
            selectors.append((None, matchers))
        else:
            i += 1
    for _, matchers in selectors:
        label_names.update(m[0] for m in matchers)
    return selectors, label_names


def substitute(expr, where, problems):
    def replace(m):
        name = m.group(1) or m.group(2)
        if name not in SUBSTITUTES:
            problems.add(where, f"unknown variable ${name} (known: "
                         + ", ".join("$" + k for k in SUBSTITUTES) + ")")
            return m.group()
        return SUBSTITUTES[name]
    return VARIABLE.sub(replace, expr)


# ---------------------------------------------------------------------- the dashboard

def walk_panels(panels):
    """Yields every panel, with the panels of collapsed rows after their row."""
    for panel in panels:
        yield panel
        yield from panel.get("panels") or []


def check_grid(panels, label, problems):
    taken = {}
    for panel in panels:
        grid = panel.get("gridPos")
        where = f"panel {panel.get('id')} {panel.get('title', '')!r}"
        if not isinstance(grid, dict):
            problems.add(where, "has no gridPos")
            continue
        values = [grid.get(k) for k in ("x", "y", "w", "h")]
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            problems.add(where, f"gridPos needs integers x, y, w and h: {grid}")
            continue
        x, y, w, h = values
        if w <= 0 or h <= 0 or x < 0 or y < 0 or x + w > GRID_COLUMNS:
            problems.add(where, f"gridPos {grid} is outside the {GRID_COLUMNS}-column grid")
            continue
        for row in range(y, y + h):
            for column in range(x, x + w):
                other = taken.setdefault((row, column), where)
                if other != where:
                    problems.add(where, f"gridPos overlaps {other} ({label})")
                    break
            else:
                continue
            break


def check_templating(dash, metrics, problems):
    variables = {v.get("name"): v for v in dash.get("templating", {}).get("list", [])}
    ds = variables.get("datasource")
    if not ds or ds.get("type") != "datasource" or ds.get("query") != "prometheus":
        problems.add("templating", 'needs a variable "datasource" of type datasource, '
                     'query prometheus')
    inst = variables.get("instance")
    if not inst:
        problems.add("templating", 'needs a variable "instance"')
        return
    if inst.get("datasource") != DATASOURCE:
        problems.add("templating", f'variable "instance" must use datasource {DATASOURCE}')
    query = inst.get("query")
    if isinstance(query, dict):
        query = query.get("query")
    m = re.fullmatch(r"\s*label_values\(\s*([A-Za-z_:][A-Za-z0-9_:]*)\s*,\s*(\w+)\s*\)\s*",
                     query or "")
    if not m or m.group(2) != "instance":
        problems.add("templating", f'variable "instance" should be label_values(METRIC, '
                     f'instance), not {query!r}')
    elif m.group(1) not in metrics:
        problems.add("templating", f"variable \"instance\" uses {m.group(1)}, which "
                     "docs/metrics.md does not list")


def check_dashboard(dash, metrics, metric_labels, problems):
    """Returns [(record name, substituted expr)] for the targets in panel order."""
    if not dash.get("uid"):
        problems.add("dashboard", "has no uid")
    check_templating(dash, metrics, problems)
    known_labels = set(BUILTIN_LABELS).union(*metric_labels.values())

    top = dash.get("panels")
    if not isinstance(top, list) or not top:
        problems.add("dashboard", "has no panels")
        return []
    check_grid(top, "top level", problems)
    for panel in top:
        if panel.get("panels"):
            check_grid(panel["panels"], f"inside row {panel.get('id')}", problems)

    seen_ids = {}
    records = []
    for panel in walk_panels(top):
        pid = panel.get("id")
        where = f"panel {pid} {panel.get('title', '')!r}"
        if not isinstance(pid, int) or isinstance(pid, bool):
            problems.add(where, "needs an integer id")
        elif pid in seen_ids:
            problems.add(where, f"id {pid} is also the id of {seen_ids[pid]}")
        else:
            seen_ids[pid] = where
        if panel.get("datasource") != DATASOURCE:
            problems.add(where, f"datasource must be {json.dumps(DATASOURCE)}, "
                         f"not {json.dumps(panel.get('datasource'))}")
        targets = panel.get("targets") or []
        if panel.get("type") not in ("row", "text") and not targets:
            problems.add(where, "has no targets")
        for n, target in enumerate(targets, start=1):
            twhere = f"{where} target {target.get('refId', n)}"
            if target.get("datasource") != DATASOURCE:
                problems.add(twhere, f"datasource must be {json.dumps(DATASOURCE)}, "
                             f"not {json.dumps(target.get('datasource'))}")
            expr = target.get("expr")
            if not isinstance(expr, str) or not expr.strip():
                problems.add(twhere, "has no expr")
                continue
            check_expr(expr, target.get("legendFormat", ""), metrics, known_labels, twhere,
                       problems)
            substituted = substitute(expr, twhere, problems)
            records.append((f"dashboard:panel{pid}_{n}", " ".join(substituted.split())))
    return records


def check_expr(expr, legend, metrics, known_labels, where, problems):
    try:
        selectors, label_names = scan_expr(expr)
    except ValueError as e:
        problems.add(where, f"cannot read expr ({e}): {expr}")
        return
    if not selectors:
        problems.add(where, f"expr selects no metric: {expr}")
    for name, matchers in selectors:
        if name is None:
            problems.add(where, "a selector without a metric name; name the metric")
            continue
        if name not in metrics and name not in BUILTIN_METRICS:
            hint = ""
            if any(name == base for base in metrics.values()):
                hint = " (a histogram: use _bucket, _sum or _count)"
            problems.add(where, f"{name} is not a metric docs/metrics.md lists{hint}")
        if INSTANCE_MATCHER not in matchers:
            problems.add(where, f'{name} does not filter on instance=~"$instance"')
    legend_labels = set(re.findall(r"\{\{\s*(\w+)\s*\}\}", legend or ""))
    for label in sorted((label_names | legend_labels) - known_labels):
        problems.add(where, f"label {label!r} is not one docs/metrics.md lists")


def check_names_in(path, metrics, problems):
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        problems.add(str(path), f"cannot read: {e.strerror}")
        return
    for number, line in enumerate(text.splitlines(), start=1):
        for name in METRIC_NAME.findall(line):
            # "tern_" or "process_*" in prose names a family, not a metric.
            if name not in metrics and not name.endswith("_"):
                problems.add(f"{path}:{number}", f"{name} is not a metric docs/metrics.md lists")


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dashboard", type=pathlib.Path)
    parser.add_argument("--rules-out", type=pathlib.Path,
                        help="write the exprs as recording rules for promtool check rules")
    parser.add_argument("--print-exprs", action="store_true",
                        help="print the substituted exprs, one per line")
    parser.add_argument("--names-in", type=pathlib.Path, action="append", default=[],
                        metavar="FILE", help="also check the metric names in FILE")
    parser.add_argument("--metrics-doc", type=pathlib.Path,
                        default=pathlib.Path(__file__).resolve().parent.parent / "docs"
                        / "metrics.md")
    args = parser.parse_args(argv)

    problems = Problems()
    try:
        metrics, metric_labels = parse_metrics_doc(args.metrics_doc)
    except OSError as e:
        print(f"check_dashboard: cannot read {args.metrics_doc}: {e.strerror}", file=sys.stderr)
        return 1
    if not metrics:
        print(f"check_dashboard: {args.metrics_doc} lists no tern_ or process_ metric",
              file=sys.stderr)
        return 1

    records = []
    try:
        dash = json.loads(args.dashboard.read_text(encoding="utf-8"))
    except OSError as e:
        problems.add(str(args.dashboard), f"cannot read: {e.strerror}")
    except json.JSONDecodeError as e:
        problems.add(str(args.dashboard), f"is not JSON: {e}")
    else:
        records = check_dashboard(dash, metrics, metric_labels, problems)
    for path in args.names_in:
        check_names_in(path, metrics, problems)

    if problems.lines:
        for line in problems.lines:
            print(line, file=sys.stderr)
        print(f"check_dashboard: {len(problems.lines)} problem(s)", file=sys.stderr)
        if args.rules_out:
            args.rules_out.unlink(missing_ok=True)
        return 1

    if args.rules_out:
        # JSON is YAML, so promtool reads this as a rule file; one recording rule per target.
        rules = {"groups": [{"name": "dashboard", "rules": [
            {"record": record, "expr": expr} for record, expr in records]}]}
        args.rules_out.write_text(json.dumps(rules, indent=2) + "\n", encoding="utf-8")
    if args.print_exprs:
        for _, expr in records:
            print(expr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
