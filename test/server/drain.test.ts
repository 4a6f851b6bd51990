/**
 * Server.drain (graceful shutdown) and the state file's failure paths, in process over real
 * sockets. The CLI's signal handling is tested with real processes in test/cli/restart.test.ts.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { encodeAnnounceRequest } from '../../src/protocol/udp/codec.js'
import { decodeState } from '../../src/server/persist/state-file.js'
import { Server } from '../../src/server/server.js'
import { MemoryStore } from '../../src/server/store/memory/memory-store.js'
import type { SwarmStore, TorrentWalk } from '../../src/server/store/store.js'
import { hash, httpV4, req } from './store/conformance.js'
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

describe('state file saved in slices', () => {
  /**
   * A MemoryStore of `n` one-peer torrents behind the state-file members, counting the saves'
   * walks; `atStep(k)` runs when a walk names its k-th torrent (in the middle of a save).
   */
  function counted (n: number, atStep: (k: number) => void): { inner: MemoryStore, store: SwarmStore, walks: () => number, most: () => number } {
    const inner = new MemoryStore({ peerTtl: 3600 })
    const now = Math.floor(Date.now() / 1000)
    for (let i = 0; i < n; i++) inner.announce(req(hash(i), httpV4(i)), now)
    let walks = 0
    let open = 0
    let most = 0
    const store = wrap(inner, {
      retired: () => inner.retired(),
      restorePeer: (h, k, p) => inner.restorePeer(h, k, p),
      setDownloaded: (h, d) => inner.setDownloaded(h, d),
      torrentWalk: (): TorrentWalk => {
        const w = inner.torrentWalk()
        walks++
        most = Math.max(most, ++open)
        let k = 0
        return {
          next: () => { if (walks === 1) atStep(++k); return w.next() },
          info: () => w.info(),
          close: () => { open--; w.close() }
        }
      }
    })
    return { inner, store, walks: () => walks, most: () => most }
  }

  it('saves never overlap: calls during a save share the one after it, which has what changed meanwhile', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bt-drain-'))
    try {
      const file = join(dir, 'state.bin')
      const later: Array<Promise<void>> = []
      const c = counted(20_000, k => {
        if (k !== 1000) return
        later.push(s.server.saveState(), s.server.saveState())
        setImmediate(() => c.inner.announce(req(hash(20_000), httpV4(20_000)), Math.floor(Date.now() / 1000)))
      })
      const s = await startServer({ stateFile: file, store: c.store })
      try {
        const first = s.server.saveState()
        await first
        assert.equal(later.length, 2)
        assert.equal(later[0], later[1])
        assert.notEqual(later[0], first)
        await later[0]
        assert.equal(c.walks(), 2)
        assert.equal(c.most(), 1)
        assert.equal(decodeState(readFileSync(file)).swarms.length, 20_001)
        assert.deepEqual(readdirSync(dir), ['state.bin'])
      } finally { await s.close() }
    } finally { rmSync(dir, { recursive: true, force: true }) }
  })

  it('close during a save waits for it, then saves once more before calling back', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bt-drain-'))
    try {
      const file = join(dir, 'state.bin')
      let closed: Promise<Error | null | undefined> | undefined
      const c = counted(20_000, k => {
        if (k !== 1000) return
        c.inner.setDownloaded(hash(30_000), 4) // a retired count, changed during the save
        closed = new Promise(resolve => s.server.close(resolve))
      })
      const s = await startServer({ stateFile: file, store: c.store })
      const first = s.server.saveState()
      await first
      assert.ok(closed !== undefined)
      assert.equal(await withTimeout(closed, REPLY_TIMEOUT_MS, 'close'), null)
      assert.equal(c.walks(), 2)
      assert.equal(c.most(), 1)
      const st = decodeState(readFileSync(file))
      assert.equal(st.swarms.length, 20_000)
      assert.deepEqual(st.retired, [[hash(30_000), 4]])
      assert.deepEqual(readdirSync(dir), ['state.bin'])
    } finally { rmSync(dir, { recursive: true, force: true }) }
  })

  it('a disk that is full (ENOSPC) fails the save with a warning and keeps the previous file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bt-drain-'))
    try {
      const file = join(dir, 'state.bin')
      const c = counted(10, () => undefined)
      const s = await startServer({ stateFile: file, store: c.store })
      try {
        await s.server.saveState()
        const before = readFileSync(file)
        // the temporary file (this process, as the server runs in it) is /dev/full
        symlinkSync('/dev/full', `${file}.tmp-${process.pid}`)
        c.inner.announce(req(hash(99), httpV4(99)), Math.floor(Date.now() / 1000))
        await assert.rejects(s.server.saveState(), { message: `state file ${file}: cannot save: ENOSPC: no space left on device, write` })
        assert.equal(s.warnings.at(-1)!.message, `state file ${file}: cannot save: ENOSPC: no space left on device, write`)
        assert.deepEqual(readFileSync(file), before)
        assert.equal(decodeState(before).swarms.length, 10)
        assert.deepEqual(readdirSync(dir), ['state.bin'])
        // space again: the next save goes through
        await s.server.saveState()
        assert.equal(decodeState(readFileSync(file)).swarms.length, 11)
      } finally { await s.close() }
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
