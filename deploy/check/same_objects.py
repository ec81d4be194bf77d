#!/usr/bin/env python3
"""Compares two renderings of the deployment (say the kustomize base and
the Helm chart) object by object, after setting aside what only says which
tool rendered them.

    python3 deploy/check/same_objects.py A.yaml B.yaml

Set aside: Helm's own labels (helm.sh/chart, app.kubernetes.io/instance,
version, managed-by) wherever labels or selectors are, `checksum/`
annotations, metadata.namespace, comments, key order, and the hash suffix
kustomize gives a generated ConfigMap's name (where it is referenced too).
A ConfigMap's `config.yaml` is compared as YAML. Everything else must be
equal: prints each object missing on one side and each differing field by
its path; exits 1 if any.
"""
import re
import sys

import yaml

TOOL_LABELS = {"helm.sh/chart", "app.kubernetes.io/instance", "app.kubernetes.io/version",
               "app.kubernetes.io/managed-by"}
HASHED = re.compile(r"^(.*-config)-[a-z0-9]{10}$")


def normal(value, key=None):
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if key in ("labels", "matchLabels", "selector") and k in TOOL_LABELS:
                continue
            if key == "annotations" and k.startswith("checksum/"):
                continue
            v = normal(v, k)
            if v == {} and k in ("annotations", "labels"):
                continue
            out[k] = v
        return out
    if isinstance(value, list):
        return [normal(v, key) for v in value]
    if isinstance(value, str):
        if key == "config.yaml":
            return normal(yaml.safe_load(value))
        m = HASHED.match(value)
        if m and key == "name":
            return m.group(1)
    return value


def objects(path):
    with open(path) as f:
        found = {}
        for doc in yaml.safe_load_all(f):
            if doc is None:
                continue
            doc = normal(doc)
            doc.get("metadata", {}).pop("namespace", None)
            found[(doc["kind"], doc["metadata"]["name"])] = doc
        return found


def differences(a, b, path):
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b), key=str):
            where = f"{path}.{k}"
            if k not in a:
                yield f"{where}: only in the second ({b[k]!r:.80})"
            elif k not in b:
                yield f"{where}: only in the first ({a[k]!r:.80})"
            else:
                yield from differences(a[k], b[k], where)
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            yield from differences(x, y, f"{path}[{i}]")
    elif a != b:
        yield f"{path}: {a!r:.80} != {b!r:.80}"


def main():
    first, second = objects(sys.argv[1]), objects(sys.argv[2])
    problems = []
    for key in sorted(set(first) | set(second)):
        name = f"{key[0]}/{key[1]}"
        if key not in second:
            problems.append(f"{name}: only in {sys.argv[1]}")
        elif key not in first:
            problems.append(f"{name}: only in {sys.argv[2]}")
        else:
            problems += [f"{name}{d}" for d in differences(first[key], second[key], "")]
    for p in problems:
        print(f"DIFFERENT {p}")
    print(f"{len(first)} and {len(second)} objects, {len(problems)} differences")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
