"""promtool on the shipped Prometheus files: `check config` (which also
checks the rule file it names), `check rules`, and `test rules` (every alert
firing and not firing).  Then the Grafana dashboard: valid JSON, unique
panel ids, every target with a refId and an expression that filters on
both template variables ($instance and $netns), and every expression valid
PromQL (promtool check rules on a rule file made of them, the variables set
to their All values).  SKIP (77) when promtool is missing."""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.join(HERE, "..", "..")
SHIPPED_DIR = os.path.join(TOP, "contrib", "prometheus")
DASHBOARD = os.path.join(TOP, "contrib", "grafana", "ephemeral_ports.json")
PROMTOOL = os.environ.get("PROMTOOL_BIN") or shutil.which("promtool")

COMMANDS = (
    ["check", "config", "prometheus.yml"],
    ["check", "rules", "ephemeral_ports.rules.yml"],
    ["test", "rules", "ephemeral_ports.rules.test.yml"],
)
# Every panel expression selects with both of these (the namespace one is
# how the dashboard picks network namespaces, issue 10).
REQUIRED_MATCHERS = ('instance=~"$instance"', 'netns=~"$netns"')


def promtool(command, cwd):
    result = subprocess.run([PROMTOOL] + command, cwd=cwd,
                            stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    print("$ promtool %s\n%s" % (" ".join(command), result.stdout))
    if result.returncode != 0:
        print("FAIL: promtool %s exited %d" % (" ".join(command),
                                               result.returncode))
    return result.returncode == 0


def dashboard_problems(model):
    """What is wrong with the dashboard's structure, and its expressions
    with the variables set to their All values."""
    problems = []
    variables = {v["name"]: v for v in model["templating"]["list"]}
    for name in ("datasource", "instance", "netns"):
        if name not in variables:
            problems.append("no template variable %r" % name)
    for name in ("instance", "netns"):
        variable = variables.get(name, {})
        if not (variable.get("includeAll") and
                variable.get("allValue") == ".*"):
            problems.append("variable %r: All must be .* (which also "
                            "matches an absent label)" % name)
    ids = [p["id"] for p in model["panels"]]
    if len(ids) != len(set(ids)):
        problems.append("panel ids repeat: %r" % ids)
    exprs = []
    for panel in model["panels"]:
        refs = [t.get("refId") for t in panel.get("targets", [])]
        if not refs or None in refs or len(refs) != len(set(refs)):
            problems.append("panel %d: targets need distinct refIds: %r"
                            % (panel["id"], refs))
        for target in panel.get("targets", []):
            expr = target.get("expr", "")
            for matcher in REQUIRED_MATCHERS:
                if expr.count(matcher) < 1:
                    problems.append("panel %d %s: %r lacks %s"
                                    % (panel["id"], target.get("refId"),
                                       expr, matcher))
            used = set(re.findall(r"\$(\w+)", expr))
            if used - set(variables):
                problems.append("panel %d: unknown variables %r"
                                % (panel["id"], sorted(used)))
            exprs.append(re.sub(r"\$(\w+)", ".*", expr))
    return problems, exprs


def check_dashboard():
    with open(DASHBOARD) as handle:
        model = json.load(handle)
    problems, exprs = dashboard_problems(model)
    for problem in problems:
        print("FAIL: dashboard: %s" % problem)
    print("dashboard: %d panels, %d expressions"
          % (len(model["panels"]), len(exprs)))
    # promtool parses each expression as a recording rule.
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "dashboard.rules.yml"), "w") as handle:
            handle.write("groups:\n  - name: dashboard\n    rules:\n")
            for number, expr in enumerate(exprs):
                handle.write("      - record: dashboard_expr_%d\n"
                             "        expr: %s\n"
                             % (number, json.dumps(expr)))
        parsed = promtool(["check", "rules", "dashboard.rules.yml"], tmp)
    return not problems and parsed


def main():
    if not PROMTOOL:
        print("SKIP: promtool not found (Debian package prometheus)")
        return 77
    # Relative names: the files name each other relative to their dir.
    results = [promtool(command, SHIPPED_DIR) for command in COMMANDS]
    results.append(check_dashboard())
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
