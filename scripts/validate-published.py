#!/usr/bin/env python3
"""Published real-hardware measurements against moesim's predictions, row by row.

Reads the published measurements (../shared/data/published/measurements.csv: id, system, op, size,
metric, value, source) and the committed mapping results/validation/rows.json, which gives each row
the moesim command that predicts it, what to read from the command's --json output, and the
assumptions it makes where the source is silent; or says why moesim cannot predict the row yet.
Runs every command and writes

  results/validation/published.csv   one line per measurement: published, predicted, error
  results/validation/published.md    the same as a Markdown table, median and worst |error| below

error = (predicted - published) / published. A row whose command moesim refuses (an algorithm it
does not have yet, e.g. --algo nvls) gets "n/a: " and moesim's error message, so the table fills in
as moesim learns; a row the mapping marks n/a gets its reason. No figure is ever made up.

  scripts/validate-published.py --moesim build/sim/moesim                # write the table
  scripts/validate-published.py --moesim build/sim/moesim --out DIR --check
        # the regression guard (ctest): exit 1 if a row's |error| exceeds its committed bound_pct,
        # or a row that had a prediction (it has a bound) has none now
  scripts/validate-published.py --moesim build/sim/moesim --update-bounds
        # after a deliberate model change: bound_pct = |error| rounded up to 5 %, at least 5 %

Deterministic: the same moesim, mapping and measurements give the same files, except the header
line of published.md that names the date and the machine. Commands run from the repository root,
so paths in rows.json are relative to it. Standard library only (python3 3.9+).
"""

import argparse
import concurrent.futures
import csv
import datetime
import io
import json
import math
import os
import platform
import shlex
import statistics
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_MEASUREMENTS = "../shared/data/published/measurements.csv"
DEFAULT_ROWS = "results/validation/rows.json"
DEFAULT_OUT = "results/validation"
COMMAND_TIMEOUT_S = 300

CSV_COLUMNS = [
    "id", "source_url", "source_locator", "system", "op", "size", "metric", "published",
    "moesim_command", "predicted", "error_pct", "assumptions",
]


# --- Reading a prediction from moesim's --json output --------------------------------------------

def _field(obj, snake):
    """A field of protobuf's JSON printing, which writes lowerCamelCase names and int64 as strings."""
    parts = snake.split("_")
    camel = parts[0] + "".join(p.title() for p in parts[1:])
    for key in (camel, snake):
        if key in obj:
            return float(obj[key])
    raise KeyError(snake)


def _collective(field):
    def read(doc):
        rows = doc.get("rows", [])
        if len(rows) != 1:
            raise ValueError(f"expected one size in the sweep, got {len(rows)}")
        return _field(rows[0], field)
    return read


def _phase_us(name):
    def read(doc):
        times = [_field(p, "time_ns") for p in doc.get("phases", []) if p.get("name") == name]
        if len(times) != 1:
            raise ValueError(f"expected one '{name}' phase, got {len(times)}")
        return times[0] / 1e3
    return read


def _tokens_per_s_per_gpu(doc):
    return _field(doc, "tokens_per_second") / _field(doc, "gpus")


def _step_us(doc):
    return _field(doc, "step_ns") / 1e3


# What rows.json's "read" names, and the unit it gives: the published row's metric.
READERS = {
    "busbw_gbps": (_collective("busbw_gbps"), "busbw_GBps"),
    "time_us": (_collective("time_us"), "time_us"),
    "dispatch_us": (_phase_us("dispatch"), "time_us"),
    "combine_us": (_phase_us("combine"), "time_us"),
    "tokens_per_s_per_gpu": (_tokens_per_s_per_gpu, "tokens_per_s"),
    "step_us": (_step_us, "time_us"),
}


# --- Running ---------------------------------------------------------------------------------------

def run_moesim(moesim, args):
    """(parsed JSON, None) or (None, why not): moesim's own error line when it refuses."""
    try:
        proc = subprocess.run([moesim] + args, cwd=REPO, capture_output=True, text=True,
                              timeout=COMMAND_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return None, f"moesim did not finish in {COMMAND_TIMEOUT_S} s"
    if proc.returncode != 0:
        lines = [l.strip() for l in proc.stderr.splitlines() if l.strip()]
        message = lines[-1] if lines else f"exit status {proc.returncode}"
        return None, message.removeprefix("moesim: error: ")
    try:
        return json.loads(proc.stdout), None
    except json.JSONDecodeError as e:
        return None, f"moesim printed no JSON ({e})"


def command_text(args):
    return "moesim " + " ".join(shlex.quote(a) for a in args)


def predict_all(moesim, rows, jobs):
    """id -> (predicted or None, reason or None). Identical commands run once."""
    commands = sorted({tuple(r["args"]) for r in rows.values() if r.get("args") and not r.get("na")})
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        outputs = dict(zip(commands, pool.map(lambda c: run_moesim(moesim, list(c)), commands)))
    predictions = {}
    for row_id, row in rows.items():
        if row.get("na"):  # not predictable, or too costly to run; args, if any, say how it would be
            predictions[row_id] = (None, row["na"])
            continue
        doc, error = outputs[tuple(row["args"])]
        if doc is None:
            predictions[row_id] = (None, error)
            continue
        read, _ = READERS[row["read"]]
        try:
            predictions[row_id] = (read(doc), None)
        except (KeyError, ValueError) as e:
            predictions[row_id] = (None, f"cannot read {row['read']} from moesim's JSON: {e}")
    return predictions


# --- Formatting --------------------------------------------------------------------------------------

def sig(x, digits=4):
    """x to `digits` significant digits, without an exponent (3.14159 -> 3.142, 19712345 -> 19710000)."""
    if x == 0 or not math.isfinite(x):
        return str(x)
    decimals = digits - 1 - math.floor(math.log10(abs(x)))
    rounded = round(x, decimals)
    return f"{rounded:.{max(decimals, 0)}f}"


def error_pct(predicted, published):
    return 100.0 * (predicted - published) / published


def bound_for(err):
    """|error| rounded up to the next multiple of 5 %, at least 5 %."""
    return max(5, 5 * math.ceil(abs(err) / 5 - 1e-9))


def source_repo(url):
    # https://github.com/OWNER/NAME/blob/... -> OWNER/NAME
    parts = url.split("/")
    return "/".join(parts[3:5]) if len(parts) > 4 and parts[2] == "github.com" else url


def build_table(measurements, rows, predictions):
    table = []
    for m in measurements:
        row = rows[m["id"]]
        predicted, reason = predictions[m["id"]]
        published = float(m["value"])
        table.append({
            "id": m["id"],
            "source_url": m["source_url"],
            "source_locator": m["source_locator"],
            "system": m["system"],
            "op": m["op"],
            "size": m["size_bytes"],
            "metric": m["metric"],
            "published": m["value"],
            "moesim_command": command_text(row["args"]) if row.get("args") else "",
            "predicted": sig(predicted) if predicted is not None else f"n/a: {reason}",
            "error_pct": f"{error_pct(predicted, published):+.1f}" if predicted is not None else "",
            "assumptions": row.get("assumptions", ""),
            "_error": error_pct(predicted, published) if predicted is not None else None,
        })
    return table


def summary(table):
    predicted = [r for r in table if r["_error"] is not None]
    if not predicted:
        return "No row has a prediction."
    errors = [abs(r["_error"]) for r in predicted]
    worst = max(predicted, key=lambda r: (abs(r["_error"]), r["id"]))
    sources = sorted({source_repo(r["source_url"]) for r in predicted})
    return (f"{len(predicted)} of {len(table)} rows have a prediction, from {len(sources)} source "
            f"repositories ({', '.join(sources)}). Over them: median |error| "
            f"{statistics.median(errors):.1f} %, worst |error| {abs(worst['_error']):.1f} % "
            f"({worst['id']}). Rows without one: {len(table) - len(predicted)}, each with its reason.")


def write_csv(path, table):
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(table)
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(buf.getvalue())


def md_cell(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def write_md(path, table, header):
    lines = [
        "# moesim against published measurements",
        "",
        header,
        "",
        "Each row: a figure measured on real hardware and published (`source`, at the line or cell",
        "named), the moesim command that predicts it, and error = (predicted - published) / published.",
        "Setup details the source leaves out are assumptions, stated per row and never tuned; the",
        "mapping is `results/validation/rows.json`, the measurements and their caveats",
        "`../shared/data/published/` (README.md, measurements.csv). `n/a` rows say why moesim",
        "cannot predict them yet. busbw in GB/s (1e9 B/s), time in µs, tokens/s per GPU.",
        "",
        "| id | op | size | metric | published | predicted | error % | moesim command | assumptions | source |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in table:
        command = f"`{r['moesim_command']}`" if r["moesim_command"] else ""
        source = f"[{source_repo(r['source_url'])}]({r['source_url']}), {r['source_locator']}"
        lines.append("| " + " | ".join(md_cell(c) for c in (
            r["id"], r["op"], r["size"], r["metric"], r["published"], r["predicted"],
            r["error_pct"], command, r["assumptions"], source)) + " |")
    lines += ["", summary(table), ""]
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))


# --- Checks -------------------------------------------------------------------------------------------

def check_mapping(measurements, rows):
    """Problems with rows.json itself: every measurement mapped, every mapping well formed."""
    problems = []
    ids = [m["id"] for m in measurements]
    for missing in sorted(set(ids) - set(rows)):
        problems.append(f"{missing}: in the measurements but not in rows.json")
    for extra in sorted(set(rows) - set(ids)):
        problems.append(f"{extra}: in rows.json but not in the measurements")
    metric = {m["id"]: m["metric"] for m in measurements}
    for row_id, row in sorted(rows.items()):
        if row.get("args"):
            if row.get("read") not in READERS:
                problems.append(f"{row_id}: read must be one of {', '.join(sorted(READERS))}")
            elif row_id in metric and READERS[row["read"]][1] != metric[row_id]:
                problems.append(f"{row_id}: read {row['read']} gives {READERS[row['read']][1]}, "
                                f"the row is {metric[row_id]}")
            if "--json" not in row["args"]:
                problems.append(f"{row_id}: args must ask for --json")
        elif not row.get("na"):
            problems.append(f"{row_id}: neither args nor an n/a reason")
        if row.get("na") and "bound_pct" in row:
            problems.append(f"{row_id}: an n/a row cannot have a bound")
        if not row.get("assumptions") and row.get("args"):
            problems.append(f"{row_id}: no assumptions line (say 'none' if there are none)")
    return problems


def check_bounds(table, rows):
    """The regression guard: failures, and notes (new predictions without a bound)."""
    failures, notes = [], []
    for r in table:
        bound = rows[r["id"]].get("bound_pct")
        if bound is None:
            if r["_error"] is not None:
                notes.append(f"{r['id']}: has a prediction now ({r['_error']:+.1f} %) but no bound; "
                             "run --update-bounds to guard it")
            continue
        if r["_error"] is None:
            failures.append(f"{r['id']}: had a prediction (bound {bound} %), has none now: "
                            f"{r['predicted']}")
        elif abs(r["_error"]) > bound:
            failures.append(f"{r['id']}: |error| {abs(r['_error']):.1f} % exceeds its bound {bound} % "
                            f"(predicted {r['predicted']}, published {r['published']}, "
                            f"{r['moesim_command']})")
    return failures, notes


def json_text(value, indent=0):
    """JSON as rows.json keeps it: objects a key a line, a short list (a command's args) on one."""
    inline = json.dumps(value, ensure_ascii=False)
    if isinstance(value, list) and len(inline) + indent <= 160:
        return inline
    pad, inner = " " * indent, " " * (indent + 2)
    if isinstance(value, dict):
        items = [f"{inner}{json.dumps(k)}: {json_text(v, indent + 2)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(value, list):
        return "[\n" + ",\n".join(inner + json_text(v, indent + 2) for v in value) + "\n" + pad + "]"
    return inline


def update_bounds(rows_path, doc, table):
    for r in table:
        row = doc["rows"][r["id"]]
        if r["_error"] is None:
            row.pop("bound_pct", None)
        else:
            row["bound_pct"] = bound_for(r["_error"])
    with open(rows_path, "w", encoding="utf-8") as f:
        f.write(json_text(doc) + "\n")


# --- Main ---------------------------------------------------------------------------------------------

def read_measurements(path):
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def machine():
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{platform.node()} ({cpu}, {os.cpu_count()} cores, {platform.system()})"


def moesim_version(moesim):
    try:
        out = subprocess.run([moesim, "--version"], capture_output=True, text=True, timeout=30)
        return out.stdout.strip() or out.stderr.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--moesim", default="build/sim/moesim", help="the moesim binary")
    p.add_argument("--measurements", default=DEFAULT_MEASUREMENTS,
                   help="measurements.csv (relative paths start at the repository root)")
    p.add_argument("--rows", default=DEFAULT_ROWS, help="the mapping, rows.json")
    p.add_argument("--out", default=DEFAULT_OUT, help="folder for published.csv and published.md")
    p.add_argument("--jobs", type=int, default=2, help="moesim commands run at once")
    p.add_argument("--check", action="store_true",
                   help="exit 1 if a row's |error| exceeds its bound_pct or it lost its prediction")
    p.add_argument("--update-bounds", action="store_true",
                   help="rewrite rows.json's bound_pct from the errors of this run")
    a = p.parse_args(argv)

    def at_repo(path):
        return path if os.path.isabs(path) else os.path.join(REPO, path)

    moesim = os.path.abspath(a.moesim)
    measurements = read_measurements(at_repo(a.measurements))
    rows_path = at_repo(a.rows)
    with open(rows_path, encoding="utf-8") as f:
        doc = json.load(f)
    rows = doc["rows"]
    problems = check_mapping(measurements, rows)
    if problems:
        print("rows.json does not match the measurements:", *problems, sep="\n  ", file=sys.stderr)
        return 1

    predictions = predict_all(moesim, rows, max(1, a.jobs))
    table = build_table(measurements, rows, predictions)

    out = at_repo(a.out)
    os.makedirs(out, exist_ok=True)
    shown = " ".join(shlex.quote(x) for x in ["scripts/validate-published.py"] + argv)
    header = (f"Produced by `{shown}` with {moesim_version(moesim)} on {machine()}, "
              f"{datetime.date.today().isoformat()}.")
    write_csv(os.path.join(out, "published.csv"), table)
    write_md(os.path.join(out, "published.md"), table, header)
    print(summary(table))
    print(f"wrote {os.path.join(out, 'published.csv')} and published.md")

    if a.update_bounds:
        update_bounds(rows_path, doc, table)
        print(f"updated bound_pct in {rows_path}")
    if a.check:
        failures, notes = check_bounds(table, rows)
        for n in notes:
            print("note:", n)
        if failures:
            print("FAILED: predictions moved past their committed bounds (rows.json bound_pct):",
                  *failures, sep="\n  ", file=sys.stderr)
            return 1
        print(f"check passed: {sum(1 for r in rows.values() if 'bound_pct' in r)} bounded rows "
              "within their bounds")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
