/**
 * A dependency-free SVG line chart with log-log axes, enough for "time per cell against N".
 */
export interface Series {
  label: string;
  points: Array<{ x: number; y: number }>;
}

const COLORS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f'];
const escape = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export function renderChart(series: Series[], labels: { title: string; xLabel: string; yLabel: string }): string {
  const width = 820;
  const height = 480;
  const margin = { left: 70, right: 230, top: 40, bottom: 50 };
  const all = series.flatMap((s) => s.points).filter((p) => p.x > 0 && p.y > 0);
  if (all.length === 0)
    return (
      `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" ` +
      `height="${height}"><text x="20" y="40">no data</text></svg>\n`
    );
  const logRange = (values: number[]) =>
    [Math.floor(Math.log10(Math.min(...values))), Math.ceil(Math.log10(Math.max(...values)))] as const;
  const [x0, x1] = logRange(all.map((p) => p.x));
  const [y0, y1] = logRange(all.map((p) => p.y));
  const px = (x: number) =>
    margin.left + ((Math.log10(x) - x0) / Math.max(x1 - x0, 1)) * (width - margin.left - margin.right);
  const py = (y: number) =>
    height - margin.bottom - ((Math.log10(y) - y0) / Math.max(y1 - y0, 1)) * (height - margin.top - margin.bottom);
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" ` +
      `height="${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${width / 2 - 100}" y="22" font-size="15">${escape(labels.title)}</text>`,
  ];
  for (let e = x0; e <= x1; e++)
    parts.push(
      `<line x1="${px(10 ** e)}" y1="${margin.top}" x2="${px(10 ** e)}" y2="${height - margin.bottom}" ` +
        `stroke="#ddd"/><text x="${px(10 ** e) - 12}" y="${height - margin.bottom + 16}">1e${e}</text>`,
    );
  for (let e = y0; e <= y1; e++)
    parts.push(
      `<line x1="${margin.left}" y1="${py(10 ** e)}" x2="${width - margin.right}" y2="${py(10 ** e)}" ` +
        `stroke="#ddd"/><text x="${margin.left - 45}" y="${py(10 ** e) + 4}">1e${e}</text>`,
    );
  parts.push(
    `<text x="${width / 2 - 120}" y="${height - 12}">${escape(labels.xLabel)}</text>`,
    `<text x="8" y="${margin.top - 10}">${escape(labels.yLabel)}</text>`,
  );
  series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length];
    const dash = s.label.includes('floor') ? ' stroke-dasharray="5,4"' : '';
    const points = s.points.filter((p) => p.x > 0 && p.y > 0).sort((a, b) => a.x - b.x);
    if (points.length)
      parts.push(
        `<polyline fill="none" stroke="${color}" stroke-width="2"${dash} ` +
          `points="${points.map((p) => `${px(p.x).toFixed(1)},${py(p.y).toFixed(1)}`).join(' ')}"/>`,
      );
    for (const p of points)
      parts.push(`<circle cx="${px(p.x).toFixed(1)}" cy="${py(p.y).toFixed(1)}" r="3" fill="${color}"/>`);
    parts.push(
      `<line x1="${width - margin.right + 15}" y1="${margin.top + 18 * i}" x2="${width - margin.right + 40}" ` +
        `y2="${margin.top + 18 * i}" stroke="${color}" stroke-width="2"${dash}/><text ` +
        `x="${width - margin.right + 45}" y="${margin.top + 18 * i + 4}">${escape(s.label)}</text>`,
    );
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}
