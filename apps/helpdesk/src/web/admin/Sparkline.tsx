/** A small live line chart (SVG, no chart library): the last N samples, newest on the right. */
export function Sparkline({
  series,
  width = 480,
  height = 120,
}: {
  series: { label: string; values: number[]; className: string }[];
  width?: number;
  height?: number;
}) {
  const max = Math.max(1, ...series.flatMap((s) => s.values));
  const n = Math.max(2, ...series.map((s) => s.values.length));
  const x = (i: number, len: number) => ((i + (n - len)) / (n - 1)) * width;
  const y = (v: number) => height - (v / max) * (height - 8) - 4;
  return (
    <figure className="chart" data-testid="rate-chart">
      <svg viewBox={`0 0 ${width} ${height}`} width="100%" height={height} role="img" aria-label="Events per second">
        <line x1="0" y1={height - 4} x2={width} y2={height - 4} className="axis" />
        {series.map((s) => (
          <polyline
            key={s.label}
            className={s.className}
            fill="none"
            points={s.values.map((v, i) => `${x(i, s.values.length).toFixed(1)},${y(v).toFixed(1)}`).join(' ')}
          />
        ))}
        <text x="4" y="14" className="chart-max">
          {max.toFixed(0)}/s
        </text>
      </svg>
      <figcaption>
        {series.map((s) => (
          <span key={s.label} className={`legend ${s.className}`}>
            {s.label}: {(s.values[s.values.length - 1] ?? 0).toFixed(0)}/s
          </span>
        ))}
      </figcaption>
    </figure>
  );
}
