// Where global setup saves the signed-in session (cookies) that every test starts with.
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const STORAGE_STATE = join(dirname(fileURLToPath(import.meta.url)), '.auth', 'state.json')
