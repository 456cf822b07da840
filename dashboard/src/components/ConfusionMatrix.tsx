export interface ConfusionData {
  labels: string[]
  matrix: number[][]
}

/** Parses a `confusion_matrix` event payload or artifact ({labels, matrix}). */
export function parseConfusion(value: unknown): ConfusionData | null {
  if (!value || typeof value !== 'object') return null
  const rec = value as Record<string, unknown>
  const matrix = rec.matrix
  if (!Array.isArray(matrix) || !matrix.every((r) => Array.isArray(r))) return null
  const labels = Array.isArray(rec.labels)
    ? rec.labels.map(String)
    : (matrix as unknown[]).map((_, i) => String(i))
  return { labels, matrix: (matrix as unknown[][]).map((r) => r.map((v) => Number(v) || 0)) }
}

/** Rows are the true classes, columns the predicted ones; the diagonal is right. */
export function ConfusionMatrix({ data }: { data: ConfusionData }) {
  const max = Math.max(1, ...data.matrix.flat())
  const total = data.matrix.flat().reduce((a, b) => a + b, 0)
  const correct = data.matrix.reduce((a, row, i) => a + (row[i] ?? 0), 0)
  return (
    <div className="confusion" data-testid="confusion-matrix">
      <div className="muted small">
        rows: true class · columns: predicted · accuracy{' '}
        <span data-testid="confusion-accuracy">{total ? ((100 * correct) / total).toFixed(1) : '0'}%</span>
      </div>
      <div className="table-scroll">
        <table className="cm-table">
          <thead>
            <tr>
              <th scope="col" aria-label="true class" />
              {data.labels.map((l) => (
                <th key={l} scope="col">
                  {l}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {data.matrix.map((row, i) => (
              <tr key={data.labels[i] ?? i}>
                <th scope="row">{data.labels[i]}</th>
                {row.map((v, j) => {
                  const a = v / max
                  const diag = i === j
                  return (
                    <td
                      key={j}
                      className={diag ? 'cm-diag' : v > 0 ? 'cm-off' : ''}
                      style={{
                        background: v
                          ? diag
                            ? `rgba(37, 99, 235, ${0.12 + 0.88 * a})`
                            : `rgba(220, 38, 38, ${0.15 + 0.85 * a})`
                          : undefined,
                        color: a > 0.55 ? '#fff' : undefined,
                      }}
                      title={`true ${data.labels[i]}, predicted ${data.labels[j]}: ${v}`}
                    >
                      {v}
                    </td>
                  )
                })}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </div>
  )
}
