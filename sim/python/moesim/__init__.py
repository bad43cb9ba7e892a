"""moesim from Python: the simulator's results as dicts, numpy arrays and pandas DataFrames.

    import moesim
    r = moesim.simulate("scenarios/seed_example.pbtxt")      # or the scenario's text
    r["totalNs"]                                              # the Result, as --json names it
    frames = r.to_pandas()                                    # phases and send matrices (pandas)
    rows = moesim.plan(model="mixtral-8x7b", gpus=16, global_batch=64)   # a DataFrame with pandas
    moesim.sweep("s.pbtxt", {"plan.ep": [4, 8]})              # `moesim sweep`, a row per point
    t = moesim.read_trace("t.moetrace")                       # t["experts"]: tokens x top-k ids
    moesim.trace_stats("t.moetrace", ep=4)                    # `moesim trace stats --json`

Everything runs in this process through the `moesim` command line's own code (the compiled
moesim._moesim), so a dict has the fields `--json` prints, under the same names, and bad input
raises ValueError with the message the command prints after "moesim: error: " (file:line:column,
field, value, what is valid). One difference from --json: 64-bit integers, which protobuf's JSON
writes as strings ("totalNs": "212940"), are Python ints here.

moesim's data (the model catalog and scenarios/, for model names and the default scenario) is
found as the commands find it (proto/data_dir.h): $MOESIM_DATA_DIR when set, else share/moesim
four folders above this package, which is where both the build tree
(build/lib/python3.X/dist-packages/moesim) and an installed prefix
(PREFIX/lib/python3.X/dist-packages/moesim) keep it. Importing moesim sets MOESIM_DATA_DIR to that
folder when it is unset and the folder holds catalog/, so a `moesim` command started from Python
finds the same data.

numpy is needed by read_trace; pandas only by to_pandas() and for plan() to return a DataFrame.
"""

import json
import os
import re
from pathlib import Path

__all__ = ["Result", "simulate", "plan", "read_result", "read_trace", "trace_stats", "run"]


def _find_data_dir():
    if os.environ.get("MOESIM_DATA_DIR"):
        return
    # PREFIX/lib/python3.X/dist-packages/moesim/__init__.py: PREFIX is four folders up. Not
    # resolved: in the build tree this file is a link into the source tree.
    data = Path(os.path.abspath(__file__)).parents[4] / "share" / "moesim"
    if (data / "catalog").is_dir():
        os.environ["MOESIM_DATA_DIR"] = str(data)


_find_data_dir()

from . import _moesim  # noqa: E402  (after the data folder is known)

_INT64_FIELDS = frozenset(_moesim.json_int64_fields())
_INTEGER = re.compile(r"-?[0-9]+\Z")


def _ints(value, key=None):
    """value with every 64-bit integer field's strings made ints (recursively)."""
    if isinstance(value, dict):
        return {k: _ints(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_ints(v, key) for v in value]
    if key in _INT64_FIELDS and isinstance(value, str) and _INTEGER.match(value):
        return int(value)
    return value


def _decode(raw):
    return raw.decode("utf-8", errors="replace")


def _checked(outcome):
    """stdout of a command that succeeded; ValueError with its message otherwise."""
    status, out, err = outcome
    if status != 0:
        message = _decode(err).strip()
        if message.startswith("moesim: error: "):
            message = message[len("moesim: error: "):]
        # CLI11's own errors (exit status 2) end with a hint about --help, which Python has not.
        message = message.replace("\nRun with --help for more information.", "")
        raise ValueError(message)
    return _decode(out)


def run(*args):
    """stdout of `moesim ARGS...` run in this process; ValueError with its message on failure.

    >>> print(moesim.run("model", "list"))
    """
    return _checked(_moesim.run([str(a) for a in args]))


class Result(dict):
    """A Result (proto/result.proto) as `moesim simulate --json` prints it, 64-bit ints as ints."""

    def to_pandas(self):
        """{"phases": one row per phase, "send_matrices": one row per (phase, layer, source,
        destination) with its tokens and bytes}. Pivot a matrix back with
        frames["send_matrices"].query("phase == 'dispatch' and layer == 0")
            .pivot(index="source", columns="destination", values="tokens")."""
        if "phases" not in self:
            raise ValueError("a whole step's result (a scenario with a step block: StepResult, "
                             "proto/plan.proto) has no phases or send matrices to tabulate; its "
                             "fields are in the dict")
        import pandas as pd

        phase_columns = ["layer", "name", "timeNs", "bytes", "flops", "criticalRank", "bound",
                         "bottleneckLink"]
        phases = pd.DataFrame(
            [{c: p.get(c) for c in phase_columns} for p in self.get("phases", [])],
            columns=phase_columns)
        cells = []
        for m in self.get("sendMatrices", []):
            for source, (tokens, sent) in enumerate(zip(m["tokens"], m["bytes"])):
                for destination, (t, b) in enumerate(zip(tokens, sent)):
                    cells.append((m["phase"], m["layer"], source, destination, int(t), int(b)))
        matrices = pd.DataFrame(
            cells, columns=["phase", "layer", "source", "destination", "tokens", "bytes"])
        return {"phases": phases, "send_matrices": matrices}


def _result(json_text):
    return Result(_ints(json.loads(json_text)))


def _looks_like_text(scenario):
    return isinstance(scenario, str) and ("\n" in scenario or "{" in scenario)


def simulate(scenario=None, fidelity="analytical", hardware=None):
    """`moesim simulate SCENARIO --json --fidelity FIDELITY` as a Result.

    scenario: a path (str or os.PathLike), or the scenario's text (a str holding a newline or a
    "{"), named "<string>" in errors, its relative paths taken from the working directory; None:
    the default scenario. hardware: a HardwareProfile path (--hardware). A scenario with a step
    block gives its StepResult (proto/plan.proto), whose to_pandas() raises ValueError."""
    if _looks_like_text(scenario):
        if hardware is not None:
            raise ValueError("hardware: give it in the scenario text (hardware_profile) or "
                             "simulate a scenario file")
        return _result(_checked(_moesim.simulate_text(scenario, "<string>", fidelity)))
    args = ["simulate"]
    if scenario is not None:
        args.append(os.fspath(scenario))
    args += ["--json", "--fidelity", fidelity]
    if hardware is not None:
        args += ["--hardware", os.fspath(hardware)]
    return _result(_checked(_moesim.run(args)))


def _flags(options):
    """Keyword arguments as command-line flags: gpus=16 -> --gpus 16, expert_tp=True ->
    --expert-tp; False and None leave a flag out."""
    args = []
    for key, value in options.items():
        flag = "--" + key.replace("_", "-")
        if value is None or value is False:
            continue
        if value is True:
            args.append(flag)
        else:
            args += [flag, os.fspath(value) if isinstance(value, os.PathLike) else str(value)]
    return args


def _frame(rows, table):
    """`rows` as a DataFrame with the rest of `table` in .attrs["table"]; the list without pandas."""
    try:
        import pandas as pd
    except ImportError:
        return rows
    frame = pd.DataFrame(rows)
    frame.attrs["table"] = table
    return frame


def plan(**options):
    """`moesim plan --json` with each keyword a flag (model="mixtral-8x7b", gpus=16,
    global_batch=64, routing="zipf:1.2", overlap_alltoall=True, ...; `moesim plan --help` lists
    them): its rows, ranked, as a DataFrame with pandas (the rest of the table in .attrs["table"]),
    else a list of dicts."""
    table = _ints(json.loads(_checked(_moesim.run(["plan", *_flags(options), "--json"]))))
    rows = table.pop("rows", [])
    return _frame(rows, table)


def sweep(scenario, fields, fidelity=None):
    """`moesim sweep SCENARIO --set PATH=VALUES ... --json -`: `fields` maps each swept field path
    to its values, a list or the command's text ("0:1.5:0.25", "100:800:x2"); several form the
    cross product, the last varying fastest. With pandas a DataFrame, one row per point: a
    column per swept field (the values as given), totalNs, deltaPct, a column per component
    (ns), bottleneck, memoryBytes, fits, mfu, error (the rest of the table in .attrs["table"]);
    else the rows as dicts."""
    args = ["sweep", os.fspath(scenario), "--quiet", "--json", "-"]
    for path, values in fields.items():
        text = values if isinstance(values, str) else ",".join(str(v) for v in values)
        args += ["--set", f"{path}={text}"]
    if fidelity is not None:
        args += ["--fidelity", fidelity]
    table = _ints(json.loads(_checked(_moesim.run(args))))
    paths = [f["path"] for f in table.get("fields", [])]
    rows = []
    for r in table.pop("rows", []):
        row = dict(zip(paths, r.get("values", [])))
        for key in ("totalNs", "deltaPct", "bottleneck", "memoryBytes", "fits", "mfu", "error"):
            row[key] = r.get(key)
        for c in r.get("components", []):
            row[c["name"]] = c.get("timeNs", 0)
        rows.append(row)
    return _frame(rows, table)


def read_result(path):
    """A Result file (`moesim simulate --json` output in a .json file: a Result, or a whole step's
    StepResult; or a binary Result from `moebench run --out`), read as `moesim report` reads it."""
    return _result(_moesim.read_result(os.fspath(path)))


def read_trace(path):
    """A routing trace (`moesim trace gen|import`) as numpy arrays, tokens in file order:
    experts (tokens x top_k expert ids), step, layer, rank (per token), weights (tokens x top_k,
    or None when the trace has none), counts (layers x experts: how many tokens chose each expert,
    what `moesim trace stats --per-expert` prints), and header (a dict)."""
    import numpy  # noqa: F401  (the arrays are numpy's; fail here, by name, without it)

    trace = _moesim.read_trace(os.fspath(path))
    trace["header"] = _ints(json.loads(trace["header"]))
    return trace


def trace_stats(path, **options):
    """`moesim trace stats PATH --json` with each keyword a flag (ep=4, placement="round-robin",
    model="olmoe-1b-7b"): per-layer load statistics, as a dict."""
    return _ints(json.loads(_checked(_moesim.run(["trace", "stats", os.fspath(path),
                                                  *_flags(options), "--json"]))))
