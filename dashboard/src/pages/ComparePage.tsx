import { useEffect, useMemo, useState } from 'react'
import { Link, useSearchParams } from 'react-router'
import { api } from '../api/client'
import { ErrorBanner, Section, Spinner, StatusBadge } from '../components/common'
import { LineChart, PALETTE } from '../components/LineChart'
import { ParallelCoords } from '../components/ParallelCoords'
import { bestIndex, configDiff, curveNames, finalMetrics, type CompareItem } from '../lib/compare'
import { formatNumber, formatValue } from '../lib/format'
import { useAsync } from '../lib/hooks'
import { alignSeries, lowerIsBetter, metricGoal, xLabelFor } from '../lib/series'

export const MAX_COMPARE = 8

export function ComparePage() {
  const [params] = useSearchParams()
  const ids = useMemo(
    () => Array.from(new Set((params.get('ids') ?? '').split(',').map((s) => s.trim()).filter(Boolean))).slice(0, MAX_COMPARE),
    [params],
  )
  const state = useAsync<CompareItem[]>(
    (signal) =>
      Promise.all(
        ids.map(async (id) => {
          const [experiment, metrics] = await Promise.all([api.experiment(id, signal), api.metrics(id, 1000, signal)])
          return { experiment, metrics }
        }),
      ),
    [ids.join(',')],
  )
  useEffect(() => {
    document.title = 'Compare · AzuraForge'
  }, [])
  if (ids.length < 2)
    return (
      <div className="page">
        <h1>Compare</h1>
        <p className="lead" data-testid="compare-hint">
          Select two to eight experiments in the <Link to="/experiments">experiments table</Link> and press Compare.
        </p>
      </div>
    )
  if (state.error) return <ErrorBanner error={state.error} onRetry={state.reload} />
  if (!state.data) return <Spinner />
  return <CompareView items={state.data} />
}

export function CompareView({ items }: { items: CompareItem[] }) {
  const [showAll, setShowAll] = useState(false)
  const diff = useMemo(() => configDiff(items), [items])
  const finals = useMemo(() => finalMetrics(items), [items])
  const curves = useMemo(() => curveNames(items), [items])
  const metricNames = [...finals.keys()]
  const defaultMetric = ['val_loss', 'accuracy', 'test_mae', 'loss'].find((m) => finals.has(m)) ?? metricNames[0] ?? ''
  const [pcMetric, setPcMetric] = useState(defaultMetric)
  const params = [...diff.differing].filter((k) => diff.flat.some((f) => f[k] !== null && typeof f[k] !== 'object'))
  const colors = items.map((_, i) => PALETTE[i % PALETTE.length])
  const label = (i: number) => items[i].experiment.name

  return (
    <div className="page">
      <h1>Compare {items.length} experiments</h1>
      <div className="legend-row" data-testid="compare-legend">
        {items.map((it, i) => (
          <Link key={it.experiment.id} to={`/experiments/${it.experiment.id}`} className="legend-item">
            <span className="swatch" style={{ background: colors[i] }} />
            {it.experiment.name} <StatusBadge status={it.experiment.status} testId={`compare-status-${i}`} />
          </Link>
        ))}
      </div>

      <Section title="Curves" testId="compare-curves">
        {curves.length === 0 && <p className="muted">No metric has more than one point yet.</p>}
        <div className="chart-grid">
          {curves.map((name) => {
            const series = items.map((it) => it.metrics.find((s) => s.name === name) ?? { name, steps: [], values: [] })
            return (
              <div className="chart-box" key={name}>
                <h3>{name}</h3>
                <LineChart testId={`compare-chart-${name}`} data={alignSeries(series)} xLabel={xLabelFor(series.filter((s) => s.steps.length))} height={220} series={items.map((_, i) => ({ label: label(i), color: colors[i] }))} />
              </div>
            )
          })}
        </div>
      </Section>

      <Section title="Final metrics" testId="compare-metrics">
        <div className="table-scroll">
          <table className="table compact" data-testid="final-metrics-table">
            <thead>
              <tr>
                <th scope="col">metric</th>
                {items.map((it, i) => (
                  <th key={it.experiment.id} scope="col">
                    <span className="swatch" style={{ background: colors[i] }} /> {it.experiment.name}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {[...finals.entries()].map(([name, values]) => {
                const best = bestIndex(name, values)
                return (
                  <tr key={name} data-testid={`metric-row-${name}`}>
                    <th scope="row">
                      {name}{' '}
                      <span className="muted small" title={metricGoal(name) === 'min' ? 'lower is better' : metricGoal(name) ? 'higher is better' : undefined}>
                        {metricGoal(name) === 'min' ? '↓' : metricGoal(name) ? '↑' : ''}
                      </span>
                    </th>
                    {values.map((v, i) => (
                      <td key={i} className={best === i ? 'best' : ''} data-testid={best === i ? `best-${name}` : undefined}>
                        {formatNumber(v)}
                      </td>
                    ))}
                  </tr>
                )
              })}
            </tbody>
          </table>
        </div>
      </Section>

      <Section
        title={showAll ? 'Configuration' : `Configuration differences (${diff.differing.size})`}
        testId="compare-config"
        actions={
          <label className="small">
            <input type="checkbox" checked={showAll} onChange={(e) => setShowAll(e.target.checked)} /> show all keys
          </label>
        }
      >
        <div className="table-scroll">
          <table className="table compact" data-testid="config-diff-table">
            <thead>
              <tr>
                <th scope="col">key</th>
                {items.map((it) => (
                  <th key={it.experiment.id} scope="col">
                    {it.experiment.name}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {diff.keys
                .filter((k) => showAll || diff.differing.has(k))
                .map((k) => (
                  <tr key={k} className={diff.differing.has(k) ? 'diff' : ''} data-testid={`config-row-${k}`}>
                    <th scope="row">{k}</th>
                    {diff.flat.map((f, i) => (
                      <td key={i} className="mono">
                        {formatValue(f[k])}
                      </td>
                    ))}
                  </tr>
                ))}
              {!showAll && diff.differing.size === 0 && (
                <tr>
                  <td colSpan={items.length + 1} className="muted">
                    The configs are identical.
                  </td>
                </tr>
              )}
            </tbody>
          </table>
        </div>
      </Section>

      <Section
        title="Parameters vs metric"
        testId="compare-parallel"
        actions={
          <label className="small">
            metric{' '}
            <select value={pcMetric} onChange={(e) => setPcMetric(e.target.value)} data-testid="pc-metric">
              {metricNames.map((m) => (
                <option key={m}>{m}</option>
              ))}
            </select>
          </label>
        }
      >
        {params.length === 0 ? (
          <p className="muted">The experiments share every parameter; change some to see their effect.</p>
        ) : (
          <ParallelCoords
            params={params}
            metric={pcMetric}
            lowerIsBetter={lowerIsBetter(pcMetric)}
            colors={colors}
            rows={items.map((it, i) => ({
              id: it.experiment.id,
              label: it.experiment.name,
              values: diff.flat[i],
              metric: finals.get(pcMetric)?.[i] ?? null,
            }))}
          />
        )}
      </Section>
    </div>
  )
}
