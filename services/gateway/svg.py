"""Tiny hand-written SVG charts for the dashboard (server-rendered: no build step, no CDN, no JavaScript)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from html import escape

import msgspec


class Point(msgspec.Struct, frozen=True):
    at: datetime
    value: float
    kind: str = "a"  # series key: picks the colour class


class Bar(msgspec.Struct, frozen=True):
    label: str
    value: float | None
    err: float | None = None
    note: str = ""


def _fmt(v: float) -> str:
    return f"{v:.4f}".rstrip("0").rstrip(".") if v else "0"


def _empty(width: int, height: int, message: str) -> str:
    return (f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(message)}">'
            f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" class="muted">{escape(message)}</text></svg>')


def rolling_mean(values: Sequence[float], window: int) -> list[float]:
    out, acc = [], 0.0
    for i, v in enumerate(values):
        acc += v
        if i >= window:
            acc -= values[i - window]
        out.append(acc / min(i + 1, window))
    return out


def scatter_chart(points: Sequence[Point], *, width: int = 640, height: int = 220, title: str = "",
                  window: int = 10, empty: str = "no data yet") -> str:
    """Points over time (one colour class per ``kind``) and their rolling mean as a line."""
    if not points:
        return _empty(width, height, empty)
    pad_l, pad_r, pad_t, pad_b = 52, 10, 14, 26
    pts = sorted(points, key=lambda p: p.at)
    t0, t1 = pts[0].at.timestamp(), pts[-1].at.timestamp()
    vmax = max(max(p.value for p in pts), 1e-9) * 1.1
    span = max(t1 - t0, 1.0)

    def x(t: float) -> float:
        return pad_l + (t - t0) / span * (width - pad_l - pad_r)

    def y(v: float) -> float:
        return height - pad_b - (v / vmax) * (height - pad_t - pad_b)

    parts = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">']
    for frac in (0.0, 0.5, 1.0):
        gy = y(vmax * frac / 1.1)
        parts.append(f'<line class="grid" x1="{pad_l}" x2="{width - pad_r}" y1="{gy:.1f}" y2="{gy:.1f}"/>')
        parts.append(f'<text class="axis" x="{pad_l - 4}" y="{gy + 4:.1f}" text-anchor="end">'
                     f'{_fmt(vmax * frac / 1.1)}</text>')
    parts.append(f'<text class="axis" x="{pad_l}" y="{height - 6}">{escape(pts[0].at.strftime("%m-%d %H:%M"))}</text>')
    parts.append(f'<text class="axis" x="{width - pad_r}" y="{height - 6}" text-anchor="end">'
                 f'{escape(pts[-1].at.strftime("%m-%d %H:%M"))}</text>')
    for p in pts:
        parts.append(f'<circle class="pt {escape(p.kind)}" cx="{x(p.at.timestamp()):.1f}" cy="{y(p.value):.1f}" r="3">'
                     f'<title>{escape(p.at.isoformat())} {_fmt(p.value)}</title></circle>')
    means = rolling_mean([p.value for p in pts], window)
    line = " ".join(f"{x(p.at.timestamp()):.1f},{y(m):.1f}" for p, m in zip(pts, means, strict=True))
    parts.append(f'<polyline class="mean" fill="none" points="{line}"/>')
    parts.append("</svg>")
    return "".join(parts)


def bar_chart(bars: Sequence[Bar], *, width: int = 640, height: int = 200, title: str = "",
              vmax: float | None = None, empty: str = "no data yet") -> str:
    """Vertical bars with optional ± error whiskers; a bar with no value is drawn as a gap."""
    if not bars:
        return _empty(width, height, empty)
    pad_l, pad_r, pad_t, pad_b = 40, 6, 14, 34
    top = vmax if vmax is not None else max([(b.value or 0) + (b.err or 0) for b in bars] + [1e-9]) * 1.1
    slot = (width - pad_l - pad_r) / len(bars)
    bw = max(2.0, slot * 0.7)

    def y(v: float) -> float:
        return height - pad_b - max(0.0, min(v, top)) / top * (height - pad_t - pad_b)

    parts = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">']
    parts.append(f'<text class="axis" x="{pad_l - 4}" y="{y(top) + 4:.1f}" text-anchor="end">{_fmt(top)}</text>')
    parts.append(f'<line class="grid" x1="{pad_l}" x2="{width - pad_r}" y1="{y(0):.1f}" y2="{y(0):.1f}"/>')
    small = len(bars) > 12
    for i, b in enumerate(bars):
        cx = pad_l + slot * i + slot / 2
        label = escape(b.label)
        if b.value is not None:
            yv = y(b.value)
            tip = escape(f"{b.label}: {_fmt(b.value)}" + (f" ± {_fmt(b.err)}" if b.err else "") + (
                f" ({b.note})" if b.note else ""))
            parts.append(f'<rect class="bar" x="{cx - bw / 2:.1f}" y="{yv:.1f}" width="{bw:.1f}" '
                         f'height="{y(0) - yv:.1f}"><title>{tip}</title></rect>')
            if b.err:
                parts.append(f'<line class="err" x1="{cx:.1f}" x2="{cx:.1f}" y1="{y(b.value - b.err):.1f}" '
                             f'y2="{y(b.value + b.err):.1f}"/>')
        if not small or i % 3 == 0:
            parts.append(f'<text class="axis" x="{cx:.1f}" y="{height - pad_b + 14}" text-anchor="middle">{label}</text>')
        if b.note and not small:
            parts.append(f'<text class="axis muted" x="{cx:.1f}" y="{height - pad_b + 26}" text-anchor="middle">'
                         f'{escape(b.note)}</text>')
    parts.append("</svg>")
    return "".join(parts)
