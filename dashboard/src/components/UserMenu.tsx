import { useEffect, useRef, useState } from 'react'
import { NavLink } from 'react-router'
import { useAuth } from '../lib/auth'

/** The header's account menu: who is signed in, their tokens, the admin pages, log out. */
export function UserMenu() {
  const { me, logout } = useAuth()
  const [open, setOpen] = useState(false)
  const box = useRef<HTMLDivElement>(null)
  useEffect(() => {
    if (!open) return
    const onDown = (e: MouseEvent) => {
      if (box.current && !box.current.contains(e.target as Node)) setOpen(false)
    }
    const onKey = (e: KeyboardEvent) => {
      if (e.key === 'Escape') setOpen(false)
    }
    document.addEventListener('mousedown', onDown)
    document.addEventListener('keydown', onKey)
    return () => {
      document.removeEventListener('mousedown', onDown)
      document.removeEventListener('keydown', onKey)
    }
  }, [open])
  if (!me) return null
  const authOff = me.auth === 'none'
  const close = () => setOpen(false)
  return (
    <div className="user-menu" ref={box}>
      <button
        type="button"
        className="btn btn-small user-menu-button"
        aria-haspopup="true"
        aria-expanded={open}
        aria-controls="user-menu-list"
        data-testid="user-menu"
        onClick={() => setOpen((o) => !o)}
      >
        <span data-testid="user-name">{me.username}</span>
        <span className={`role role-${me.role}`} data-testid="user-role">
          {me.role}
        </span>
        <span aria-hidden="true">▾</span>
      </button>
      {open && (
        <div className="menu card" id="user-menu-list" data-testid="user-menu-list">
          <div className="menu-head muted small">
            {authOff ? 'Authentication is off (--no-auth)' : `Signed in as ${me.username} (${me.role})`}
          </div>
          {!authOff && (
            <NavLink to="/tokens" onClick={close} data-testid="menu-tokens">
              API tokens
            </NavLink>
          )}
          {me.role === 'admin' && (
            <>
              <NavLink to="/users" onClick={close} data-testid="menu-users">
                Users
              </NavLink>
              <NavLink to="/audit" onClick={close} data-testid="menu-audit">
                Audit log
              </NavLink>
            </>
          )}
          {!authOff && logout && (
            <button
              type="button"
              className="menu-item"
              data-testid="menu-logout"
              onClick={() => {
                close()
                logout()
              }}
            >
              Log out
            </button>
          )}
        </div>
      )}
    </div>
  )
}
