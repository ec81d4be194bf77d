#!/usr/bin/env python3
"""Checks ServiceMonitor and PrometheusRule objects against the Prometheus
Operator's own CRD schemas, as the models of the PyPI package
`cloudcoil-models-prometheus-operator` carry them.

    python3 deploy/check/operator_schema.py FILE.yaml...

Each YAML document of kind ServiceMonitor or PrometheusRule is validated: a
missing required field or a wrong type is refused by the model, and a key
the schema does not know (a misspelling the Operator would drop without a
word) is refused by comparing the object with what the model keeps of it.
Other kinds are skipped. Prints one line per object checked; exits 1 if
any was refused, 2 if the package is missing.
"""
import sys

import yaml

try:
    from cloudcoil.models.prometheus_operator import v1
except ImportError:
    sys.exit("operator_schema.py: install cloudcoil-models-prometheus-operator (pip) first")
    raise

MODELS = {"ServiceMonitor": v1.ServiceMonitor, "PrometheusRule": v1.PrometheusRule}


def unknown_keys(given, kept, path):
    """Paths of the keys in `given` that the model did not keep."""
    found = []
    if isinstance(given, dict) and isinstance(kept, dict):
        for key, value in given.items():
            where = f"{path}.{key}" if path else key
            if key not in kept:
                # A key the model kept as None would not be dumped: only a
                # key whose value is not null can be unknown.
                if value is not None:
                    found.append(where)
            else:
                found += unknown_keys(value, kept[key], where)
    elif isinstance(given, list) and isinstance(kept, list):
        for i, (g, k) in enumerate(zip(given, kept)):
            found += unknown_keys(g, k, f"{path}[{i}]")
    return found


def check(document):
    """None when `document` is valid, else why not."""
    model = MODELS[document["kind"]]
    try:
        parsed = model.model_validate(document)
    except Exception as e:  # pydantic's ValidationError, with every field named
        return " ".join(str(e).split())
    kept = parsed.model_dump(by_alias=True, exclude_none=True)
    unknown = unknown_keys(document, kept, "")
    if unknown:
        return "unknown fields (misspelt?): " + ", ".join(unknown)
    return None


def main(paths):
    checked, refused = 0, 0
    for path in paths:
        with open(path) as f:
            documents = [d for d in yaml.safe_load_all(f) if isinstance(d, dict)]
        for document in documents:
            kind = document.get("kind")
            if kind not in MODELS:
                continue
            name = (document.get("metadata") or {}).get("name", "?")
            why = check(document)
            checked += 1
            if why:
                refused += 1
                print(f"ERROR {path}: {kind} {name}: {why}")
            else:
                print(f"OK {path}: {kind} {name}")
    if checked == 0:
        print("operator_schema.py: no ServiceMonitor or PrometheusRule found", file=sys.stderr)
        return 1
    return 1 if refused else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
