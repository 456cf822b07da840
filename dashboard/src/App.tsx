import { useState } from 'react'
import { NavLink, Navigate, Route, Routes } from 'react-router'
import { api, ApiError } from './api/client'
import { ThemeContext } from './components/common'
import { useAsync, useInterval, useTheme } from './lib/hooks'
import { ComparePage } from './pages/ComparePage'
import { ExperimentDetailPage } from './pages/ExperimentDetailPage'
import { ExperimentsPage } from './pages/ExperimentsPage'
import { LaunchPage } from './pages/LaunchPage'
import { ModelsPage } from './pages/ModelsPage'
import { PipelinesPage } from './pages/PipelinesPage'

function HealthBanner() {
  const [tick, setTick] = useState(0)
  const health = useAsync((signal) => api.health(signal), [tick])
  useInterval(() => setTick((t) => t + 1), health.error ? 3000 : 10000)
  if (!health.error) return null
  const offline = health.error instanceof ApiError && (health.error.unreachable || health.error.status >= 502)
  if (!offline) return null
  return (
    <div className="banner banner-offline global-banner" role="alert" data-testid="api-offline">
      <strong>The AzuraForge API is unreachable.</strong>
      <span>{health.error.message} Retrying every few seconds…</span>
    </div>
  )
}

export function App() {
  const [theme, toggleTheme] = useTheme()
  return (
    <ThemeContext.Provider value={theme}>
      <a href="#main" className="skip-link">
        Skip to content
      </a>
      <header className="topbar">
        <NavLink to="/" className="brand" aria-label="AzuraForge home">
          <img src="/favicon.svg" alt="" width={24} height={24} />
          AzuraForge
        </NavLink>
        <nav aria-label="main">
          <NavLink to="/pipelines" data-testid="nav-pipelines">
            Pipelines
          </NavLink>
          <NavLink to="/experiments" data-testid="nav-experiments">
            Experiments
          </NavLink>
          <NavLink to="/compare" data-testid="nav-compare">
            Compare
          </NavLink>
          <NavLink to="/models" data-testid="nav-models">
            Models
          </NavLink>
        </nav>
        <button type="button" className="btn btn-small theme-toggle" onClick={toggleTheme} data-testid="theme-toggle" aria-label={`switch to ${theme === 'dark' ? 'light' : 'dark'} theme`}>
          {theme === 'dark' ? '☀ Light' : '☾ Dark'}
        </button>
      </header>
      <HealthBanner />
      <main id="main">
        <Routes>
          <Route path="/" element={<Navigate to="/pipelines" replace />} />
          <Route path="/pipelines" element={<PipelinesPage />} />
          <Route path="/pipelines/:pipelineId" element={<LaunchPage />} />
          <Route path="/experiments" element={<ExperimentsPage />} />
          <Route path="/experiments/:experimentId" element={<ExperimentDetailPage />} />
          <Route path="/compare" element={<ComparePage />} />
          <Route path="/models" element={<ModelsPage />} />
          <Route
            path="*"
            element={
              <div className="page">
                <h1>Not found</h1>
                <p>
                  No page here. <NavLink to="/pipelines">Go to the pipelines</NavLink>.
                </p>
              </div>
            }
          />
        </Routes>
      </main>
    </ThemeContext.Provider>
  )
}
