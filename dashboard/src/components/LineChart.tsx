// A thin React wrapper around uPlot: created once per series layout, then `setData` on
// every update (cheap, so live charts can redraw per point).
import { useEffect, useMemo, useRef } from 'react'
import uPlot from 'uplot'
import 'uplot/dist/uPlot.min.css'
import type { Aligned } from '../lib/series'
import { useThemeName } from './common'

export interface ChartSeries {
  label: string
  color: string
  dash?: number[]
  width?: number
  points?: boolean
  /** Markers only, no line between them (values that are not a curve, e.g. one per trial). */
  markersOnly?: boolean
}

export const PALETTE = [
  '#2563eb',
  '#f97316',
  '#16a34a',
  '#dc2626',
  '#9333ea',
  '#0891b2',
  '#ca8a04',
  '#db2777',
]

const X_INCRS = [1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1e3, 2e3, 2.5e3, 5e3, 1e4, 2e4, 5e4, 1e5, 2e5, 5e5, 1e6, 1e7, 1e8]

/** Axis labels with enough digits to tell ticks apart (0.00298 vs 0.003), no float noise. */
export function formatTick(v: number | null): string {
  if (v == null || !Number.isFinite(v)) return ''
  if (v === 0) return '0'
  const abs = Math.abs(v)
  if (abs >= 1e5 || abs < 1e-4) return v.toExponential(1)
  return String(Number(v.toPrecision(4)))
}

function canDraw(): boolean {
  if (typeof document === 'undefined') return false
  try {
    return document.createElement('canvas').getContext('2d') !== null
  } catch {
    return false
  }
}

export function LineChart({
  data,
  series,
  xLabel = 'epoch',
  yLabel,
  height = 260,
  testId,
  time = false,
  logY = false,
  xRange,
}: {
  data: Aligned
  series: ChartSeries[]
  xLabel?: string
  yLabel?: string
  height?: number
  testId?: string
  time?: boolean
  logY?: boolean
  /** A fixed x range (e.g. every trial of a study, before they have run); absent: fitted to the data. */
  xRange?: [number, number]
}) {
  const holder = useRef<HTMLDivElement>(null)
  const plot = useRef<uPlot | null>(null)
  const theme = useThemeName()
  const layoutKey = useMemo(
    () => JSON.stringify([series.map((s) => [s.label, s.color, s.dash, s.markersOnly]), xLabel, yLabel, time, logY, theme, height, xRange]),
    [series, xLabel, yLabel, time, logY, theme, height, xRange],
  )
  const dataRef = useRef(data)
  dataRef.current = data

  useEffect(() => {
    const el = holder.current
    if (!el || !canDraw()) return
    const styles = getComputedStyle(document.documentElement)
    const fg = styles.getPropertyValue('--muted').trim() || '#666'
    const grid = styles.getPropertyValue('--grid').trim() || 'rgba(128,128,128,0.15)'
    const axis = { stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } }
    const opts: uPlot.Options = {
      width: Math.max(200, el.clientWidth || 600),
      height,
      scales: { x: xRange ? { time, range: xRange } : { time }, y: logY ? { distr: 3 } : {} },
      legend: { live: true },
      cursor: { drag: { x: true, y: false } },
      axes: [
        // integer steps/epochs: never ticks at 1.2, 1.4, ...
        time ? { ...axis, label: xLabel } : { ...axis, label: xLabel, incrs: X_INCRS },
        {
          ...axis,
          label: yLabel,
          values: (_u: uPlot, splits: number[]) => splits.map(formatTick),
          // wide enough for the longest tick label ("0.002998")
          size: (_u: uPlot, values: string[] | null) =>
            Math.max(44, 14 + 7 * Math.max(0, ...(values ?? []).map((v) => String(v ?? '').length))),
        },
      ],
      series: [
        { label: xLabel },
        ...series.map((s) => ({
          label: s.label,
          stroke: s.color,
          width: s.width ?? 2,
          dash: s.dash,
          spanGaps: true,
          ...(s.markersOnly ? { paths: () => null, points: { show: true, size: 8 } } : { points: { show: s.points ?? false } }),
        })),
      ],
    }
    const u = new uPlot(opts, dataRef.current as uPlot.AlignedData, el)
    plot.current = u
    const ro =
      typeof ResizeObserver !== 'undefined'
        ? new ResizeObserver(() => u.setSize({ width: Math.max(200, el.clientWidth), height }))
        : null
    ro?.observe(el)
    return () => {
      ro?.disconnect()
      u.destroy()
      plot.current = null
    }
    // the layout key captures everything the options depend on
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [layoutKey])

  useEffect(() => {
    plot.current?.setData(data as uPlot.AlignedData)
  }, [data])

  const points = data[0].length
  return (
    <div className="chart" data-testid={testId} data-points={points} data-series={series.length}>
      <div ref={holder} className="chart-canvas" />
      {points === 0 && <div className="chart-empty muted">no points yet</div>}
    </div>
  )
}
