import { lazy, Suspense, useCallback, useEffect, useMemo, useState, useSyncExternalStore, type ReactNode } from 'react'
import { NavLink, Navigate, Route, Routes } from 'react-router'
import { api, ApiError } from './api/client'
import { isLoginRequired, loginSucceeded, subscribeLogin } from './api/session'
import type { Me, User } from './api/types'
import { ErrorBanner, Spinner, ThemeContext } from './components/common'
import { UserMenu } from './components/UserMenu'
import { AuthContext, OPEN_ACCESS, useAuth, type AuthInfo } from './lib/auth'
import { useAsync, useInterval, useTheme } from './lib/hooks'
import { ComparePage } from './pages/ComparePage'
import { ExperimentDetailPage } from './pages/ExperimentDetailPage'
import { ExperimentsPage } from './pages/ExperimentsPage'
import { LaunchPage } from './pages/LaunchPage'
import { LoginPage } from './pages/LoginPage'
import { ModelsPage } from './pages/ModelsPage'
import { PipelinesPage } from './pages/PipelinesPage'

// account and admin pages: seldom opened, so loaded on demand
const TokensPage = lazy(() => import('./pages/TokensPage').then((m) => ({ default: m.TokensPage })))
const UsersPage = lazy(() => import('./pages/UsersPage').then((m) => ({ default: m.UsersPage })))
const AuditPage = lazy(() => import('./pages/AuditPage').then((m) => ({ default: m.AuditPage })))
// hyperparameter studies: their own chunk
const StudiesPage = lazy(() => import('./pages/StudiesPage').then((m) => ({ default: m.StudiesPage })))
const NewStudyPage = lazy(() => import('./pages/NewStudyPage').then((m) => ({ default: m.NewStudyPage })))
const StudyPage = lazy(() => import('./pages/StudyPage').then((m) => ({ default: m.StudyPage })))

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

function AdminOnly({ children }: { children: ReactNode }) {
  const { me } = useAuth()
  if (me?.role === 'admin') return children
  return (
    <div className="page">
      <h1>Admins only</h1>
      <p className="muted" data-testid="admin-only">
        This page is for administrators; your role is {me?.role ?? 'unknown'}.
      </p>
    </div>
  )
}

function ThemeToggle({ theme, toggle }: { theme: string; toggle: () => void }) {
  return (
    <button type="button" className="btn btn-small theme-toggle" onClick={toggle} data-testid="theme-toggle" aria-label={`switch to ${theme === 'dark' ? 'light' : 'dark'} theme`}>
      {theme === 'dark' ? '☀ Light' : '☾ Dark'}
    </button>
  )
}

export function App() {
  const [theme, toggleTheme] = useTheme()
  // any 401 (or a socket closed with 4401) asks for a login; see api/session.ts
  const loginRequired = useSyncExternalStore(subscribeLogin, isLoginRequired)
  const [me, setMe] = useState<Me | null>(null)
  const [signedOut, setSignedOut] = useState(false)
  const [bootError, setBootError] = useState<unknown>(null)
  const [bootTick, setBootTick] = useState(0)
  const [logoutError, setLogoutError] = useState<unknown>(null)
  // bumped when a different user signs in: nothing of the last one's pages stays on screen
  const [generation, setGeneration] = useState(0)

  // GET /auth/me decides: a user (or `none`: no login at all); a 401 brings the login page
  // up, and this same call answers once the user has signed in.
  useEffect(() => {
    const ctrl = new AbortController()
    api.me(ctrl.signal).then(
      (who) => {
        setBootError(null)
        setMe(who)
      },
      (err: unknown) => {
        if (ctrl.signal.aborted) return
        if (err instanceof ApiError && err.status === 404) setMe(OPEN_ACCESS)
        else setBootError(err)
      },
    )
    return () => ctrl.abort()
  }, [bootTick])
  useInterval(() => setBootTick((t) => t + 1), 3000, bootError !== null && me === null)

  const onLoggedIn = useCallback(
    (user: User) => {
      // first sign-in, or the same user again: the waiting requests go out again
      const sameUser = !me || me.username === user.username
      if (!sameUser) setGeneration((g) => g + 1)
      setMe({ ...user, auth: 'session' })
      setSignedOut(false)
      loginSucceeded(sameUser)
    },
    [me],
  )
  const logout = useCallback(async () => {
    setLogoutError(null)
    try {
      await api.logout()
    } catch (err) {
      // a 401: the session was over already; anything else: still signed in, say so
      if (!(err instanceof ApiError && err.status === 401)) {
        setLogoutError(err)
        return
      }
    }
    setMe(null)
    setSignedOut(true)
    setGeneration((g) => g + 1)
  }, [])
  const auth = useMemo<AuthInfo>(() => ({ me, logout: me?.auth === 'none' ? undefined : () => void logout() }), [me, logout])

  const showLogin = signedOut || loginRequired
  const toggle = <ThemeToggle theme={theme} toggle={toggleTheme} />
  return (
    <ThemeContext.Provider value={theme}>
      <AuthContext.Provider value={auth}>
        {showLogin && <LoginPage onLoggedIn={onLoggedIn} expired={loginRequired && me !== null} themeToggle={toggle} />}
        {me ? (
          // kept (hidden) behind a mid-work login, so the page carries on where it was
          <div className="app-shell" hidden={showLogin} key={generation}>
            <Shell toggle={toggle} logoutError={logoutError} />
          </div>
        ) : (
          !showLogin && (
            <main id="main">
              {bootError ? <ErrorBanner error={bootError} onRetry={() => setBootTick((t) => t + 1)} /> : <Spinner />}
            </main>
          )
        )}
      </AuthContext.Provider>
    </ThemeContext.Provider>
  )
}

function Shell({ toggle, logoutError }: { toggle: ReactNode; logoutError: unknown }) {
  return (
    <>
      <a href="#main" className="skip-link">
        Skip to content
      </a>
      <header className="topbar">
        <NavLink to="/" className="brand" aria-label="AzuraForge home">
          <img src="/favicon.svg" alt="" width={24} height={24} />
          <span className="brand-name">AzuraForge</span>
        </NavLink>
        <nav aria-label="main">
          <NavLink to="/pipelines" data-testid="nav-pipelines">
            Pipelines
          </NavLink>
          <NavLink to="/experiments" data-testid="nav-experiments">
            Experiments
          </NavLink>
          <NavLink to="/studies" data-testid="nav-studies">
            Studies
          </NavLink>
          <NavLink to="/compare" data-testid="nav-compare">
            Compare
          </NavLink>
          <NavLink to="/models" data-testid="nav-models">
            Models
          </NavLink>
        </nav>
        {toggle}
        <UserMenu />
      </header>
      <HealthBanner />
      {logoutError !== null && (
        <div className="global-banner">
          <ErrorBanner error={logoutError} testId="logout-error" />
        </div>
      )}
      <main id="main">
        <Suspense fallback={<Spinner />}>
          <Routes>
            <Route path="/" element={<Navigate to="/pipelines" replace />} />
            <Route path="/pipelines" element={<PipelinesPage />} />
            <Route path="/pipelines/:pipelineId" element={<LaunchPage />} />
            <Route path="/experiments" element={<ExperimentsPage />} />
            <Route path="/experiments/:experimentId" element={<ExperimentDetailPage />} />
            <Route path="/studies" element={<StudiesPage />} />
            <Route path="/studies/new" element={<NewStudyPage />} />
            <Route path="/studies/:studyId" element={<StudyPage />} />
            <Route path="/compare" element={<ComparePage />} />
            <Route path="/models" element={<ModelsPage />} />
            <Route path="/tokens" element={<TokensPage />} />
            <Route
              path="/users"
              element={
                <AdminOnly>
                  <UsersPage />
                </AdminOnly>
              }
            />
            <Route
              path="/audit"
              element={
                <AdminOnly>
                  <AuditPage />
                </AdminOnly>
              }
            />
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
        </Suspense>
      </main>
    </>
  )
}
