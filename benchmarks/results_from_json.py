"""Markdown tables from a pytest-benchmark JSON file, ready for ``benchmarks/RESULTS.md``.

    python -m pytest benchmarks/ --benchmark-only --benchmark-json=bench.json
    python benchmarks/results_from_json.py bench.json

One table per ``benchmark.group`` (in the order the groups first appear): name
(``extra_info["label"]``, else the test name), median and min time, the ratio of the
median to the median of the group's baseline (the entry with
``extra_info["baseline"]`` true; ``--baseline TEXT`` picks the first entry whose name
contains TEXT instead; no baseline: the fastest entry), the number of rounds, then one
column per other ``extra_info`` key.  The baseline comes first, the rest by median.
"""

from __future__ import annotations

import argparse
import json
import sys

SKIP_INFO = ("label", "baseline")


def fmt(v):
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.2e}" if 0 < abs(v) < 1e-2 else f"{v:.6g}"
    return str(v)


def fmt_time(seconds, unit):
    scale = {"s": 1.0, "ms": 1e3, "us": 1e6}[unit]
    x = seconds * scale
    return f"{x:.3g}" if x < 100 else f"{x:.0f}"


def label(b):
    return (b.get("extra_info") or {}).get("label") or b["name"]


def pick_unit(medians):
    m = min(medians)
    return "s" if m >= 1.0 else "ms" if m >= 1e-3 else "us"


def group_table(name, benches, baseline_text=None):
    if baseline_text is not None:
        base = next((b for b in benches if baseline_text in label(b) or baseline_text in b["name"]),
                    None)
    else:
        base = next((b for b in benches if (b.get("extra_info") or {}).get("baseline")), None)
    if base is None:
        base = min(benches, key=lambda b: b["stats"]["median"])
    rest = sorted((b for b in benches if b is not base), key=lambda b: b["stats"]["median"])
    rows = [base] + rest
    keys = []
    for b in rows:
        for k in (b.get("extra_info") or {}):
            if k not in SKIP_INFO and k not in keys:
                keys.append(k)
    unit = pick_unit([b["stats"]["median"] for b in rows])
    t_base = base["stats"]["median"]
    out = [f"### {name}\n",
           f"| name | median {unit} | min {unit} | × {label(base)} | rounds | "
           + "".join(f"{k} | " for k in keys).rstrip(),
           "|---|---|---|---|---|" + "---|" * len(keys)]
    for b in rows:
        s, info = b["stats"], b.get("extra_info") or {}
        cells = [label(b), fmt_time(s["median"], unit), fmt_time(s["min"], unit),
                 f"{s['median'] / t_base:.2f}", str(s["rounds"])]
        cells += [fmt(info.get(k)) for k in keys]
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


def header(doc):
    mi, ci = doc.get("machine_info", {}), doc.get("commit_info", {})
    cpu = mi.get("cpu", {})
    opts = doc["benchmarks"][0].get("options", {}) if doc["benchmarks"] else {}
    lines = [
        (f"Machine: {cpu.get('brand_raw', mi.get('processor', '?'))}, "
         f"{cpu.get('count', '?')} CPUs, Python {mi.get('python_version', '?')}, "
         f"{mi.get('system', '')} {mi.get('release', '')}").rstrip(),
        (f"Run: {doc.get('datetime', '?')}, pytest-benchmark {doc.get('version', '?')}, "
         f"commit {str(ci.get('id', '?'))[:10]}{' (dirty)' if ci.get('dirty') else ''}, "
         f"min_rounds {opts.get('min_rounds', '?')}, max_time {opts.get('max_time', '?')} s"),
    ]
    return "\n\n".join(lines) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("json", help="file written by --benchmark-json")
    p.add_argument("--baseline", default=None,
                   help="ratio to the first entry whose name contains this text")
    args = p.parse_args(argv)
    with open(args.json, encoding="utf-8") as f:
        doc = json.load(f)
    groups: dict = {}
    for b in doc["benchmarks"]:
        groups.setdefault(b.get("group") or b["fullname"].split("::")[0], []).append(b)
    out = [header(doc)]
    out += [group_table(g, bs, args.baseline) for g, bs in groups.items()]
    sys.stdout.write("\n".join(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
