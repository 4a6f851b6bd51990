import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { EVENT_COMPLETED, EVENT_STARTED, EVENT_STOPPED } from '../../../src/protocol/common/types.js'
import { Passkeys } from '../../../src/server/core/passkeys.js'
import {
  STATE_HEADER_LENGTH, applyState, decodeState, dumpState, loadStateFile, writeStateFile
} from '../../../src/server/persist/state-file.js'
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
