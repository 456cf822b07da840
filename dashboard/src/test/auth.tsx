// Renders a page as a signed-in user of some role (what the App's AuthContext provides).
import type { ReactNode } from 'react'
import type { Me } from '../api/types'
import { AuthContext } from '../lib/auth'

export function AsUser({ me, children }: { me: Me | null; children: ReactNode }) {
  return <AuthContext.Provider value={{ me, logout: () => {} }}>{children}</AuthContext.Provider>
}
