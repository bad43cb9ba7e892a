"""`import moesim` (sim/python/): the seed example by hand, and every function against the command
line it must agree with (MOESIM_TEST_MOESIM, the build's moesim). Run by ctest (moesim_python,
tests/python/run_pytest.py) with PYTHONPATH at the build tree's package."""
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

import moesim

MOESIM = os.environ["MOESIM_TEST_MOESIM"]
SOURCE = Path(os.environ["MOESIM_TEST_SOURCE_DIR"])
SEED = SOURCE / "scenarios" / "seed_example.pbtxt"

# The seed example's dispatch matrix (scenarios/seed_example.pbtxt, README "Reading the table"):
# GPU g holds experts 2g and 2g+1. GPU 0 routes t0->E2 (GPU 1), t1->E7 (GPU 3), t2->E0 (kept),
# t3->E3 (GPU 1): row [1, 2, 0, 1]. GPU 1: E0, E5, E3, E6 -> GPUs 0, 2, 1, 3: [1, 1, 1, 1]. GPU 2:
# E1, E4, E7, E2 -> 0, 2, 3, 1: [1, 1, 1, 1]. GPU 3: E6, E3, E2, E1 -> 3, 1, 1, 0: [1, 2, 0, 1].
SEED_DISPATCH = [[1, 2, 0, 1], [1, 1, 1, 1], [1, 1, 1, 1], [1, 2, 0, 1]]
# One token on the wire: hidden 4096 x 2 bytes (BF16) = 8192 B.
TOKEN_BYTES = 4096 * 2


def cli(*args):
    """(exit status, stdout, stderr) of the build's moesim."""
    p = subprocess.run([MOESIM, *map(str, args)], capture_output=True, text=True, check=False)
    return p.returncode, p.stdout, p.stderr


def cli_error(*args):
    """The message the command prints after "moesim: error: " (it must fail with status 1)."""
    status, _, err = cli(*args)
    assert status == 1, err
    assert err.startswith("moesim: error: ") and err.endswith("\n")
    return err[len("moesim: error: "):-1]


def matrix(result, phase, layer=0):
    (m,) = [m for m in result["sendMatrices"] if m["phase"] == phase and m["layer"] == layer]
    return m


def test_seed_send_matrices_by_hand():
    r = moesim.simulate(SEED)
    dispatch = matrix(r, "dispatch")
    assert dispatch["tokens"] == SEED_DISPATCH
    assert dispatch["bytes"][0] == [TOKEN_BYTES * n for n in [1, 2, 0, 1]]
    # Combine returns each expert's output to the token's GPU: dispatch transposed.
    assert matrix(r, "combine")["tokens"] == [list(col) for col in zip(*SEED_DISPATCH)]
    assert r["gpus"] == 4 and r["model"] == "seed-toy"


def test_simulate_is_the_commands_json_with_64_bit_ints():
    status, out, err = cli("simulate", SEED, "--json")
    assert status == 0, err
    printed = json.loads(out)
    r = moesim.simulate(SEED)
    # Same fields under the same names; protobuf's JSON writes int64 as strings, Python gets ints.
    assert set(r) == set(printed)
    assert r["totalNs"] == int(printed["totalNs"]) and isinstance(r["totalNs"], int)
    assert [p["timeNs"] for p in r["phases"]] == [int(p["timeNs"]) for p in printed["phases"]]
    assert r["sendMatrices"] == printed["sendMatrices"]
    assert r["scenario"] == printed["scenario"]


def test_scenario_text_gives_the_files_result():
    assert moesim.simulate(SEED.read_text()) == moesim.simulate(SEED)
    assert moesim.simulate(str(SEED), fidelity="flow") == moesim.simulate(SEED, "flow")


def test_to_pandas_phases_and_send_matrices():
    r = moesim.simulate(SEED)
    frames = r.to_pandas()
    phases = frames["phases"]
    assert list(phases["name"]) == ["router", "dispatch", "expert", "combine"]
    # The total is the phases' sum taken in picoseconds; each phase's nanoseconds are rounded on their
    # own (at most 0.5 ns off), so the rounded phases add up to the total within 4 x 0.5 ns (here
    # 30 + 1111 + 210694 + 1111 = 212946 against 212944).
    assert phases["timeNs"].tolist() == [p["timeNs"] for p in r["phases"]]
    assert abs(phases["timeNs"].sum() - r["totalNs"]) <= 4 * 0.5
    cells = frames["send_matrices"]
    # 2 phases x 4 x 4 cells; the dispatch matrix pivots back to the hand-worked one.
    assert len(cells) == 2 * 16
    pivot = cells.query("phase == 'dispatch' and layer == 0").pivot(
        index="source", columns="destination", values="tokens")
    assert pivot.values.tolist() == SEED_DISPATCH
    assert cells["bytes"].sum() == 2 * 16 * TOKEN_BYTES  # 16 tokens each way, diagonal included


def test_a_whole_step_has_its_64_bit_ints_and_no_phase_table():
    step = moesim.simulate(SOURCE / "scenarios" / "mixtral-8x7b-h100-64.pbtxt")
    status, out, err = cli("simulate", SOURCE / "scenarios" / "mixtral-8x7b-h100-64.pbtxt", "--json")
    assert status == 0, err
    printed = json.loads(out)
    assert step["stepNs"] == int(printed["stepNs"]) and isinstance(step["stepNs"], int)
    with pytest.raises(ValueError, match="StepResult"):
        step.to_pandas()


# The seed example with plan { ep: 3 }: 3 divides neither the 8 experts nor the 4 GPUs. The field
# stands at line 31, column 3 of the file.
BAD_SEED = SEED.read_text().replace("plan {\n  ep: 4\n}", "plan {\n  ep: 3\n}")


def test_bad_scenario_raises_the_commands_message(tmp_path):
    assert BAD_SEED != SEED.read_text()
    path = tmp_path / "bad.pbtxt"
    path.write_text(BAD_SEED)
    expected = cli_error("simulate", path, "--json")
    assert expected.startswith(f"{path}:31:3: plan.ep = 3: ")
    with pytest.raises(ValueError) as from_file:
        moesim.simulate(path)
    assert str(from_file.value) == expected
    # The same text, not from a file: the same message, located in "<string>".
    with pytest.raises(ValueError) as from_text:
        moesim.simulate(BAD_SEED)
    assert str(from_text.value) == expected.replace(str(path), "<string>")


def test_bad_fidelity_and_missing_file_raise_value_error(tmp_path):
    with pytest.raises(ValueError, match="--fidelity"):
        moesim.simulate(SEED, fidelity="exact")
    with pytest.raises(ValueError, match="--fidelity"):
        moesim.simulate(SEED.read_text(), fidelity="exact")
    missing = tmp_path / "none.pbtxt"
    with pytest.raises(ValueError) as e:
        moesim.simulate(missing)
    assert str(e.value) == cli_error("simulate", missing)


def test_read_result_reads_what_simulate_json_wrote(tmp_path):
    status, out, _ = cli("simulate", SEED, "--json")
    assert status == 0
    path = tmp_path / "seed.json"
    path.write_text(out)
    assert moesim.read_result(path) == moesim.simulate(SEED)
    # A whole step's StepResult reads back as simulate gives it.
    step_scenario = SOURCE / "scenarios" / "mixtral-8x7b-h100-64.pbtxt"
    status, out, _ = cli("simulate", step_scenario, "--json")
    assert status == 0
    step_path = tmp_path / "step.json"
    step_path.write_text(out)
    assert moesim.read_result(step_path) == moesim.simulate(step_scenario)
    # What `moesim report` says of a file that is not a Result.
    bad = tmp_path / "bad.json"
    bad.write_text('{"totalNs": "soon"}')
    with pytest.raises(ValueError) as e:
        moesim.read_result(bad)
    assert str(e.value) == cli_error("report", bad, "-o", tmp_path / "x.html")


# Three (step, layer, rank) slices of 4 experts, top-2, as Megatron-Core's router JSONL.
ROUTER_LINES = [
    {"step": 0, "layer": 0, "rank": 0, "num_tokens": 2, "topk": 2,
     "top_indices": [[0, 1], [2, 3]], "top_scores": [[0.5, 0.5], [0.75, 0.25]]},
    {"step": 0, "layer": 0, "rank": 1, "num_tokens": 2, "topk": 2,
     "top_indices": [[0, 2], [0, 3]], "top_scores": [[0.5, 0.5], [0.5, 0.5]]},
    {"step": 1, "layer": 1, "rank": 0, "num_tokens": 1, "topk": 2,
     "top_indices": [[3, 1]], "top_scores": [[0.25, 0.75]]},
]
# Layer 0 chose expert 0 three times (r0 t0, r1 t0, r1 t1), 1 once, 2 twice, 3 twice; layer 1
# chose 3 and 1.
COUNTS = [[3, 1, 2, 2], [0, 1, 0, 1]]


@pytest.fixture
def trace(tmp_path):
    jsonl = tmp_path / "router.jsonl"
    jsonl.write_text("".join(json.dumps(line) + "\n" for line in ROUTER_LINES))
    path = tmp_path / "t.moetrace"
    status, _, err = cli("trace", "import", "megatron-jsonl", jsonl, "-o", path, "--experts", 4)
    assert status == 0, err
    return path


def test_read_trace_by_hand(trace):
    t = moesim.read_trace(trace)
    assert t["header"]["numExperts"] == 4 and t["header"]["topK"] == 2
    assert t["experts"].tolist() == [[0, 1], [2, 3], [0, 2], [0, 3], [3, 1]]
    assert t["layer"].tolist() == [0, 0, 0, 0, 1]
    assert t["rank"].tolist() == [0, 0, 1, 1, 0]
    assert t["step"].tolist() == [0, 0, 0, 0, 1]
    assert t["weights"][1].tolist() == [0.75, 0.25]  # exact in float32
    assert t["counts"].tolist() == COUNTS
    assert t["counts"].dtype == np.uint64 and t["experts"].dtype == np.uint32
    # The counts are the tokens' choices, layer by layer.
    for layer, row in enumerate(COUNTS):
        chosen = t["experts"][t["layer"] == layer].ravel()
        assert np.bincount(chosen, minlength=4).tolist() == row


def test_trace_stats_is_the_commands(trace):
    stats = moesim.trace_stats(trace, ep=2)
    status, out, err = cli("trace", "stats", trace, "--ep", 2, "--json")
    assert status == 0, err
    printed = json.loads(out)
    assert [layer["expertLoads"] for layer in stats["layers"]] == COUNTS
    # EP 2, contiguous: rank 0 holds experts 0-1 (3 + 1 = 4 copies), rank 1 experts 2-3 (2 + 2).
    assert stats["layers"][0]["epRankLoads"] == [4, 4]
    assert [[int(v) for v in layer["expertLoads"]] for layer in printed["layers"]] == COUNTS
    assert stats["records"] == int(printed["records"]) == 3
    with pytest.raises(ValueError) as e:
        moesim.trace_stats(trace, ep=3)
    assert str(e.value) == cli_error("trace", "stats", trace, "--ep", 3)


def test_read_trace_of_a_bad_file(tmp_path):
    bad = tmp_path / "bad.moetrace"
    bad.write_bytes(b"\x05abc")
    with pytest.raises(ValueError) as e:
        moesim.read_trace(bad)
    assert str(e.value) == cli_error("trace", "stats", bad)


PLAN = dict(model=SOURCE / "tests" / "fixtures" / "models" / "tiny-moe.pbtxt", cluster="dgx-h100",
            gpus=8, global_batch=16, seq_len=512, threads=2)


def test_plan_rows_are_the_commands():
    frame = moesim.plan(**PLAN)
    status, out, err = cli("plan", "--model", PLAN["model"], "--cluster", "dgx-h100", "--gpus", 8,
                           "--global-batch", 16, "--seq-len", 512, "--threads", 2, "--json")
    assert status == 0, err
    printed = json.loads(out)
    assert len(frame) == len(printed["rows"]) > 0
    assert list(frame["plan"]) == [row["plan"] for row in printed["rows"]]
    assert list(frame["stepPs"]) == [int(row["stepPs"]) for row in printed["rows"]]
    assert frame.attrs["table"]["gpus"] == 8 and "rows" not in frame.attrs["table"]
    # Ranked: the plans that fit first, fastest first.
    fits = frame[frame["fits"]]
    assert list(fits["stepPs"]) == sorted(fits["stepPs"])


def test_plan_bad_flag_raises_the_commands_message():
    with pytest.raises(ValueError) as e:
        moesim.plan(**{**PLAN, "gpus": 12})
    assert str(e.value) == cli_error("plan", "--model", PLAN["model"], "--cluster", "dgx-h100",
                                     "--gpus", 12, "--global-batch", 16, "--seq-len", 512, "--json")


def test_plan_without_pandas_is_a_list_of_dicts(monkeypatch):
    # A None entry in sys.modules makes `import pandas` raise ImportError, as where pandas is not
    # installed: plan() then returns the rows as dicts, the same rows in the same order.
    monkeypatch.setitem(__import__("sys").modules, "pandas", None)
    rows = moesim.plan(**PLAN)
    assert isinstance(rows, list) and len(rows) > 0 and isinstance(rows[0], dict)
    status, out, err = cli("plan", "--model", PLAN["model"], "--cluster", "dgx-h100", "--gpus", 8,
                           "--global-batch", 16, "--seq-len", 512, "--threads", 2, "--json")
    assert status == 0, err
    assert [r["plan"] for r in rows] == [r["plan"] for r in json.loads(out)["rows"]]
    assert all(isinstance(r["stepPs"], int) for r in rows)
    # to_pandas() says what is missing instead of failing deep inside.
    with pytest.raises(ImportError):
        moesim.simulate(str(SEED)).to_pandas()


def test_sweep_rows_are_the_commands():
    # The seed at EP 2 and 4: two rows, a column per swept field and per phase, as the command's
    # JSON has them; the totals are `moesim simulate`'s (EP 4: 212,944 ns, README "Python").
    frame = moesim.sweep(SEED, {"plan.ep": [2, 4]})
    status, out, err = cli("sweep", SEED, "--set", "plan.ep=2,4", "--json", "-", "--quiet")
    assert status == 0, err
    printed = json.loads(out)
    assert list(frame["plan.ep"]) == ["2", "4"]
    assert list(frame["totalNs"]) == [int(r["totalNs"]) for r in printed["rows"]]
    assert frame["totalNs"][1] == moesim.simulate(str(SEED))["totalNs"] == 212944
    assert list(frame["dispatch"]) == [int(r["components"][1]["timeNs"]) for r in printed["rows"]]
    assert frame.attrs["table"]["kind"] == "layers"
    with pytest.raises(ValueError) as e:
        moesim.sweep(SEED, {"plan.epp": "8"})
    assert str(e.value) == cli_error("sweep", SEED, "--set", "plan.epp=8", "--quiet")
