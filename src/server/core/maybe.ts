/** A value now or later: in-memory stores answer synchronously, networked ones with a Promise. */
export type Maybe<T> = T | Promise<T>

export function isPromise<T> (v: Maybe<T>): v is Promise<T> {
  return typeof (v as { then?: unknown } | null)?.then === 'function'
}

/** Applies `fn` now if `v` is ready, else when it resolves — no Promise on the synchronous path. */
export function then<T, U> (v: Maybe<T>, fn: (value: T) => Maybe<U>): Maybe<U> {
  return isPromise(v) ? v.then(fn) : fn(v)
}
