#!/usr/bin/env python3
"""Type-checks Grafana dashboards against Grafana's own schema, the
TypeScript types of the npm package `@grafana/schema`, with `tsc --strict`:
an unknown key, a wrong type or a value outside an enum fails.

    python3 deploy/check/grafana_schema.py NODE_DIR DASHBOARD.json...

NODE_DIR holds `node_modules` with `@grafana/schema` (13) and `typescript`
(5), e.g. after `npm install --prefix NODE_DIR @grafana/schema@13
typescript@5`. Each dashboard is wrapped as a typed constant
(`const d: Dashboard = <json>`) in a file under NODE_DIR, so that the
object literal gets TypeScript's excess-property checks. Prints tsc's
errors against each dashboard's name; exits 1 if there is any.
"""
import json, os, re, subprocess, sys, tempfile


def main(node_dir, dashboards):
    tsc = os.path.join(node_dir, "node_modules", ".bin", "tsc")
    if not os.path.exists(os.path.join(node_dir, "node_modules", "@grafana", "schema")) or not os.path.exists(tsc):
        sys.exit(f"grafana_schema.py: no @grafana/schema and typescript in {node_dir}: "
                 f"npm install --prefix {node_dir} @grafana/schema@13 typescript@5")
    with tempfile.TemporaryDirectory(dir=node_dir, prefix="check-") as work:
        names = {}
        for i, path in enumerate(dashboards):
            with open(path) as f:
                text = f.read()
            json.loads(text)  # a file that is no JSON fails here, named
            wrapper = os.path.join(work, f"dashboard{i}.ts")
            names[os.path.basename(wrapper)] = path
            with open(wrapper, "w") as f:
                f.write("import type { Dashboard } from '@grafana/schema';\n")
                # The file's own text from line 2 on: tsc's line N is the file's N - 1.
                f.write("export const dashboard: Dashboard = ")
                f.write(text.rstrip())
                f.write(";\n")
        run = subprocess.run([tsc, "--noEmit", "--strict", "--skipLibCheck", "--moduleResolution", "bundler",
                              "--module", "esnext", "--target", "es2020"]
                             + [os.path.join(work, n) for n in sorted(names)],
                             capture_output=True, text=True, cwd=work)
        out = run.stdout + run.stderr
        for wrapper, path in names.items():
            out = re.sub(rf"(^|\S*/){re.escape(wrapper)}\((\d+),",
                         lambda m: f"{m.group(1) if not m.group(1).endswith('/') else ''}{path}({int(m.group(2)) - 1},",
                         out, flags=re.M)
        errors = out.count("error TS")
        for path in dashboards:
            print(f"{'ERROR' if path in out else 'OK'} {path}")
        if run.returncode != 0 or errors:
            print(out.strip())
            return 1
    return 0


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2:]))
