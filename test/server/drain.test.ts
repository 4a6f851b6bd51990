/**
 * Server.drain (graceful shutdown) and the state file's failure paths, in process over real
 * sockets. The CLI's signal handling is tested with real processes in test/cli/restart.test.ts.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { encodeAnnounceRequest } from '../../src/protocol/udp/codec.js'
import { decodeState } from '../../src/server/persist/state-file.js'
import { Server } from '../../src/server/server.js'
import { MemoryStore } from '../../src/server/store/memory/memory-store.js'
import type { SwarmStore } from '../../src/server/store/store.js'
import { id20, startServer, udpClient, waitFor, withTimeout, wsClient, REPLY_TIMEOUT_MS, SILENCE_MS } from '../helpers/tracker-clients.js'

const IH = id20(21)

describe('Server.drain', () => {
  it('answers a UDP announce waiting on the filter, ignores datagrams that come after, then closes', async () => {
    let calls = 0
    let release: (() => void) | undefined
    const s = await startServer({
      filter: (_ih, _params, cb) => { calls++; release = () => cb(true) }
    })
    const c = await udpClient(4, s.port)
    try {
      const cid = await c.connect()
      const packet = (tid: number, port: number): Uint8Array => encodeAnnounceRequest({
        connectionId: cid,
        transactionId: tid,
        request: { infoHash: IH, peerId: id20(1), port, downloaded: 0, left: 5, uploaded: 0, event: 2, key: 0, numwant: -1 }
      })
      c.fire(packet(77, 7001))
      assert.ok(await waitFor(() => calls === 1, REPLY_TIMEOUT_MS))
      let drained = false
      s.server.drain(() => { drained = true })
      c.fire(packet(78, 7002)) // after drain started: dropped, never reaches the filter
      await new Promise(resolve => setTimeout(resolve, SILENCE_MS))
      assert.equal(calls, 1)
      assert.equal(drained, false) // still waiting for the first request
      release!()
      const reply = await c.next(REPLY_TIMEOUT_MS)
      assert.ok(reply !== undefined)
      const r = c.decode(reply)
      assert.equal(r.action, 'announce')
      assert.equal(r.transactionId, 77)
      assert.ok(await waitFor(() => drained, REPLY_TIMEOUT_MS))
      assert.equal(s.server.destroyed, true)
      assert.equal(await c.next(SILENCE_MS), undefined)
    } finally { c.close(); await s.close() }
  })

  it('answers a UDP announce waiting on an asynchronous store', async () => {
    const inner = new MemoryStore({ peerTtl: 10 })
    let release: (() => void) | undefined
    const store = wrap(inner, {
      announce: (a, now) => new Promise(resolve => { release = () => resolve(inner.announce(a, now)) })
    })
    const s = await startServer({ store })
    const c = await udpClient(4, s.port)
    try {
      const cid = await c.connect()
      c.fire(encodeAnnounceRequest({
        connectionId: cid,
        transactionId: 5,
        request: { infoHash: IH, peerId: id20(1), port: 7001, downloaded: 0, left: 5, uploaded: 0, event: 2, key: 0, numwant: -1 }
      }))
      assert.ok(await waitFor(() => release !== undefined, REPLY_TIMEOUT_MS))
      let drained = false
      s.server.drain(() => { drained = true })
      await new Promise(resolve => setTimeout(resolve, SILENCE_MS))
      assert.equal(drained, false)
      release!()
      const reply = await c.next(REPLY_TIMEOUT_MS)
      assert.ok(reply !== undefined)
      assert.deepEqual([c.decode(reply).action, c.decode(reply).transactionId], ['announce', 5])
      assert.ok(await waitFor(() => drained, REPLY_TIMEOUT_MS))
    } finally { c.close(); await s.close() }
  })

  it('tells WebSocket clients it is going away (close code 1001)', async () => {
    const s = await startServer()
    const w = await wsClient(s.ws)
    try {
      await withTimeout(new Promise<void>(resolve => s.server.drain(() => resolve())), REPLY_TIMEOUT_MS, 'drain')
      assert.equal(await withTimeout(w.closed, REPLY_TIMEOUT_MS, 'ws close'), 1001)
    } finally { await w.close(); await s.close() }
  })

  it('a second drain or a close during drain call back once each', async () => {
    const s = await startServer()
    const calls: string[] = []
    await withTimeout(new Promise<void>(resolve => {
      s.server.drain(() => calls.push('drain 1'))
      s.server.drain(() => { calls.push('drain 2'); resolve() })
    }), REPLY_TIMEOUT_MS, 'drains')
    await new Promise<void>(resolve => s.server.drain(() => { calls.push('drain 3'); resolve() }))
    assert.deepEqual(calls, ['drain 1', 'drain 2', 'drain 3'])
  })
})

describe('state file failure paths', () => {
  it('a directory that went away: saveState rejects with a warning; close reports it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bt-drain-'))
    try {
      const sub = join(dir, 'sub')
      mkdirSync(sub)
      const file = join(sub, 'state.bin')
      const s = await startServer({ stateFile: file })
      await s.server.saveState()
      assert.equal(decodeState(readFileSync(file)).swarms.length, 0)
      rmSync(sub, { recursive: true })
      await assert.rejects(s.server.saveState(), { message: new RegExp(`^state file ${file}: cannot save: ENOENT`) })
      assert.match(s.warnings.at(-1)!.message, new RegExp(`^state file ${file}: cannot save: ENOENT`))
      const err = await withTimeout(new Promise<Error | null | undefined>(resolve => s.server.close(e => resolve(e))), REPLY_TIMEOUT_MS, 'close')
      assert.match(err!.message, /cannot save: ENOENT/)
    } finally { rmSync(dir, { recursive: true, force: true }) }
  })

  it('stateFile with a store that cannot restore is refused at construction', () => {
    const store = wrap(new MemoryStore({ peerTtl: 10 }))
    assert.throws(() => new Server({ stateFile: '/nonexistent/x', store, http: false, udp: false, ws: false }),
      { message: 'stateFile needs a store with retired(), restorePeer() and setDownloaded()' })
  })

  it('a key added through the admin API is saved at once', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bt-drain-'))
    try {
      const file = join(dir, 'state.bin')
      const s = await startServer({ stateFile: file, private: { adminToken: 't' } })
      try {
        const r = await fetch(`http://127.0.0.1:${s.port}/admin/keys`, { method: 'POST', headers: { Authorization: 'Bearer t' }, body: '{"key":"abcdefghijklmnop"}' })
        assert.equal(r.status, 201)
        assert.ok(await waitFor(() => existsSync(file) && decodeState(readFileSync(file)).accounts.length === 1, REPLY_TIMEOUT_MS))
        assert.deepEqual(decodeState(readFileSync(file)).accounts, [{ key: 'abcdefghijklmnop', source: 'api', uploaded: 0, downloaded: 0 }])
      } finally { await s.close() }
    } finally { rmSync(dir, { recursive: true, force: true }) }
  })

  it('an unusable state file fires a StateFileWarning naming the file and where it went', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bt-drain-'))
    try {
      const file = join(dir, 'state.bin')
      mkdirSync(file) // a directory where the file should be: cannot be read
      const s = new Server({ stateFile: file, http: false, udp: false, ws: false })
      const w = await withTimeout(new Promise<Error & { code?: string, file?: string }>(resolve => s.once('warning', resolve)), REPLY_TIMEOUT_MS, 'warning')
      assert.equal(w.code, 'STATE_FILE_UNUSABLE')
      assert.equal(w.file, file)
      assert.equal(w.message, `state file ${file}: cannot read: EISDIR: illegal operation on a directory, read; starting with an empty state`)
      // the close cannot save over a directory either: it says so and leaves no temporary file
      const err = await new Promise<Error | null | undefined>(resolve => s.close(resolve))
      assert.match(err!.message, new RegExp(`^state file ${file}: cannot save: `))
      assert.deepEqual(readdirSync(dir), ['state.bin'])
    } finally { rmSync(dir, { recursive: true, force: true }) }
  })
})

/** The SwarmStore methods of `inner` (without the optional state-file ones), some replaced. */
function wrap (inner: MemoryStore, over: Partial<SwarmStore> = {}): SwarmStore {
  return {
    announce: (a, now) => inner.announce(a, now),
    scrape: h => inner.scrape(h),
    scrapeAll: l => inner.scrapeAll(l),
    remove: (h, k) => inner.remove(h, k),
    sweep: (n, b) => inner.sweep(n, b),
    swarmInfo: h => inner.swarmInfo(h),
    infoHashes: () => inner.infoHashes(),
    counts: inner.counts,
    close: () => inner.close(),
    ...over
  }
}
