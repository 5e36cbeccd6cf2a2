// minerva bench ops: the matmul results as an SVG chart, written by hand (no chart library).
// Per backend and thread count: one panel of GFLOP/s against size per batch, and one of batch-1
// GB/s (the matrix-vector case) against size with the measured read bandwidth drawn across it.
// Every weight type is one <polyline class="series" data-series="…">; the bandwidth is a
// <line class="read-bandwidth">.
import type { OpsReport } from './ops-report.js';
import type { OpResult } from './ops-runner.js';

const PANEL = { width: 760, height: 300, left: 64, right: 130, top: 36, bottom: 44 };
/** Distinct colours for up to 16 weight types (then they repeat, with a dash). */
const COLOURS = [
  '#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f',
  '#bcbd22', '#17becf', '#393b79', '#637939', '#8c6d31', '#843c39', '#7b4173', '#3182bd',
];

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const num = (x: number) => (Math.round(x * 10) / 10).toString();

interface Series { name: string; points: [number, number][] }

/** A "nice" upper bound and tick step for values up to `max`. */
function niceScale(max: number): { top: number; step: number } {
  if (!(max > 0)) return { top: 1, step: 0.25 };
  const raw = max / 5, mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw)!;
  return { top: Math.ceil(max / step) * step, step };
}

function panel(y0: number, title: string, yLabel: string, series: Series[], sizes: number[], bandwidth?: number): string {
  const { width, height, left, right, top, bottom } = PANEL;
  const plotW = width - left - right, plotH = height - top - bottom;
  const lo = Math.log2(Math.min(...sizes)), hi = Math.log2(Math.max(...sizes));
  const x = (size: number) => left + (hi === lo ? plotW / 2 : (Math.log2(size) - lo) / (hi - lo) * plotW);
  const maxY = Math.max(...series.flatMap((s) => s.points.map(([, v]) => v)), bandwidth ?? 0);
  const { top: yTop, step } = niceScale(maxY);
  const y = (v: number) => top + plotH - (v / yTop) * plotH;
  const out: string[] = [`<g class="panel" transform="translate(0,${y0})">`];
  out.push(`<text x="${left}" y="20" font-size="14" font-weight="bold">${esc(title)}</text>`);
  out.push(`<rect x="${left}" y="${top}" width="${plotW}" height="${plotH}" fill="none" stroke="#999"/>`);
  for (let v = 0; v <= yTop + step / 2; v += step) {
    out.push(`<line x1="${left}" y1="${num(y(v))}" x2="${left + plotW}" y2="${num(y(v))}" stroke="#eee"/>`);
    out.push(`<text x="${left - 6}" y="${num(y(v) + 4)}" font-size="11" text-anchor="end">${esc(String(Number(v.toPrecision(6))))}</text>`);
  }
  for (const s of sizes) {
    out.push(`<text x="${num(x(s))}" y="${top + plotH + 16}" font-size="11" text-anchor="middle">${s}</text>`);
  }
  out.push(`<text x="${left + plotW / 2}" y="${height - 8}" font-size="12" text-anchor="middle">n = k (log scale)</text>`);
  out.push(`<text x="14" y="${top + plotH / 2}" font-size="12" text-anchor="middle" transform="rotate(-90 14 ${top + plotH / 2})">${esc(yLabel)}</text>`);
  series.forEach((s, i) => {
    const colour = COLOURS[i % COLOURS.length]!, dash = i >= COLOURS.length ? ' stroke-dasharray="5 3"' : '';
    const pts = s.points.map(([sz, v]) => `${num(x(sz))},${num(y(v))}`).join(' ');
    out.push(`<polyline class="series" data-series="${esc(s.name)}" points="${pts}" fill="none" stroke="${colour}" stroke-width="2"${dash}/>`);
    for (const [sz, v] of s.points) out.push(`<circle cx="${num(x(sz))}" cy="${num(y(v))}" r="2.5" fill="${colour}"/>`);
    const ly = top + 10 + i * 15;
    out.push(`<line x1="${left + plotW + 10}" y1="${ly}" x2="${left + plotW + 28}" y2="${ly}" stroke="${colour}" stroke-width="2"${dash}/>`);
    out.push(`<text x="${left + plotW + 32}" y="${ly + 4}" font-size="11">${esc(s.name)}</text>`);
  });
  if (bandwidth !== undefined) {
    out.push(`<line class="read-bandwidth" x1="${left}" y1="${num(y(bandwidth))}" x2="${left + plotW}" y2="${num(y(bandwidth))}" stroke="#000" stroke-width="1.5" stroke-dasharray="6 4"/>`);
    out.push(`<text x="${left + 4}" y="${num(y(bandwidth) - 4)}" font-size="11">read bandwidth ${esc(bandwidth.toFixed(1))} GB/s</text>`);
  }
  out.push('</g>');
  return out.join('\n');
}

/** The chart of `r`'s matmul results, or undefined when it has none. */
export function formatSvg(r: OpsReport): string | undefined {
  const mm = r.results.filter((x) => x.op === 'matmul');
  if (mm.length === 0) return undefined;
  const panels: string[] = [];
  let y0 = 0;
  const configs = [...new Map(mm.map((x) => [`${x.backend}|${x.threads}`, x])).values()];
  const cpu = r.machine.cpu;
  for (const c of configs) {
    const mine = mm.filter((x) => x.backend === c.backend && x.threads === c.threads);
    const label = `${c.backend}${c.threads === null ? '' : `, ${c.threads} thread${c.threads === 1 ? '' : 's'}`}`;
    const sizes = [...new Set(mine.map((x) => x.n!))].sort((a, b) => a - b);
    const dtypes = [...new Set(mine.map((x) => x.dtype!))];
    const seriesOf = (cases: OpResult[], value: (x: OpResult) => number | undefined): Series[] => dtypes
      .map((d) => ({
        name: d,
        points: cases.filter((x) => x.dtype === d && value(x) !== undefined).sort((a, b) => a.n! - b.n!).map((x): [number, number] => [x.n!, value(x)!]),
      }))
      .filter((s) => s.points.length > 0);
    for (const batch of [...new Set(mine.map((x) => x.batch!))].sort((a, b) => a - b)) {
      const series = seriesOf(mine.filter((x) => x.batch === batch), (x) => x.gflops);
      panels.push(panel(y0, `matmul GFLOP/s, ${batch} token${batch === 1 ? '' : 's'} — ${label} — ${cpu}`, 'GFLOP/s', series, sizes));
      y0 += PANEL.height;
    }
    const gb = seriesOf(mine.filter((x) => x.batch === 1), (x) => x.gbps);
    if (gb.length > 0) {
      const bw = c.backend === 'webgpu' ? undefined : r.bandwidth.find((b) => b.threads === (c.threads ?? 1))?.gbps;
      panels.push(panel(y0, `matrix-vector GB/s (weight bytes read) — ${label} — ${cpu}`, 'GB/s', gb, sizes, bw));
      y0 += PANEL.height;
    }
  }
  return `<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="${PANEL.width}" height="${y0}" viewBox="0 0 ${PANEL.width} ${y0}" font-family="sans-serif">\n`
    + `<rect width="100%" height="100%" fill="#fff"/>\n${panels.join('\n')}\n</svg>\n`;
}
