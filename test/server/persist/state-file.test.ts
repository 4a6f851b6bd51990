import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { EVENT_COMPLETED, EVENT_STARTED, EVENT_STOPPED } from '../../../src/protocol/common/types.js'
import { Passkeys } from '../../../src/server/core/passkeys.js'
import {
  STATE_HEADER_LENGTH, applyState, decodeState, dumpState, dumpStateSliced, loadStateFile, writeStateFile
} from '../../../src/server/persist/state-file.js'
import type { SavedState } from '../../../src/server/persist/state-file.js'
import { MemoryStore } from '../../../src/server/store/memory/memory-store.js'
import type { PeerView } from '../../../src/server/store/store.js'
import { hash, httpV4, httpV6, req, wsPeer } from '../store/conformance.js'

const NOW = 1_700_000_000
const KEY1 = 'A'.repeat(16)
const KEY2 = 'b'.repeat(32)

/** Two swarms (v4 + v6 peers, a seeder, a WS peer), one retired torrent, two keys with reports. */
function populated (): { store: MemoryStore, keys: Passkeys } {
  const store = new MemoryStore({ peerTtl: 3600 })
  store.announce(req(hash(1), httpV4(1), { event: EVENT_STARTED }), NOW - 10)
  store.announce(req(hash(1), httpV4(2), { event: EVENT_STARTED }), NOW - 5)
  store.announce(req(hash(1), httpV4(2), { event: EVENT_COMPLETED, seeder: true }), NOW - 4)
  store.announce(req(hash(1), httpV6(3)), NOW - 3)
  store.announce(req(hash(1), wsPeer(4)), NOW - 2)
  store.announce(req(hash(2), httpV6(5), { seeder: true }), NOW - 1)
  // torrent 3: two downloads, then everyone left
  store.announce(req(hash(3), httpV4(6), { event: EVENT_COMPLETED, seeder: true }), NOW)
  store.announce(req(hash(3), httpV4(7), { event: EVENT_COMPLETED, seeder: true }), NOW)
  store.announce(req(hash(3), httpV4(6), { event: EVENT_STOPPED }), NOW)
  store.announce(req(hash(3), httpV4(7), { event: EVENT_STOPPED }), NOW)
  const keys = new Passkeys()
  keys.add(KEY1, 'file')
  keys.add(KEY2, 'api')
  keys.account(KEY1, hash(1), httpV4(1).addr, 0, 1000, 500, NOW - 10)
  keys.account(KEY2, hash(2), httpV6(5).addr, 0, 7, 3, NOW - 1)
  return { store, keys }
}

function peers (store: MemoryStore, n: number): Array<[string, Omit<PeerView, 'conn'>]> {
  const info = store.swarmInfo(hash(n))
  if (info === undefined) return []
  return Array.from(info.peers(), ([k, p]) => [k, { peerId: p.peerId, addr: p.addr, kind: p.kind, seeder: p.seeder, lastSeen: p.lastSeen }] as [string, Omit<PeerView, 'conn'>])
    .filter(([, p]) => p.kind !== 2)
    .sort((a, b) => a[0] < b[0] ? -1 : 1)
}

describe('state file: encode, decode, restore', () => {
  it('round trip: peers (without WS), downloaded (live and retired), accounting and reports', () => {
    const { store, keys } = populated()
    const bytes = dumpState(store, keys, undefined, NOW * 1000)
    // header + saved-at + 2 swarms (28 + 4 each) + 3 v4/v6 peers in swarm 1 (31 + 31 + 43) and one v6
    // in swarm 2 (43) + retired (4 + 28) + keys (4 + 2 × 18 + 16 + 32) + reports (4 + 2 × 22 + ids)
    const id1 = KEY1 + '\u0000' + hash(1) + httpV4(1).addr
    const id2 = KEY2 + '\u0000' + hash(2) + httpV6(5).addr
    const expected = STATE_HEADER_LENGTH + 8 + 4 + 2 * 32 + 31 + 31 + 43 + 43 + 4 + 28 + 4 + 2 * 18 + 16 + 32 + 4 + 2 * 22 + id1.length + id2.length
    assert.equal(bytes.length, expected)
    assert.equal(bytes.toString('latin1', 0, 8), 'BTTSTATE')

    const s = decodeState(bytes)
    assert.equal(s.savedAt, NOW * 1000)
    assert.deepEqual(s.retired, [[hash(3), 2]])

    const store2 = new MemoryStore({ peerTtl: 3600 })
    const keys2 = new Passkeys()
    keys2.add(KEY1, 'file') // still in the keys file
    applyState(s, store2, keys2, NOW - 3600)
    for (const n of [1, 2]) assert.deepEqual(peers(store2, n), peers(store, n))
    assert.deepEqual(store2.scrape([hash(1), hash(2), hash(3)]), [
      { infoHash: hash(1), complete: 1, incomplete: 2, downloaded: 1 },
      { infoHash: hash(2), complete: 1, incomplete: 0, downloaded: 0 },
      { infoHash: hash(3), complete: 0, incomplete: 0, downloaded: 2 }
    ])
    // the WS peer is not restored: swarm 1 has 3 peers instead of 4
    assert.deepEqual(store2.counts, { torrents: 2, retired: 1, peers: 4, seeders: 2, leechers: 2 })
    assert.deepEqual(Array.from(keys2.list(), a => ({ ...a })), [
      { key: KEY1, source: 'file', uploaded: 1000, downloaded: 500 },
      { key: KEY2, source: 'api', uploaded: 7, downloaded: 3 }
    ])
    // deltas continue from the restored reports
    keys2.account(KEY1, hash(1), httpV4(1).addr, 0, 1200, 500, NOW)
    assert.equal(keys2.get(KEY1)!.uploaded, 1200)
  })

  it('a file key no longer in the keys file is dropped with its accounting; peers older than the cutoff are left out', () => {
    const { store, keys } = populated()
    const s = decodeState(dumpState(store, keys, undefined, 0))
    const store2 = new MemoryStore({ peerTtl: 3600 })
    const keys2 = new Passkeys()
    applyState(s, store2, keys2, NOW - 3) // peers last seen before NOW - 3 are stale
    assert.deepEqual(Array.from(keys2.list(), a => a.key), [KEY2])
    assert.deepEqual(Array.from(keys2.reports(), ([id]) => id.slice(0, 32)), [KEY2])
    assert.deepEqual(peers(store2, 1).map(([k]) => k), [httpV6(3).addr])
    assert.deepEqual(store2.scrape([hash(1)]), [{ infoHash: hash(1), complete: 0, incomplete: 1, downloaded: 1 }])
  })

  it('private mode off: accounting read at start is written back unchanged', () => {
    const { store, keys } = populated()
    const s = decodeState(dumpState(store, keys, undefined, 0))
    const again = decodeState(dumpState(new MemoryStore({ peerTtl: 1 }), undefined, s, 0))
    assert.deepEqual(again.accounts, s.accounts)
    assert.deepEqual(again.reports, s.reports)
  })

  it('an empty state is 56 + 24 bytes', () => {
    const b = dumpState(new MemoryStore({ peerTtl: 1 }), undefined, undefined, 5)
    assert.equal(b.length, STATE_HEADER_LENGTH + 24)
    assert.deepEqual(decodeState(b), { savedAt: 5, swarms: [], retired: [], accounts: [], reports: [] })
  })

  describe('unusable files say what is wrong', () => {
    const good = dumpState(populated().store, populated().keys, undefined, 0)
    const bodyLength = good.length - STATE_HEADER_LENGTH
    /** `good` with its body changed and the checksum made right again (to reach the body parser). */
    const resealed = (body: Buffer): Buffer => {
      const h = Buffer.from(good.subarray(0, STATE_HEADER_LENGTH))
      h.writeBigUInt64BE(BigInt(body.length), 16)
      createHash('sha256').update(body).digest().copy(h, 24)
      return Buffer.concat([h, body])
    }
    const cases: Array<[string, Buffer, string]> = [
      ['empty', Buffer.alloc(0), 'truncated: 0 bytes, shorter than the 56-byte header'],
      ['short header', good.subarray(0, 30), 'truncated: 30 bytes, shorter than the 56-byte header'],
      ['garbage', Buffer.from('x'.repeat(200)), 'not a state file (bad magic)'],
      ['truncated body', good.subarray(0, good.length - 1), `truncated: header says ${bodyLength} body bytes, file has ${bodyLength - 1}`],
      ['trailing bytes', Buffer.concat([good, Buffer.from([0])]), `trailing garbage: header says ${bodyLength} body bytes, file has ${bodyLength + 1}`],
      ['flipped body byte', (() => { const b = Buffer.from(good); b[STATE_HEADER_LENGTH + 20] ^= 1; return b })(), 'checksum mismatch (the body is corrupt)'],
      ['other version', (() => { const b = Buffer.from(good); b.writeUInt32BE(2, 8); return b })(), 'unsupported version 2 (this tracker reads 1)'],
      ['body cut short, checksum right', resealed(good.subarray(STATE_HEADER_LENGTH, good.length - 3)), 'malformed body: ends inside a field at body byte ' + String(bodyLength - 4)],
      ['extra body bytes, checksum right', resealed(Buffer.concat([good.subarray(STATE_HEADER_LENGTH), Buffer.from([1, 2])])), 'malformed body: bytes left after the last section']
    ]
    for (const [name, bytes, message] of cases) {
      it(name, () => {
        assert.throws(() => decodeState(bytes), (e: Error) => e.name === 'StateFileError' && e.message === message)
      })
    }
  })
})

describe('state file: on disk', () => {
  it('writeStateFile writes the bytes, replaces the old file and leaves no temporary file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bt-state-'))
    try {
      const path = join(dir, 'state.bin')
      await writeStateFile(path, Buffer.from('first'))
      await writeStateFile(path, Buffer.from('second'))
      assert.equal(readFileSync(path, 'utf8'), 'second')
      assert.deepEqual(readdirSync(dir), ['state.bin'])
    } finally { rmSync(dir, { recursive: true, force: true }) }
  })

  it('writeStateFile into a missing directory rejects and leaves nothing behind', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bt-state-'))
    try {
      await assert.rejects(writeStateFile(join(dir, 'nope', 'state.bin'), Buffer.from('x')), /ENOENT/)
      assert.deepEqual(readdirSync(dir), [])
    } finally { rmSync(dir, { recursive: true, force: true }) }
  })

  it('loadStateFile: missing → a first start; corrupt → the reason, and the file moved aside', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bt-state-'))
    try {
      const path = join(dir, 'state.bin')
      assert.deepEqual(loadStateFile(path), { ok: false, missing: true })
      writeFileSync(path, 'garbage')
      const r = loadStateFile(path, new Date('2026-01-02T03:04:05.678Z'))
      assert.deepEqual(r, {
        ok: false, missing: false, error: 'truncated: 7 bytes, shorter than the 56-byte header', movedTo: `${path}.corrupt-2026-01-02T03-04-05-678Z`
      })
      assert.equal(existsSync(path), false)
      assert.equal(readFileSync(`${path}.corrupt-2026-01-02T03-04-05-678Z`, 'utf8'), 'garbage')
      const good = dumpState(new MemoryStore({ peerTtl: 1 }), undefined, undefined, 9)
      writeFileSync(path, good)
      const ok = loadStateFile(path)
      assert.equal(ok.ok, true)
      assert.equal(ok.ok && ok.state.savedAt, 9)
    } finally { rmSync(dir, { recursive: true, force: true }) }
  })
})

describe('MemoryStore: restorePeer, setDownloaded, retired', () => {
  it('restorePeer adds without counting a download, keeps a live peer, and takes over a retired count', () => {
    const s = new MemoryStore({ peerTtl: 100 })
    s.setDownloaded(hash(1), 5)
    assert.deepEqual(Array.from(s.retired()), [[hash(1), 5]])
    assert.equal(s.counts.retired, 1)
    const p = httpV4(1)
    s.restorePeer(hash(1), p.key, { peerId: p.peerId, addr: p.addr, kind: p.kind, seeder: true, lastSeen: 50 })
    assert.deepEqual(s.counts, { torrents: 1, retired: 0, peers: 1, seeders: 1, leechers: 0 })
    assert.deepEqual(s.scrape([hash(1)]), [{ infoHash: hash(1), complete: 1, incomplete: 0, downloaded: 5 }])
    // same key again: the peer already there wins
    s.restorePeer(hash(1), p.key, { peerId: 'x'.repeat(20), addr: p.addr, kind: p.kind, seeder: false, lastSeen: 60 })
    const [[, view]] = Array.from(s.swarmInfo(hash(1))!.peers())
    assert.equal(view.peerId, p.peerId)
    assert.equal(view.lastSeen, 50)
    s.setDownloaded(hash(1), 9)
    assert.equal(s.scrape([hash(1)])[0].downloaded, 9)
    // restored peers expire like announced ones
    assert.equal(s.sweep(151, 100), true)
    assert.deepEqual(s.counts, { torrents: 0, retired: 1, peers: 0, seeders: 0, leechers: 0 })
  })
})

/** One IPv4 peer as the file holds it. */
function saved (n: number, lastSeen: number, seeder = false): { addr: string, peerId: string, seeder: boolean, lastSeen: number } {
  return { addr: httpV4(n).addr, peerId: httpV4(n).peerId, seeder, lastSeen }
}

/** A decoded file's swarms with their peers in address order (a swarm's own order is the store's). */
function swarmsOf (s: SavedState): Array<[string, number, ReturnType<typeof saved>[]]> {
  return s.swarms.map(sw => [sw.infoHash, sw.downloaded, [...sw.peers].sort((a, b) => a.addr < b.addr ? -1 : 1)])
}

describe('state file: saved in slices', () => {
  it('nothing changing: the same bytes as the one-go dump, over several 1 MiB pieces and many slices', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bt-state-'))
    try {
      const { store, keys } = populated()
      // 40,000 more one-peer torrents: 40,000 × 63 bytes, three pieces
      for (let i = 0; i < 40_000; i++) store.announce(req(hash(100 + i), httpV4(100 + i)), NOW)
      const path = join(dir, 'state.bin')
      let slices = 0
      await dumpStateSliced(store, keys, undefined, NOW * 1000, path, { sliceWork: 1000, between: () => { slices++ } })
      const bytes = readFileSync(path)
      assert.deepEqual(bytes, dumpState(store, keys, undefined, NOW * 1000))
      assert.equal(bytes.length, 562 + 40_000 * 63) // the populated state (first test) + 40,000 × (32 + 31)
      // 40,003 swarms (+ peers), one retired, 2 keys, 2 reports, 3 pieces hashed, in slices of 1,000
      assert.equal(slices, 80)
      assert.equal(decodeState(bytes).swarms.length, 40_002)
      assert.deepEqual(readdirSync(dir), ['state.bin'])
    } finally { rmSync(dir, { recursive: true, force: true }) }
  })

  it('announces and expiry between slices: each torrent as its slice found it, every live torrent once', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bt-state-'))
    try {
      const store = new MemoryStore({ peerTtl: 100 })
      // t1..t8 at entries 0..7, one IPv4 peer each; t2's peer finished (a download); t4 and t6 silent since NOW - 80
      for (let n = 1; n <= 8; n++) {
        const old = n === 4 || n === 6
        store.announce(req(hash(n), httpV4(n), n === 2 ? { event: EVENT_COMPLETED, seeder: true } : {}), old ? NOW - 80 : NOW)
      }
      const path = join(dir, 'state.bin')
      let slice = 0
      const between = (): void => {
        slice++ // slice k has written the k-th torrent (sliceWork 1: one torrent a slice)
        if (slice === 1) {
          store.announce(req(hash(1), httpV4(11)), NOW + 1) // t1 written: this peer is for the next save
          store.announce(req(hash(8), httpV4(18)), NOW + 1) // t8 ahead: written with it
        } else if (slice === 2) {
          store.announce(req(hash(2), httpV4(2), { event: EVENT_STOPPED }), NOW + 2) // t2 written, dropped: retired with 1
          store.announce(req(hash(7), httpV4(7), { event: EVENT_STOPPED }), NOW + 2) // t7 ahead gone, its entry free
          store.announce(req(hash(9), httpV4(9)), NOW + 2) // t9 takes t7's entry, ahead
        } else if (slice === 3) {
          store.announce(req(hash(3), httpV4(3), { event: EVENT_STOPPED }), NOW + 3) // t3 written, dropped
          store.announce(req(hash(5), httpV4(5), { event: EVENT_STOPPED }), NOW + 3) // t5 ahead gone
          store.announce(req(hash(3), httpV4(13)), NOW + 3) // t3 back, at t5's entry ahead: not written twice
          store.announce(req(hash(10), httpV4(10)), NOW + 3) // t10 at t3's old entry, behind: written at the end
        } else if (slice === 4) {
          // expiry: t4 (written) and t6 (ahead) silent for longer than the TTL
          assert.equal(store.sweep(NOW + 30, 1000), true)
        }
      }
      await dumpStateSliced(store, undefined, undefined, 7, path, { sliceWork: 1, between })
      const s = decodeState(readFileSync(path))
      assert.deepEqual(swarmsOf(s), [
        [hash(1), 0, [saved(1, NOW)]],
        [hash(2), 1, [saved(2, NOW, true)]],
        [hash(3), 0, [saved(3, NOW)]],
        [hash(4), 0, [saved(4, NOW - 80)]],
        [hash(9), 0, [saved(9, NOW + 2)]],
        [hash(8), 0, [saved(8, NOW), saved(18, NOW + 1)]],
        [hash(10), 0, [saved(10, NOW + 3)]]
      ])
      assert.deepEqual(s.retired, [[hash(2), 1]])
      assert.equal(slice, 7 + 1) // 7 torrents, then the retired one
      // loaded back: the file's torrents, t2's count from the retired list
      const back = new MemoryStore({ peerTtl: 100 })
      applyState(s, back, undefined, 0)
      assert.deepEqual(back.counts, { torrents: 7, retired: 0, peers: 8, seeders: 1, leechers: 7 })
      assert.deepEqual(back.scrape([hash(2)]), [{ infoHash: hash(2), complete: 1, incomplete: 0, downloaded: 1 }])
      // the next save (nothing changing) is the store as it is now
      await dumpStateSliced(store, undefined, undefined, 8, path, { sliceWork: 1 })
      assert.deepEqual(swarmsOf(decodeState(readFileSync(path))), [
        [hash(1), 0, [saved(1, NOW), saved(11, NOW + 1)]],
        [hash(10), 0, [saved(10, NOW + 3)]],
        [hash(3), 0, [saved(13, NOW + 3)]],
        [hash(9), 0, [saved(9, NOW + 2)]],
        [hash(8), 0, [saved(8, NOW), saved(18, NOW + 1)]]
      ])
    } finally { rmSync(dir, { recursive: true, force: true }) }
  })

  it('torrents created behind the walk while it writes them last are written too, each once', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bt-state-'))
    try {
      const store = new MemoryStore({ peerTtl: 100 })
      for (let n = 1; n <= 3; n++) store.announce(req(hash(n), httpV4(n)), NOW)
      const path = join(dir, 'state.bin')
      let slice = 0
      const between = (): void => {
        slice++
        if (slice === 1) {
          // two entries freed behind and ahead, then two torrents created in them
          store.announce(req(hash(1), httpV4(1), { event: EVENT_STOPPED }), NOW)
          store.announce(req(hash(20), httpV4(20)), NOW) // entry 0, behind
        } else if (slice === 3) {
          // the walk is past every entry: t21 at a new entry behind it, t1 back, t20 dropped before its turn
          store.announce(req(hash(21), httpV4(21)), NOW)
          store.announce(req(hash(20), httpV4(20), { event: EVENT_STOPPED }), NOW)
          store.announce(req(hash(1), httpV4(31)), NOW) // t1 was written: not again
        } else if (slice === 4) {
          store.announce(req(hash(22), httpV4(22)), NOW) // created while the tail is written: reached too
        }
      }
      await dumpStateSliced(store, undefined, undefined, 0, path, { sliceWork: 1, between })
      assert.deepEqual(swarmsOf(decodeState(readFileSync(path))).map(([h, , p]) => [h, p.map(x => x.addr)]), [
        [hash(1), [httpV4(1).addr]],
        [hash(2), [httpV4(2).addr]],
        [hash(3), [httpV4(3).addr]],
        [hash(21), [httpV4(21).addr]],
        [hash(22), [httpV4(22).addr]]
      ])
    } finally { rmSync(dir, { recursive: true, force: true }) }
  })

  it('a write that fails (ENOSPC: the temporary file is /dev/full) rejects, removes the temporary file and keeps the old file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bt-state-'))
    try {
      const { store, keys } = populated()
      const path = join(dir, 'state.bin')
      await dumpStateSliced(store, keys, undefined, 1, path)
      const before = readFileSync(path)
      symlinkSync('/dev/full', `${path}.tmp-${process.pid}`)
      store.announce(req(hash(9), httpV4(9)), NOW)
      await assert.rejects(dumpStateSliced(store, keys, undefined, 2, path), { code: 'ENOSPC' })
      assert.deepEqual(readFileSync(path), before)
      assert.deepEqual(readdirSync(dir), ['state.bin'])
      assert.equal(decodeState(readFileSync(path)).savedAt, 1)
    } finally { rmSync(dir, { recursive: true, force: true }) }
  })

  for (const when of ['building', 'writing'] as const) {
    it(`the process killed while ${when} the file: the old file is whole`, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'bt-state-'))
      try {
        const path = join(dir, 'state.bin')
        const dist = new URL('../../../dist/server/', import.meta.url).href
        // The child saves 100,000 torrents once, then starts a second save of 200,000 and, once
        // it is under way (a slice done; or the temporary file opened), blocks its event loop
        // for good, so the save cannot finish: the parent kills it with SIGKILL.
        const code = `
          import { dumpStateSliced } from '${dist}persist/state-file.js'
          import { MemoryStore } from '${dist}store/memory/memory-store.js'
          import { existsSync } from 'node:fs'
          const store = new MemoryStore({ peerTtl: 3600 })
          const add = (from, to) => { for (let i = from; i < to; i++) { const b = Buffer.alloc(20); b.writeUInt32BE(i); const ip = Buffer.from([10, 0, 0, 1, 0x1a, 0xe1]); ip.writeUInt16BE(i & 0xffff, 2); store.announce({ infoHash: b.toString('latin1'), key: ip.toString('latin1'), peerId: 'x'.repeat(20), addr: ip.toString('latin1'), kind: 0, conn: 0, event: 0, seeder: false, numwant: 0, want: 1 }, 1000) } }
          add(0, 100000)
          await dumpStateSliced(store, undefined, undefined, 1, ${JSON.stringify(path)})
          add(100000, 200000)
          const block = () => { process.stdout.write('blocked\\n'); Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0) }
          const tmp = ${JSON.stringify(path)} + '.tmp-' + process.pid
          const poll = () => ${when === 'building' ? 'block()' : 'existsSync(tmp) ? block() : setImmediate(poll)'}
          dumpStateSliced(store, undefined, undefined, 2, ${JSON.stringify(path)}).then(() => process.stdout.write('finished\\n'))
          setImmediate(poll)
        `
        const child = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] })
        let out = ''
        await new Promise<void>((resolve, reject) => {
          child.stdout.on('data', (d: Buffer) => { out += d.toString(); if (out.includes('\n')) resolve() })
          child.once('exit', () => reject(new Error(`child exited early: ${out}`)))
        })
        const gone = new Promise(resolve => child.once('exit', (_code, signal) => resolve(signal)))
        child.kill('SIGKILL')
        assert.equal(await gone, 'SIGKILL')
        assert.equal(out, 'blocked\n')
        const s = decodeState(readFileSync(path))
        assert.equal(s.savedAt, 1)
        assert.equal(s.swarms.length, 100_000)
        // a temporary file (partly written) may be left; it is never the state file
        assert.deepEqual(readdirSync(dir).filter(n => !n.startsWith('state.bin.tmp-')), ['state.bin'])
        if (when === 'writing') assert.equal(readdirSync(dir).length, 2)
      } finally { rmSync(dir, { recursive: true, force: true }) }
    })
  }
})

describe('MemoryStore.torrentWalk', () => {
  it('names each live torrent once, in entry order; info() is the named torrent; a closed walk is no longer told of changes', () => {
    const s = new MemoryStore({ peerTtl: 100 })
    for (let n = 1; n <= 3; n++) s.announce(req(hash(n), httpV4(n)), NOW)
    s.announce(req(hash(2), httpV4(12), { seeder: true }), NOW)
    const w = s.torrentWalk()
    assert.throws(() => w.info(), { message: 'TorrentWalk.info: no torrent named' })
    assert.equal(w.next(), hash(1))
    assert.deepEqual(Array.from(w.info().peers(), ([k]) => k), [httpV4(1).addr])
    assert.equal(w.next(), hash(2))
    const info = w.info()
    assert.deepEqual([info.complete, info.incomplete, info.downloaded], [1, 1, 0])
    assert.deepEqual(Array.from(info.peers(), ([k, p]) => [k, p.seeder]), [[httpV4(2).addr, false], [httpV4(12).addr, true]])
    // t2 dropped after it was named: info() says so; t2 back behind the walk is not named again
    s.announce(req(hash(2), httpV4(2), { event: EVENT_STOPPED }), NOW)
    s.announce(req(hash(2), httpV4(12), { event: EVENT_STOPPED }), NOW)
    assert.throws(() => w.info(), { message: 'TorrentWalk.info: no torrent named' })
    s.announce(req(hash(2), httpV4(22)), NOW)
    assert.equal(w.next(), hash(3))
    assert.equal(w.next(), undefined)
    w.close()
    // closed: nothing more is named
    s.announce(req(hash(4), httpV4(4)), NOW)
    assert.equal(w.next(), undefined)
  })
})
