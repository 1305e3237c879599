/**
 * The chart: downtime against memory image size, one line per method, log-log axes,
 * hand-written SVG (no dependencies). Pure: points in, SVG text out.
 */

export interface SeriesPoint {
  x: number; // bytes
  y: number; // ms
  label?: string;
}

export interface Series {
  name: string;
  points: SeriesPoint[];
}

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2'];

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** Powers of ten covering [min, max] (at least two). */
export function decades(min: number, max: number): number[] {
  const lo = Math.floor(Math.log10(Math.max(min, 1e-9)));
  let hi = Math.ceil(Math.log10(Math.max(max, 1e-9)));
  if (hi <= lo) hi = lo + 1;
  const out: number[] = [];
  for (let e = lo; e <= hi; e++) out.push(10 ** e);
  return out;
}

function fmtBytesShort(b: number): string {
  if (b >= 1e9) return `${b / 1e9} GB`;
  if (b >= 1e6) return `${b / 1e6} MB`;
  if (b >= 1e3) return `${b / 1e3} kB`;
  return `${b} B`;
}

function fmtMsShort(ms: number): string {
  return ms >= 1000 ? `${ms / 1000} s` : `${ms} ms`;
}

export function downtimeChart(series: Series[], opts: { title?: string; width?: number; height?: number } = {}): string {
  const W = opts.width ?? 760;
  const H = opts.height ?? 460;
  const m = { l: 70, r: 230, t: 40, b: 55 };
  const pw = W - m.l - m.r;
  const ph = H - m.t - m.b;
  const pts = series.flatMap((s) => s.points).filter((p) => p.x > 0 && p.y > 0);
  const xs = decades(Math.min(...pts.map((p) => p.x), 1e6), Math.max(...pts.map((p) => p.x), 1e7));
  const ys = decades(Math.min(...pts.map((p) => p.y), 10), Math.max(...pts.map((p) => p.y), 100));
  const lx = (v: number) => Math.log10(v);
  const X = (v: number) => m.l + ((lx(v) - lx(xs[0])) / (lx(xs[xs.length - 1]) - lx(xs[0]))) * pw;
  const Y = (v: number) => m.t + ph - ((lx(v) - lx(ys[0])) / (lx(ys[ys.length - 1]) - lx(ys[0]))) * ph;
  const r = (n: number) => n.toFixed(1);
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  out.push(`<text x="${m.l}" y="22" font-size="15" font-weight="bold">${esc(opts.title ?? 'Client-observed downtime vs memory image size')}</text>`);
  for (const v of xs) {
    out.push(`<line x1="${r(X(v))}" y1="${m.t}" x2="${r(X(v))}" y2="${m.t + ph}" stroke="#ddd"/>`);
    out.push(`<text x="${r(X(v))}" y="${m.t + ph + 18}" text-anchor="middle">${fmtBytesShort(v)}</text>`);
  }
  for (const v of ys) {
    out.push(`<line x1="${m.l}" y1="${r(Y(v))}" x2="${m.l + pw}" y2="${r(Y(v))}" stroke="#ddd"/>`);
    out.push(`<text x="${m.l - 8}" y="${r(Y(v) + 4)}" text-anchor="end">${fmtMsShort(v)}</text>`);
  }
  out.push(`<rect x="${m.l}" y="${m.t}" width="${pw}" height="${ph}" fill="none" stroke="#333"/>`);
  out.push(`<text x="${m.l + pw / 2}" y="${H - 12}" text-anchor="middle">memory image (CRIU checkpoint size, log scale)</text>`);
  out.push(`<text transform="translate(18 ${m.t + ph / 2}) rotate(-90)" text-anchor="middle">downtime (log scale)</text>`);
  series.forEach((s, i) => {
    const c = COLORS[i % COLORS.length];
    const ps = s.points.filter((p) => p.x > 0 && p.y > 0).sort((a, b) => a.x - b.x);
    if (ps.length > 1) out.push(`<polyline fill="none" stroke="${c}" stroke-width="2" points="${ps.map((p) => `${r(X(p.x))},${r(Y(p.y))}`).join(' ')}"/>`);
    for (const p of ps) {
      out.push(
        `<circle cx="${r(X(p.x))}" cy="${r(Y(p.y))}" r="4" fill="${c}"><title>${esc(`${s.name}${p.label ? ` ${p.label}` : ''}: ${Math.round(p.y)} ms at ${fmtBytesShort(Math.round(p.x))}`)}</title></circle>`,
      );
    }
    const ly = m.t + 10 + i * 20;
    out.push(`<line x1="${m.l + pw + 15}" y1="${ly}" x2="${m.l + pw + 35}" y2="${ly}" stroke="${c}" stroke-width="2"/>`);
    out.push(`<circle cx="${m.l + pw + 25}" cy="${ly}" r="4" fill="${c}"/>`);
    out.push(`<text x="${m.l + pw + 42}" y="${ly + 4}">${esc(s.name)}</text>`);
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}
