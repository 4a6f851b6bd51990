import type { TrackerError } from '../../errors.js'

/** Decoders never throw on hostile input: they return one of these. */
export type Result<T> = { ok: true, value: T } | { ok: false, error: TrackerError }

export function ok<T> (value: T): Result<T> {
  return { ok: true, value }
}

export function fail<T> (error: TrackerError): Result<T> {
  return { ok: false, error }
}
