/**
 * An SVG plot of predicted against human positions on the circumplex: the unit circle with its
 * valence/arousal axes, each term's human position (filled circle, labelled), its predicted position
 * (hollow square) and a line joining the two. Plain string building, no dependencies, so the file
 * opens in any browser.
 */

/** One term to draw. Coordinates are valence (x) and arousal (y) in [-1, 1] (values outside are clamped to the frame). */
export interface PlotPoint {
  readonly term: string;
  readonly human: { readonly valence: number; readonly arousal: number };
  readonly predicted: { readonly valence: number; readonly arousal: number };
}

/** Options for {@link circumplexSvg}. */
export interface PlotOptions {
  /** Title drawn at the top. Default: "Predicted vs human positions". */
  title: string;
  /** Side of the square image in px. Default 720. */
  sizePx: number;
  /** Label every human point with its term. Default true. */
  labels: boolean;
  /** Extra lines drawn under the title (e.g. the headline statistics). */
  subtitle: readonly string[];
}

export const DEFAULT_PLOT: PlotOptions = {
  title: 'Predicted vs human positions',
  sizePx: 720,
  labels: true,
  subtitle: [],
};

/** Escapes text for an SVG text node or attribute. */
export function escapeXml(s: string): string {
  return s.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c] ?? c);
}

/** Renders the plot as a standalone SVG document. */
export function circumplexSvg(points: readonly PlotPoint[], opts: Partial<PlotOptions> = {}): string {
  const o = { ...DEFAULT_PLOT, ...opts };
  if (!(o.sizePx >= 200 && o.sizePx <= 4000)) throw new RangeError(`circumplexSvg: sizePx must be in [200, 4000], got ${o.sizePx}`);
  const size = o.sizePx;
  const top = 40 + 16 * o.subtitle.length;
  const margin = 50;
  const r = (size - 2 * margin - top) / 2;
  const cx = size / 2;
  const cy = top + margin + r;
  const height = cy + r + margin;
  // Clamp to a little outside the unit circle so a wild prediction stays visible but in frame.
  const lim = (v: number): number => Math.max(-1.15, Math.min(1.15, v));
  const px = (v: number): number => cx + lim(v) * r;
  const py = (a: number): number => cy - lim(a) * r; // arousal up
  const f = (n: number): string => n.toFixed(1);

  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${size}" height="${f(height)}" viewBox="0 0 ${size} ${f(height)}" font-family="sans-serif">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${cx}" y="24" font-size="16" text-anchor="middle">${escapeXml(o.title)}</text>`,
  );
  o.subtitle.forEach((line, i) => {
    out.push(`<text x="${cx}" y="${40 + 16 * i}" font-size="11" text-anchor="middle" fill="#444">${escapeXml(line)}</text>`);
  });
  // Frame: unit circle, half circle, axes and their names.
  out.push(
    `<circle cx="${f(cx)}" cy="${f(cy)}" r="${f(r)}" fill="none" stroke="#999"/>`,
    `<circle cx="${f(cx)}" cy="${f(cy)}" r="${f(r / 2)}" fill="none" stroke="#ddd" stroke-dasharray="3 3"/>`,
    `<line x1="${f(cx - r)}" y1="${f(cy)}" x2="${f(cx + r)}" y2="${f(cy)}" stroke="#bbb"/>`,
    `<line x1="${f(cx)}" y1="${f(cy - r)}" x2="${f(cx)}" y2="${f(cy + r)}" stroke="#bbb"/>`,
    `<text x="${f(cx + r + 4)}" y="${f(cy + 4)}" font-size="11">pleasant</text>`,
    `<text x="${f(cx - r - 4)}" y="${f(cy + 4)}" font-size="11" text-anchor="end">unpleasant</text>`,
    `<text x="${f(cx)}" y="${f(cy - r - 6)}" font-size="11" text-anchor="middle">aroused</text>`,
    `<text x="${f(cx)}" y="${f(cy + r + 14)}" font-size="11" text-anchor="middle">calm</text>`,
  );
  // Legend.
  out.push(
    `<circle cx="${margin}" cy="${f(height - 18)}" r="4" fill="#1f77b4"/>`,
    `<text x="${margin + 8}" y="${f(height - 14)}" font-size="11">human</text>`,
    `<rect x="${margin + 56}" y="${f(height - 22)}" width="8" height="8" fill="none" stroke="#d62728"/>`,
    `<text x="${margin + 68}" y="${f(height - 14)}" font-size="11">predicted</text>`,
  );
  out.push('<g stroke="#d6272866" stroke-width="1">');
  for (const p of points) {
    out.push(`<line x1="${f(px(p.human.valence))}" y1="${f(py(p.human.arousal))}" x2="${f(px(p.predicted.valence))}" y2="${f(py(p.predicted.arousal))}"/>`);
  }
  out.push('</g>');
  for (const p of points) {
    const hx = px(p.human.valence);
    const hy = py(p.human.arousal);
    const qx = px(p.predicted.valence);
    const qy = py(p.predicted.arousal);
    out.push(
      `<g><title>${escapeXml(`${p.term}: human (${p.human.valence.toFixed(2)}, ${p.human.arousal.toFixed(2)}), predicted (${p.predicted.valence.toFixed(2)}, ${p.predicted.arousal.toFixed(2)})`)}</title>`,
      `<circle cx="${f(hx)}" cy="${f(hy)}" r="3.5" fill="#1f77b4"/>`,
      `<rect x="${f(qx - 3)}" y="${f(qy - 3)}" width="6" height="6" fill="none" stroke="#d62728"/>`,
      o.labels ? `<text x="${f(hx + 5)}" y="${f(hy - 4)}" font-size="8" fill="#1f3f6f">${escapeXml(p.term)}</text>` : '',
      '</g>',
    );
  }
  out.push('</svg>');
  return out.filter((s) => s !== '').join('\n') + '\n';
}
