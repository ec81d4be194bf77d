#!/usr/bin/env python3
"""Lints, schema-checks and renders a Helm chart with the Helm SDK
(PyPI `helm-python-sdk`; no helm binary is needed).

    python3 deploy/check/helm_chart.py CHART [-f VALUES.yaml]... [--name R]
        [--namespace NS] [--notes]

The values files are merged in order, as `helm template -f` merges them
(maps key by key, anything else replaced). The chart is linted (`helm lint
--strict`), the values are validated against its values.schema.json, and
the manifests are printed as one YAML stream, as `helm template` prints
them (`--notes`: NOTES.txt instead). Exits 1 when the lint, the schema or a
template refuses, naming why; 2 when the SDK is missing.
"""
import argparse
import sys

import yaml

try:
    from helm_python import Chart, lint
except ImportError:
    sys.exit("helm_chart.py: install helm-python-sdk (pip) first")
    raise


def merged(base, over):
    """`over` on `base`, as Helm merges values files."""
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for key, value in over.items():
            out[key] = merged(base.get(key), value) if key in base else value
        return out
    return over


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("chart")
    parser.add_argument("-f", "--values", action="append", default=[])
    parser.add_argument("--name", default="cmu-exporter")
    parser.add_argument("--namespace", default="monitoring")
    parser.add_argument("--notes", action="store_true")
    args = parser.parse_args()
    values = {}
    for file in args.values:
        with open(file) as f:
            values = merged(values, yaml.safe_load(f) or {})
    report = lint(args.chart, values=values, strict=True, namespace=args.namespace)
    # Severity 1 is information (an icon is recommended), 2 a warning, 3 an error.
    problems = [m for m in report.get("messages", []) if m.get("severity", 0) >= 2]
    problems += [{"path": "", "error": e} for e in report.get("errors", [])]
    if problems:
        # The SDK repeats one schema error under several paths: say it once.
        said = set()
        for m in problems:
            error = " ".join(str(m.get("error")).split())
            if not any(error in s or s in error for s in said):
                said.add(error)
                print(f"ERROR lint {m.get('path', '')}: {error}", file=sys.stderr)
        sys.exit(1)
    chart = Chart.load(args.chart)
    try:
        with open(f"{args.chart}/values.yaml") as f:
            defaults = yaml.safe_load(f)
        chart.validate_schema(merged(defaults, values))
        rendered = chart.render(values, name=args.name, namespace=args.namespace)
    except Exception as e:  # the SDK raises Helm's own message
        print(f"ERROR {' '.join(str(e).split())}", file=sys.stderr)
        sys.exit(1)
    for path in sorted(rendered):
        text = rendered[path]
        if path.endswith("NOTES.txt"):
            if args.notes:
                print(text)
            continue
        if args.notes or not text.strip():
            continue
        for document in text.split("\n---\n"):
            if yaml.safe_load(document) is not None:
                print(f"---\n# Source: {path}\n{document.strip()}")


if __name__ == "__main__":
    main()
