#!/usr/bin/env python3
"""Renders moesim's HTML reports in headless Chromium and checks each chart is drawn.

    html_chromium_check.py MOESIM SOURCE_DIR [SCREENSHOT.png]

Three pages: the seed example's MoE layer, the Mixtral 64-GPU step (its pipeline, ops, memory), and a
`moesim sweep --html` page (a heatmap and lines).
1. `moesim simulate SCENARIO --html` (or `moesim sweep ... --html`) writes the page;
2. `chromium --headless --screenshot` renders it at 1280 x 2000 px to a PNG, and `--dump-dom`
   prints the DOM Chromium built from it;
3. the PNG must be 1280 x 2000, not blank (many distinct colours), and hold each chart's own
   fill colour (a chart that was not drawn leaves none of it): the heatmap's largest cell, the
   expert and GPU bars, the timeline's phases and the NVLink bars;
4. the DOM must hold the charts' elements, counted by hand in tests/html_report_test.cc.
Exits 77 (ctest's SKIP_RETURN_CODE) when chromium is not installed. Python's standard library
only: the PNG is decoded with zlib.
"""
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib

SKIP = 77
WIDTH, HEIGHT = 1280, 2000

# Chart -> (its fill colour, as sim/report/html_report.cc and html_svg.cc draw it).
SEED_COLOURS = {
    "heatmap (largest cell)": (0x08, 0x30, 0x6B),
    "expert loads": (0x42, 0x92, 0xC6),
    "tokens per GPU": (0x74, 0xC4, 0x76),
    "timeline: dispatch": (0x31, 0x82, 0xBD),
    "timeline: expert": (0x31, 0xA3, 0x54),
    "timeline: combine": (0xE6, 0x55, 0x0D),
    "links: nvlink": (0x1B, 0x9E, 0x77),
}

# Substring of the DOM -> how many times it must occur (tests/html_report_test.cc works them out).
SEED_DOM = {
    '<svg class="chart': 5,
    '<rect class="cell"': 16,  # 4 x 4 GPUs
    '<figure id="experts-L0">': 1,
    '<figure id="gpus-L0">': 1,
    '<rect class="bar critical"': 8,  # each phase's slowest GPU + 4 critical-path steps
}

# The step page (sim/report/html_step.cc): 4 stages x 16 micro-batches.
STEP_COLOURS = {
    "pipeline: forward": (0x42, 0x92, 0xC6),
    "pipeline: backward": (0xFD, 0x8D, 0x3C),
    "ops: compute": (0x31, 0xA3, 0x54),
    "ops: communication": (0xE6, 0x55, 0x0D),
}
STEP_DOM = {
    '<svg class="chart': 3,                   # pipeline, ops, memory
    '<rect class="bar critical"': 2 * 16,     # the slowest stage's forwards and backwards
    '<figure id="pipeline">': 1,
    '<table id="step-table">': 1,
}

# The sweep page (sim/report/html_sweep.cc): the heatmap's largest cell, and the line chart's first
# two series colours (html_svg.cc SeriesColor: #4e79a7, #f28e2b), in lines, dots and legend keys.
SWEEP_COLOURS = {
    "sweep heatmap (largest cell)": (0x08, 0x30, 0x6B),
    "sweep lines: first series": (0x4E, 0x79, 0xA7),
    "sweep lines: second series": (0xF2, 0x8E, 0x2B),
}
SWEEP_DOM = {
    '<rect class="cell"': 6,  # 3 token counts x 2 NVLink speeds
    '<polyline class="line"': 2,  # a line per NVLink speed
    '<figure id="sweep-heatmap">': 1,
    '<figure id="sweep-lines">': 1,
}

# (name, the moesim command that writes the page, minus --html PAGE, colours, DOM counts).
PAGES = [
    ("seed", ["simulate", "scenarios/seed_example.pbtxt"], SEED_COLOURS, SEED_DOM),
    ("step", ["simulate", "scenarios/mixtral-8x7b-h100-64.pbtxt"], STEP_COLOURS, STEP_DOM),
    ("sweep", ["sweep", "scenarios/mixtral_layer_ep4_small.pbtxt",
               "--set", "workload.tokens_per_gpu=128,256,512",
               "--set", "cluster.node.nvlink.bandwidth_gbps=100,450", "--quiet"],
     SWEEP_COLOURS, SWEEP_DOM),
]


def decode_png(data):
    """(width, height, rows of RGB(A) bytes) of an 8-bit RGB or RGBA, non-interlaced PNG."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    pos, idat, width = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            if depth != 8 or colour not in (2, 6) or interlace != 0:
                raise ValueError(f"PNG depth {depth} colour type {colour} interlace {interlace}")
            channels = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * channels
    rows, prev = [], bytearray(stride)
    for y in range(height):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b = prev[i]
            c = prev[i - channels] if i >= channels else 0
            if f == 1:
                line[i] = (line[i] + a) & 0xFF
            elif f == 2:
                line[i] = (line[i] + b) & 0xFF
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        rows.append(bytes(line))
        prev = line
    return width, height, channels, rows


def check_page(moesim, source, chromium, tmp, name, command, chart_colours, dom_counts, png):
    """Renders one page; returns its failures and a summary line."""
    page = os.path.join(tmp, name + ".html")
    args = [a if not a.startswith("scenarios/") else os.path.join(source, a) for a in command]
    subprocess.run([moesim] + args + ["--html", page], check=True, stdout=subprocess.DEVNULL)
    flags = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             f"--window-size={WIDTH},{HEIGHT}", "--user-data-dir=" + os.path.join(tmp, "p")]
    subprocess.run(flags + ["--screenshot=" + png, "file://" + page], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)
    dom = subprocess.run(flags + ["--dump-dom", "file://" + page], check=True,
                         capture_output=True, text=True, timeout=120).stdout
    with open(png, "rb") as f:
        width, height, channels, rows = decode_png(f.read())
    failures = []
    if (width, height) != (WIDTH, HEIGHT):
        failures.append(f"screenshot is {width} x {height}, expected {WIDTH} x {HEIGHT}")
    colours = {}
    for row in rows:
        for x in range(0, len(row), channels):
            rgb = bytes(row[x:x + 3])
            colours[rgb] = colours.get(rgb, 0) + 1
    # A blank page has one colour; the report has text, greys and a dozen fills.
    if len(colours) < 20:
        failures.append(f"screenshot has {len(colours)} distinct colours: blank?")
    for chart, rgb in chart_colours.items():
        n = colours.get(bytes(rgb), 0)
        if n < 50:  # a drawn chart fills at least a 50-pixel area with it
            failures.append(f"{chart}: {n} pixels of #{bytes(rgb).hex()} in the screenshot")
    for what, expected in dom_counts.items():
        n = dom.count(what)
        if n != expected:
            failures.append(f"DOM: {n} x {what!r}, expected {expected}")
    return [f"{name}: {f}" for f in failures], f"{name}: {width} x {height} px, {len(colours)} colours"


def main():
    if len(sys.argv) < 3:
        print(__doc__)
        return 2
    moesim, source = sys.argv[1], sys.argv[2]
    keep = sys.argv[3] if len(sys.argv) > 3 else None
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        print("SKIP: chromium is not installed (scripts/install-deps.sh installs it)")
        return SKIP
    failures, seen = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for name, command, chart_colours, dom_counts in PAGES:
            # The seed's screenshot is the one kept (README "Pictures").
            png = keep if keep and name == "seed" else os.path.join(tmp, name + ".png")
            f, line = check_page(moesim, source, chromium, tmp, name, command, chart_colours,
                                 dom_counts, png)
            failures += f
            seen.append(line)
    for f in failures:
        print("FAIL:", f)
    if not failures:
        print("ok:", "; ".join(seen) + ": every chart drawn, DOM counts as expected")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
