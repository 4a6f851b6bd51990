/**
 * The client tests' shared harness: a Client made for one test is destroyed after it (with
 * whatever else a test registers in `cleanups`, last first), and events can be recorded.
 */
import type { EventEmitter } from 'node:events'
import { afterEach } from 'node:test'
import Client from '../../src/index.js'
import type { ClientOptions } from '../../src/index.js'

/** Run after each test of the file importing this, last registered first. */
export const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!()
})

export type ClientArgs = Partial<ClientOptions> & { announce: ClientOptions['announce'] }

/** A Client of `defaults` overridden by `opts`, destroyed after the test. */
export function testClient (defaults: Partial<ClientOptions>, opts: ClientArgs): Client {
  const c = new Client({ ...defaults, ...opts } as ClientOptions)
  cleanups.push(() => new Promise<void>(resolve => c.destroy(() => resolve())))
  return c
}

/** Events of one kind, recorded from now on. */
export function record<T> (c: EventEmitter, event: string): T[] {
  const out: T[] = []
  c.on(event, (v: T) => out.push(v))
  return out
}
