// Parallel coordinates in SVG: one vertical axis per parameter plus the chosen metric, one
// line per experiment, coloured by the metric (best = strongest).
import { formatValue } from '../lib/format'

export interface PCRow {
  id: string
  label: string
  values: Record<string, unknown>
  metric: number | null
}

interface Axis {
  key: string
  categorical: boolean
  categories: string[]
  min: number
  max: number
}

function buildAxis(key: string, rows: PCRow[]): Axis {
  const vals = rows.map((r) => r.values[key])
  const numeric = vals.every((v) => typeof v === 'number' || v === null || v === undefined)
  if (numeric) {
    const nums = vals.filter((v): v is number => typeof v === 'number')
    const min = nums.length ? Math.min(...nums) : 0
    const max = nums.length ? Math.max(...nums) : 1
    return { key, categorical: false, categories: [], min, max }
  }
  const categories = Array.from(new Set(vals.map((v) => formatValue(v)))).sort()
  return { key, categorical: true, categories, min: 0, max: Math.max(1, categories.length - 1) }
}

function position(axis: Axis, value: unknown): number | null {
  // 0 = bottom, 1 = top
  if (axis.categorical) {
    const i = axis.categories.indexOf(formatValue(value))
    if (i < 0) return null
    return axis.categories.length === 1 ? 0.5 : i / (axis.categories.length - 1)
  }
  if (typeof value !== 'number') return null
  return axis.max === axis.min ? 0.5 : (value - axis.min) / (axis.max - axis.min)
}

export function ParallelCoords({
  rows,
  params,
  metric,
  lowerIsBetter,
  colors,
}: {
  rows: PCRow[]
  params: string[]
  metric: string
  lowerIsBetter: boolean
  colors: string[]
}) {
  const metricKey = `metric:${metric}`
  const withMetric = rows.map((r) => ({ ...r, values: { ...r.values, [metricKey]: r.metric } }))
  const axes = [...params, metricKey].map((k) => buildAxis(k, withMetric))
  const width = Math.max(480, axes.length * 140)
  const height = 300
  const top = 36
  const bottom = 40
  const left = 60
  const right = 60
  const x = (i: number) => left + (axes.length === 1 ? 0 : (i * (width - left - right)) / (axes.length - 1))
  const y = (p: number) => top + (1 - p) * (height - top - bottom)
  const metrics = rows.map((r) => r.metric).filter((m): m is number => m !== null)
  const best = metrics.length ? (lowerIsBetter ? Math.min(...metrics) : Math.max(...metrics)) : null
  return (
    <div className="table-scroll">
      <svg
        viewBox={`0 0 ${width} ${height}`}
        width={width}
        height={height}
        className="pc"
        role="img"
        aria-label={`parallel coordinates of ${params.join(', ')} against ${metric}`}
        data-testid="parallel-coords"
      >
        {axes.map((a, i) => (
          <g key={a.key}>
            <line x1={x(i)} x2={x(i)} y1={top} y2={height - bottom} className="pc-axis" />
            <text x={x(i)} y={top - 18} textAnchor="middle" className="pc-title">
              {a.key.startsWith('metric:') ? a.key.slice(7) : a.key}
            </text>
            {a.categorical
              ? a.categories.map((c) => (
                  <text key={c} x={x(i) + 6} y={y(position(a, c) ?? 0) + 4} className="pc-tick">
                    {c}
                  </text>
                ))
              : [
                  <text key="max" x={x(i) + 6} y={y(1) + 4} className="pc-tick">
                    {formatValue(a.max)}
                  </text>,
                  <text key="min" x={x(i) + 6} y={y(0) + 4} className="pc-tick">
                    {formatValue(a.min)}
                  </text>,
                ]}
          </g>
        ))}
        {withMetric.map((r, n) => {
          const pts = axes
            .map((a, i) => {
              const p = position(a, r.values[a.key])
              return p === null ? null : `${x(i)},${y(p)}`
            })
            .filter(Boolean)
          const isBest = best !== null && r.metric === best
          return (
            <polyline
              key={r.id}
              points={pts.join(' ')}
              fill="none"
              stroke={colors[n % colors.length]}
              strokeWidth={isBest ? 4 : 2}
              opacity={isBest ? 1 : 0.75}
              data-testid={`pc-line-${r.id}`}
            >
              <title>
                {r.label}: {metric} = {formatValue(r.metric)}
              </title>
            </polyline>
          )
        })}
      </svg>
    </div>
  )
}
