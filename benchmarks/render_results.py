"""Render ``benchmarks/RESULTS.md`` from pytest-benchmark JSON files.

    python -m pytest benchmarks --bench-size full --benchmark-json=.benchmarks/full.json
    python benchmarks/render_results.py .benchmarks/full.json > benchmarks/RESULTS.md

Arguments are JSON files written by ``--benchmark-json`` or ``--benchmark-save`` (or folders
holding them, e.g. ``.benchmarks``); where several hold the same suite, the newest run of it
is used.  One section per suite (``test_bench_<topic>.py``), headed by the machine, the
versions, the date and the command of its run (from the JSON's ``machine_info``,
``commit_info`` and what ``benchmarks/conftest.py`` adds there), then one table per
benchmark group: each entry's time (the median of its rounds, or ``extra_info["time_s"]``
where the suite measured the call itself), its ratio to each baseline of the group
(``extra_info["role"] == "baseline"``) and the ``extra_info`` quality columns.  Groups that
share ``extra_info["table"]`` become one table with a row per group.  Without GPU results
the section is ``gpu_figures.md`` (next to this script), kept by hand.
"""

from __future__ import annotations

import argparse
import ast
import json
import math
import os
import sys
from datetime import datetime

HERE = os.path.dirname(os.path.abspath(__file__))

TOPICS = {  # suite -> section title, in this order
    "tv": "TV kernels",
    "denoise": "Denoising",
    "inverse": "Inverse problems: deconvolution, inpainting, CT",
    "poisson": "Photon counts",
    "dask": "Dask",
    "threads": "Threads: busy machine, process pools",
    "memory": "Memory",
    "gpu": "GPU",
}
RESERVED = {"label", "role", "table", "row", "time_s", "lower_bound"}
HEADERS = {"PSNR": "PSNR dB", "ΔPSNR": "ΔPSNR dB", "excess": "objective excess",
           "import_s": "import s", "peak_x": "peak / input", "rss_x": "RSS / input"}
NAMES = {"python": "Python", "numpy": "NumPy", "numba": "Numba", "scipy": "SciPy",
         "skimage": "scikit-image", "tvnumba": "tvnumba"}


# --------------------------------------------------------------------------- input
def load(paths):
    """Every benchmark of every JSON, each with its run's header data; per topic only
    the newest run that has it."""
    files = []
    for p in paths:
        if os.path.isdir(p):
            for root, _, names in os.walk(p):
                files += [os.path.join(root, n) for n in names if n.endswith(".json")]
        else:
            files.append(p)
    runs = []
    for path in files:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
        if "benchmarks" in doc:
            runs.append(doc)
    runs.sort(key=lambda d: d.get("datetime", ""))
    by_topic: dict = {}
    for doc in runs:  # later runs replace earlier ones, topic by topic
        topics: dict = {}
        for b in doc["benchmarks"]:
            topics.setdefault(topic_of(b), []).append(b)
        for t, benches in topics.items():
            by_topic[t] = (doc, benches)
    return by_topic


def topic_of(b) -> str:
    module = b["fullname"].split("::")[0].rsplit("/", 1)[-1]
    name = module[:-3] if module.endswith(".py") else module
    return name[len("test_bench_"):] if name.startswith("test_bench_") else name


# --------------------------------------------------------------------------- formatting
def info(b) -> dict:
    return b.get("extra_info") or {}


def label(b) -> str:
    return info(b).get("label") or b["name"]


def seconds(b) -> float:
    t = info(b).get("time_s")
    return float(t) if t is not None else b["stats"]["median"]


def fmt_num(x, digits=3) -> str:
    if x == 0:
        return "0"
    if abs(x) >= 10 ** digits:
        return f"{x:.0f}"
    return f"{x:.{digits}g}"


def fmt_time(b) -> str:
    """The entry's time with its unit (s, ms, µs), "> " when a lower bound."""
    t = seconds(b)
    s = (f"{fmt_num(t)} s" if t >= 1 else f"{fmt_num(t * 1e3)} ms" if t >= 1e-3
         else f"{fmt_num(t * 1e6)} µs")
    return f"> {s}" if info(b).get("lower_bound") else s


def fmt_ratio(b, base) -> str:
    if b is base:
        return "1"
    r = seconds(b) / seconds(base)
    s = fmt_num(r)
    return f"> {s}" if info(b).get("lower_bound") and not info(base).get("lower_bound") else s


def fmt_value(v) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if math.isnan(v):
            return "–"
        if v != 0 and abs(v) < 1e-3:
            return f"{v:.1e}"
        if abs(v) >= 1e3:  # objectives: the digits that tell two solvers apart
            return f"{v:.6g}"
        return f"{v:.4g}"
    return str(v).replace("|", "\\|")


def md_table(header, rows) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


def extra_keys(benches) -> list[str]:
    keys: list[str] = []
    for b in benches:
        for k in info(b):
            if k not in RESERVED and k not in keys:
                keys.append(k)
    return keys


# --------------------------------------------------------------------------- tables
def group_table(name, benches) -> list[str]:
    """One row per entry: time, ratio to each baseline, quality columns."""
    bases = [b for b in benches if info(b).get("role") == "baseline"]
    keys = extra_keys(benches)
    header = ["", "time"] + [f"× {label(b)}" for b in bases] + ["rounds"]
    header += [HEADERS.get(k, k) for k in keys]
    rows = []
    for b in benches:
        rows.append([label(b), fmt_time(b)] + [fmt_ratio(b, base) for base in bases]
                    + [str(b["stats"]["rounds"])] + [fmt_value(info(b).get(k)) for k in keys])
    return [f"**{name}**", ""] + md_table(header, rows) + [""]


def wide_table(name, groups) -> list[str]:
    """One row per group: a time column per label, the ratio of each non-baseline label
    to each baseline, the quality columns of tvnumba's entries."""
    labels: list[str] = []
    for benches in groups.values():
        for b in benches:
            if label(b) not in labels:
                labels.append(label(b))
    role = {label(b): info(b).get("role") for bs in groups.values() for b in bs}
    bases = [x for x in labels if role[x] == "baseline"]
    subjects = [x for x in labels if role[x] != "baseline"]
    keys = extra_keys([b for bs in groups.values() for b in bs if info(b).get("role") ==
                       "tvnumba"])
    mine_label = next((x for x in labels if role[x] == "tvnumba"), None)
    # what other entries report beyond tvnumba's columns (e.g. a variant's own quality)
    others = [(x, k) for x in subjects if role[x] == "other"
              for k in extra_keys([b for bs in groups.values() for b in bs if label(b) == x])
              if k not in keys]
    header = [""] + labels
    header += [f"{s} / {b}" for s in subjects for b in bases]
    header += [f"{HEADERS.get(k, k)} ({mine_label})" for k in keys] if mine_label else []
    header += [f"{HEADERS.get(k, k)} ({x})" for x, k in others]
    rows = []
    for benches in groups.values():
        by = {label(b): b for b in benches}
        row = [info(benches[0]).get("row") or benches[0]["group"]]
        row += [fmt_time(by[x]) if x in by else "–" for x in labels]
        row += [fmt_ratio(by[s], by[b]) if s in by and b in by else "–"
                for s in subjects for b in bases]
        mine = next((b for b in benches if info(b).get("role") == "tvnumba"), None)
        row += [fmt_value(info(mine).get(k)) if mine else "–" for k in keys]
        row += [fmt_value(info(by[x]).get(k)) if x in by else "–" for x, k in others]
        rows.append(row)
    return [f"**{name}** (medians)", ""] + md_table(header, rows) + [""]


def tables(benches) -> list[str]:
    groups: dict = {}
    for b in benches:
        if b.get("stats"):
            groups.setdefault(b.get("group") or b["name"], []).append(b)
    wide: dict = {}
    order: list = []
    for g, bs in groups.items():
        t = info(bs[0]).get("table")
        if t is not None and all(info(b).get("table") == t for b in bs):
            if t not in wide:
                wide[t] = {}
                order.append(("wide", t))
            wide[t][g] = bs
        else:
            order.append(("group", g))
    out = []
    for kind, key in order:
        out += wide_table(key, wide[key]) if kind == "wide" else group_table(key, groups[key])
    return out


# --------------------------------------------------------------------------- headers
def run_header(doc, note) -> list[str]:
    mi, ci = doc.get("machine_info", {}), doc.get("commit_info", {})
    tb = mi.get("tvnumba_bench", {})
    cpu = tb.get("cpu_model") or (mi.get("cpu") or {}).get("brand_raw") or mi.get("processor")
    n = tb.get("logical_cpus") or (mi.get("cpu") or {}).get("count")
    usable = tb.get("cpus_usable")
    cores = f"{n} logical CPUs" + (f", {usable} usable" if usable and usable != n else "")
    load = ""
    if tb.get("loadavg_start") and tb.get("loadavg_end"):
        start, end = tb["loadavg_start"][0], tb["loadavg_end"][0]
        load = (f"; load average (1 min) {start:g} at the start and {end:g} at the end of "
                f"the run")
        if n and max(start, end) > n:  # more runnable threads than CPUs: others' work
            load += f", so a {n}-CPU machine shared with other work: times are noisy"
    machine = (f"**Machine:** {cpu} ({cores}), {mi.get('system', '')} "
               f"{mi.get('release', '')}{load}.").replace(" ,", ",")
    if note:
        machine += f" {note}"
    v = tb.get("versions") or {"python": mi.get("python_version", "?")}
    parts = []
    for k, name in NAMES.items():
        if k in v:
            text = f"{name} {v[k]}"
            if k == "numba" and tb.get("numba_threading_layer"):
                text += (f" (threading layer {tb['numba_threading_layer']}, "
                         f"{tb.get('numba_threads', '?')} threads)")
            if k == "tvnumba" and ci.get("id"):
                dirty = ", uncommitted changes" if ci.get("dirty") else ""
                text += f" (commit {ci['id'][:10]}{dirty})"
            parts.append(text)
    peers = tb.get("peers") or {}
    versions = "**Versions:** " + ", ".join(parts)
    if peers:
        versions += "; installed peers: " + ", ".join(f"{k} {x}" for k, x in peers.items())
    env = {k: x for k, x in (tb.get("env") or {}).items() if k != "TVNUMBA_BENCH_SIZE"}
    if env:
        versions += "; environment: " + ", ".join(f"`{k}={x}`" for k, x in env.items())
    when = doc.get("datetime", "?")
    try:
        when = datetime.fromisoformat(when).strftime("%Y-%m-%d %H:%M UTC")
    except ValueError:
        pass
    date = (f"**Date:** {when}; size `{tb.get('size', '?')}`; pytest-benchmark "
            f"{doc.get('version', '?')}.  **Command:** `{tb.get('command', '?')}`")
    return [machine + "  " + versions + ".  " + date, ""]


def suite_doc(topic) -> list[str]:
    """The suite module's docstring (what is measured, against what)."""
    path = os.path.join(HERE, f"test_bench_{topic}.py")
    try:
        with open(path, encoding="utf-8") as f:
            doc = ast.get_docstring(ast.parse(f.read())) or ""
    except OSError:
        return []
    return reflow(doc) if doc else []


def reflow(doc: str) -> list[str]:
    """The docstring as markdown: each paragraph and bullet on one line, ``code`` as
    `code` (the first line, a title, left out)."""
    blocks, out = doc.strip().split("\n\n")[1:], []
    for block in blocks:
        items: list[str] = []
        for line in block.splitlines():
            line = line.strip()
            if line.startswith(("* ", "- ")) or not items:
                items.append(line)
            else:
                items[-1] += " " + line
        out += [item.replace("``", "`") for item in items] + [""]
    return out


INTRO = """\
# Benchmark results

Current figures of the suites in `benchmarks/` (pytest-benchmark), one section per suite.
Every table compares tvnumba with baselines timed in the same run on the same machine, so
read the ratios (`× X` = time / time of X), not the absolute times, across machines.  Times
are medians of warm calls: Numba's compilation is excluded (each entry is called once
before timing), except in the start-up group, which measures a fresh process on purpose.

Re-run and re-render (this file is generated; edit `benchmarks/render_results.py` or
`benchmarks/gpu_figures.md`, not this file):

    python -m pytest benchmarks -m "not gpu" --bench-size full --benchmark-json=.benchmarks/full.json
    python benchmarks/render_results.py .benchmarks/full.json > benchmarks/RESULTS.md

On a CUDA machine, add `python -m pytest benchmarks -m gpu --bench-size full
--benchmark-json=.benchmarks/gpu.json` and pass both files to the renderer.  `--bench-size
small` (the default) runs every suite on small inputs in a few minutes: a check, not these
figures.
"""


def render(by_topic, note: str, gpu_figures: str | None) -> str:
    out = [INTRO]
    for topic, title in list(TOPICS.items()) + [(t, t) for t in by_topic if t not in TOPICS]:
        if topic in by_topic:
            doc, benches = by_topic[topic]
            out += [f"## {title}", ""] + suite_doc(topic) + run_header(doc, note)
            out += tables(benches)
        elif topic == "gpu" and gpu_figures and os.path.exists(gpu_figures):
            with open(gpu_figures, encoding="utf-8") as f:
                out += [f.read().rstrip(), ""]
    return "\n".join(out).rstrip() + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("json", nargs="+", help="pytest-benchmark JSON files or folders")
    ap.add_argument("--note", default="",
                    help="a sentence added to every section's machine line")
    ap.add_argument("--gpu-figures", default=os.path.join(HERE, "gpu_figures.md"),
                    help="markdown used for the GPU section when the runs have none")
    args = ap.parse_args(argv)
    by_topic = load(args.json)
    if not by_topic:
        print("no benchmarks in the given files", file=sys.stderr)
        return 1
    sys.stdout.write(render(by_topic, args.note, args.gpu_figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
