#!/usr/bin/env python3
"""plot.py - draws p99 send-to-receive latency against offered load, one line per server, as SVG.

Reads the CSV rows the load generator appends (bench/build/results.csv, or the file given) and
keeps the chat-scenario rows of a sweep: one series per value of the `server` column (rows with
no such column count as "parley"). x is the offered load in messages per second (log scale), y the p99 in milliseconds (log scale);
hovering a point shows the deliveries/s it achieved. Only the Python standard library: no plotting
package needed.

Usage: bench/plot.py [--csv FILE] [--out FILE.svg] [--run-id ID] [--title TEXT]
  --run-id keeps only rows whose `run` column equals ID (run.sh writes one per sweep), so several
  sweeps in one CSV don't mix; without it the newest run in the file is drawn.
"""
import argparse
import csv
import math
import sys
from xml.sax.saxutils import escape

COLORS = {"parley": "#1b7f3b", "socketio": "#c2410c", "xmpp": "#1d4ed8", "ejabberd": "#1d4ed8",
          "prosody": "#7c3aed"}
FALLBACK = ["#0f766e", "#b91c1c", "#a16207", "#4338ca"]


def load(path, run_id):
    with open(path, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get("scenario", "chat") == "chat"]
    if "run" in (rows[0].keys() if rows else {}):
        if run_id is None:
            runs = [r["run"] for r in rows if r.get("run")]
            run_id = runs[-1] if runs else None
        if run_id is not None:
            rows = [r for r in rows if r.get("run") == run_id]
    series = {}
    for r in rows:
        try:
            offered = r.get("offered", "")
            x = float(offered.rstrip("/s"))
            y = float(r["p99_ms"])
            achieved = float(r["deliveries_per_s"])
        except (KeyError, ValueError):
            continue  # window-mode rows ("win64") have no offered rate
        if x <= 0 or y <= 0:
            continue
        name = r.get("server") or "parley"
        series.setdefault(name, []).append((x, y, achieved))
    for pts in series.values():
        pts.sort()
    return series, run_id


def nice_ticks(lo, hi):
    """Powers of ten and their 2x, 5x between lo and hi (log axis)."""
    ticks = []
    e = math.floor(math.log10(lo))
    while 10 ** e <= hi * 1.0001:
        for m in (1, 2, 5):
            v = m * 10 ** e
            if lo * 0.9999 <= v <= hi * 1.0001:
                ticks.append(v)
        e += 1
    return ticks


def fmt(v):
    if v >= 1e6:
        return f"{v / 1e6:g}M"
    if v >= 1e3:
        return f"{v / 1e3:g}k"
    return f"{v:g}"


def draw(series, title, limit_ms):
    W, H, L, R, T, B = 900, 560, 80, 170, 50, 60
    xs = [p[0] for s in series.values() for p in s]
    ys = [p[1] for s in series.values() for p in s] + ([limit_ms] if limit_ms else [])
    x0, x1 = 10 ** math.floor(math.log10(min(xs))), 10 ** math.ceil(math.log10(max(xs)))
    y0, y1 = 10 ** math.floor(math.log10(min(ys))), 10 ** math.ceil(math.log10(max(ys)))

    def px(x):
        return L + (math.log10(x) - math.log10(x0)) / (math.log10(x1) - math.log10(x0)) * (W - L - R)

    def py(y):
        return H - B - (math.log10(y) - math.log10(y0)) / (math.log10(y1) - math.log10(y0)) * (H - T - B)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
           f'font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<text x="{W / 2}" y="28" text-anchor="middle" font-size="16">{escape(title)}</text>']
    for t in nice_ticks(x0, x1):
        out.append(f'<line x1="{px(t):.1f}" y1="{T}" x2="{px(t):.1f}" y2="{H - B}" stroke="#e5e7eb"/>')
        out.append(f'<text x="{px(t):.1f}" y="{H - B + 18}" text-anchor="middle">{fmt(t)}</text>')
    for t in nice_ticks(y0, y1):
        out.append(f'<line x1="{L}" y1="{py(t):.1f}" x2="{W - R}" y2="{py(t):.1f}" stroke="#e5e7eb"/>')
        out.append(f'<text x="{L - 8}" y="{py(t) + 4:.1f}" text-anchor="end">{fmt(t)}</text>')
    out.append(f'<rect x="{L}" y="{T}" width="{W - L - R}" height="{H - T - B}" fill="none" stroke="#6b7280"/>')
    out.append(f'<text x="{(L + W - R) / 2}" y="{H - 18}" text-anchor="middle">'
               'offered messages per second (log); each reaches the chat\'s 10 members</text>')
    out.append(f'<text transform="translate(22,{(T + H - B) / 2}) rotate(-90)" text-anchor="middle">'
               'p99 send-to-receive latency, ms (log)</text>')
    if limit_ms:
        out.append(f'<line x1="{L}" y1="{py(limit_ms):.1f}" x2="{W - R}" y2="{py(limit_ms):.1f}" '
                   'stroke="#9ca3af" stroke-dasharray="6 4"/>')
        out.append(f'<text x="{W - R - 4}" y="{py(limit_ms) - 5:.1f}" text-anchor="end" fill="#6b7280">'
                   f'p99 limit {limit_ms:g} ms</text>')
    for i, (name, pts) in enumerate(sorted(series.items())):
        color = COLORS.get(name, FALLBACK[i % len(FALLBACK)])
        path = " ".join(f"{'M' if j == 0 else 'L'}{px(x):.1f},{py(y):.1f}" for j, (x, y, _) in enumerate(pts))
        out.append(f'<path d="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        for x, y, achieved in pts:
            out.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3.5" fill="{color}">'
                       f'<title>{escape(name)}: offered {x:g} msg/s, {achieved:.0f} deliveries/s, '
                       f'p99 {y:g} ms</title></circle>')
        ly = T + 20 + i * 22
        out.append(f'<line x1="{W - R + 16}" y1="{ly}" x2="{W - R + 40}" y2="{ly}" stroke="{color}" stroke-width="3"/>')
        out.append(f'<text x="{W - R + 46}" y="{ly + 4}">{escape(name)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--csv", default="bench/build/results.csv")
    ap.add_argument("--out", default="bench/build/p99-vs-load.svg")
    ap.add_argument("--run-id")
    ap.add_argument("--p99-limit", type=float, default=None)
    ap.add_argument("--title", default="Chat scenario: p99 latency against offered load (same machine, back-to-back runs)")
    a = ap.parse_args()
    series, run_id = load(a.csv, a.run_id)
    if not series:
        sys.exit(f"plot.py: no chat rows with deliveries and p99 in {a.csv}")
    with open(a.out, "w") as f:
        f.write(draw(series, a.title, a.p99_limit))
    n = sum(len(s) for s in series.values())
    print(f"plot.py: {n} points in {len(series)} series (run {run_id or 'all'}) -> {a.out}")


if __name__ == "__main__":
    main()
