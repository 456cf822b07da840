// Who is signed in, and what their role lets the UI offer. The server enforces the same rules;
// this only hides (or disables, with the reason) what would be refused anyway.
import { createContext, useContext } from 'react'
import type { Me } from '../api/types'

export interface AuthInfo {
  /** The signed-in user (GET /auth/me); null while unknown. */
  me: Me | null
  /** Ends the session (absent with `--no-auth`, where there is no session). */
  logout?: () => void
}

// Without a provider nobody is signed in, so nothing that changes data is offered.
export const AuthContext = createContext<AuthInfo>({ me: null })

export const useAuth = () => useContext(AuthContext)

/** A server without /auth (from before authentication): everything open, like --no-auth. */
export const OPEN_ACCESS: Me = {
  id: 0,
  username: 'local',
  role: 'admin',
  disabled: false,
  created_at: '',
  last_login_at: null,
  auth: 'none',
}

export interface Permissions {
  isAdmin: boolean
  /** Launch, re-run, upload, predict, register models. */
  canRun: boolean
  /** Why not, when !canRun. */
  runReason: string | null
  /** Cancel or delete an experiment (or model) with this owner. */
  canManage: (owner: string | null | undefined) => boolean
  /** Why not, when !canManage(owner). */
  manageReason: (owner: string | null | undefined, what?: string, verb?: string) => string | null
}

export function permissionsFor(me: Me | null): Permissions {
  const role = me?.role
  const isAdmin = role === 'admin'
  const canRun = role === 'admin' || role === 'member'
  const runReason = canRun ? null : me ? 'Viewers have read-only access.' : 'Not signed in.'
  const canManage = (owner: string | null | undefined) =>
    isAdmin || (role === 'member' && owner != null && owner === me?.username)
  return {
    isAdmin,
    canRun,
    runReason,
    canManage,
    manageReason: (owner, what = 'this', verb = 'cancel or delete') => {
      if (canManage(owner)) return null
      if (!canRun) return runReason
      return owner
        ? `Only its owner (${owner}) or an admin can ${verb} ${what}.`
        : `Only an admin can ${verb} ${what} (it has no owner).`
    },
  }
}

export const usePermissions = (): Permissions => permissionsFor(useAuth().me)
