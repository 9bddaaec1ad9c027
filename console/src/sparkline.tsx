// A small bar chart of counts (an error group's last 24 hours): SVG without any style attribute
// (the Content-Security-Policy allows none), coloured by the `spark` class, described in words for
// screen readers.

/** Bars of `counts` (oldest first), the tallest full height; `label` says what they count. */
export function Sparkline(props: { counts: number[]; label: string; large?: boolean }) {
  const { counts } = props;
  const max = Math.max(1, ...counts);
  const total = counts.reduce((sum, n) => sum + n, 0);
  const width = counts.length * 4;
  const height = props.large === true ? 40 : 20;
  const description = `${total.toLocaleString()} ${props.label}, at most ${Math.max(0, ...counts).toLocaleString()} in one hour`;
  return (
    <svg
      class={props.large === true ? 'spark large' : 'spark'}
      viewBox={`0 0 ${width} ${height}`}
      preserveAspectRatio="none"
      role="img"
      aria-label={description}
    >
      <title>{description}</title>
      <line class="base" x1="0" y1={height - 0.5} x2={width} y2={height - 0.5} />
      {counts.map((n, i) => {
        const h = n === 0 ? 0 : Math.max(1.5, (n / max) * height);
        return <rect key={i} x={i * 4} y={height - h} width="3" height={h} />;
      })}
    </svg>
  );
}
