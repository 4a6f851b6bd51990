/**
 * The state file: swarms, `downloaded` counts and private-tracker accounting, so a restart loses
 * nothing.
 *
 * Format (version 1), big-endian. Binary rather than JSON lines: a peer is 31 or 43 bytes instead
 * of ~120 bytes of JSON, the 20-byte ids need no hex or base64 round trip, and one checksum over
 * the whole body catches truncation and corruption anywhere (the body is written in one go, so
 * there is nothing to gain from per-line recovery).
 *
 *   header (56 bytes): magic "BTTSTATE" · u32 version · u32 flags (0) · u64 body length ·
 *                      SHA-256 of the body (32 bytes; node:crypto, as zlib.crc32 is Node 22+)
 *   body:  f64 saved-at (ms since the epoch)
 *          u32 swarms, each: info hash[20] · f64 downloaded · u32 peers, each:
 *              u8 flags (bit 0 seeder, bit 1 IPv6) · address[6 | 18] · peer id[20] · u32 last seen (s)
 *          u32 retired torrents, each: info hash[20] · f64 downloaded
 *          u32 passkeys, each: u8 length · key (ASCII) · u8 source (0 file, 1 api) · f64 uploaded · f64 downloaded
 *          u32 last reports, each: u16 length · id (latin1) · f64 uploaded · f64 downloaded · u32 seen (s)
 *
 * Writes go to a temporary file, are fsynced, renamed over the old file, and the directory is
 * fsynced: a crash at any moment leaves either the old file or the new one, whole.
 */
import { createHash } from 'node:crypto'
import { open, rename, unlink } from 'node:fs/promises'
import { readFileSync, renameSync } from 'node:fs'
import { dirname } from 'node:path'
import type { BinaryString } from '../../protocol/common/types.js'
import type { Passkeys, PasskeySource, LastReport } from '../core/passkeys.js'
import { KIND_V4, KIND_V6, KIND_WS } from '../store/store.js'
import type { SwarmStore } from '../store/store.js'

export const STATE_MAGIC = 'BTTSTATE'
export const STATE_VERSION = 1
export const STATE_HEADER_LENGTH = 56

export interface SavedPeer { addr: BinaryString, peerId: BinaryString, seeder: boolean, lastSeen: number }
export interface SavedSwarm { infoHash: BinaryString, downloaded: number, peers: SavedPeer[] }
export interface SavedAccount { key: string, source: PasskeySource, uploaded: number, downloaded: number }

export interface SavedState {
  savedAt: number
  swarms: SavedSwarm[]
  retired: Array<[BinaryString, number]>
  accounts: SavedAccount[]
  reports: Array<[string, LastReport]>
}

/** A state file that cannot be used, and why (text for a log line). */
export class StateFileError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'StateFileError'
  }
}

// ---------------------------------------------------------------------------------------------
// Encoding

/** A growable byte buffer; writes never check bounds twice. */
class Writer {
  buf: Buffer
  len = 0

  constructor (size: number) { this.buf = Buffer.allocUnsafe(Math.max(size, 1024)) }

  private need (n: number): void {
    if (this.len + n <= this.buf.length) return
    let size = this.buf.length * 2
    while (size < this.len + n) size *= 2
    const b = Buffer.allocUnsafe(size)
    this.buf.copy(b, 0, 0, this.len)
    this.buf = b
  }

  u8 (v: number): void { this.need(1); this.buf[this.len++] = v }
  u16 (v: number): void { this.need(2); this.buf.writeUInt16BE(v, this.len); this.len += 2 }
  u32 (v: number): void { this.need(4); this.buf.writeUInt32BE(v >>> 0, this.len); this.len += 4 }
  f64 (v: number): void { this.need(8); this.buf.writeDoubleBE(v, this.len); this.len += 8 }
  latin1 (s: string): void {
    const n = s.length
    this.need(n)
    // Ids and addresses are 6–20 characters: a JS loop beats a call into Buffer.write for these.
    if (n <= 64) {
      const b = this.buf
      let at = this.len
      for (let i = 0; i < n; i++) b[at++] = s.charCodeAt(i)
      this.len = at
    } else this.len += this.buf.write(s, this.len, 'latin1')
  }
  /** Reserves a u32 to fill in later (counts known only after a walk). */
  hole (): number { this.need(4); this.len += 4; return this.len - 4 }
  fill (at: number, v: number): void { this.buf.writeUInt32BE(v >>> 0, at) }
}

/** Snapshot of the store (HTTP/UDP peers; WebSocket peers die with their sockets) and accounting. */
export function dumpState (store: SwarmStore, passkeys: Passkeys | undefined, carried: SavedState | undefined, nowMs: number): Buffer {
  // Sized from the store's counters up front: one allocation and no copies for a big state
  // (growth copies of tens of MB were most of the garbage-collection cost of a save).
  const c = store.counts
  const w = new Writer(STATE_HEADER_LENGTH + 32 + c.torrents * 32 + c.peers * 43 + c.retired * 28 +
    (passkeys?.size ?? 0) * 82 + (passkeys?.tracked ?? 0) * 128)
  w.len = STATE_HEADER_LENGTH // the header is filled in last, over these bytes
  w.f64(nowMs)
  const swarmCount = w.hole()
  let swarms = 0
  for (const infoHash of store.infoHashes()) {
    const info = store.swarmInfo(infoHash)
    if (info === undefined) continue
    w.latin1(infoHash)
    w.f64(info.downloaded)
    const peerCount = w.hole()
    let peers = 0
    for (const [, p] of info.peers()) {
      if (p.kind === KIND_WS) continue
      w.u8((p.seeder ? 1 : 0) | (p.kind === KIND_V6 ? 2 : 0))
      w.latin1(p.addr)
      w.latin1(p.peerId)
      w.u32(p.lastSeen)
      peers++
    }
    w.fill(peerCount, peers)
    swarms++
  }
  w.fill(swarmCount, swarms)

  const retiredCount = w.hole()
  let retired = 0
  for (const [infoHash, downloaded] of store.retired!()) {
    w.latin1(infoHash)
    w.f64(downloaded)
    retired++
  }
  w.fill(retiredCount, retired)

  // With private mode off, accounting read at start is carried over untouched, not dropped.
  const accounts = passkeys !== undefined ? Array.from(passkeys.list()) : (carried?.accounts ?? [])
  w.u32(accounts.length)
  for (const a of accounts) {
    w.u8(a.key.length)
    w.latin1(a.key)
    w.u8(a.source === 'api' ? 1 : 0)
    w.f64(a.uploaded)
    w.f64(a.downloaded)
  }
  const reports = passkeys !== undefined ? passkeys.reports() : (carried?.reports ?? [])[Symbol.iterator]()
  const reportCount = w.hole()
  let n = 0
  for (const [id, r] of reports) {
    w.u16(id.length)
    w.latin1(id)
    w.f64(r.uploaded)
    w.f64(r.downloaded)
    w.u32(r.seen)
    n++
  }
  w.fill(reportCount, n)

  const file = w.buf.subarray(0, w.len)
  const body = file.subarray(STATE_HEADER_LENGTH)
  file.write(STATE_MAGIC, 0, 'latin1')
  file.writeUInt32BE(STATE_VERSION, 8)
  file.writeUInt32BE(0, 12)
  file.writeBigUInt64BE(BigInt(body.length), 16)
  createHash('sha256').update(body).digest().copy(file, 24)
  return file
}

// ---------------------------------------------------------------------------------------------
// Decoding

class Reader {
  pos = 0
  constructor (private readonly b: Buffer) {}

  private take (n: number): number {
    const at = this.pos
    if (at + n > this.b.length) throw new StateFileError(`malformed body: ends inside a field at body byte ${at}`)
    this.pos += n
    return at
  }

  u8 (): number { return this.b[this.take(1)] }
  u16 (): number { return this.b.readUInt16BE(this.take(2)) }
  u32 (): number { return this.b.readUInt32BE(this.take(4)) }
  f64 (): number { return this.b.readDoubleBE(this.take(8)) }
  latin1 (n: number): string { const at = this.take(n); return this.b.toString('latin1', at, at + n) }
  get done (): boolean { return this.pos === this.b.length }
}

function count (v: number, what: string): number {
  if (!Number.isFinite(v) || v < 0) throw new StateFileError(`malformed body: bad ${what}`)
  return v
}

/** Decodes a whole state file. Throws StateFileError saying what is wrong. */
export function decodeState (file: Buffer): SavedState {
  if (file.length < STATE_HEADER_LENGTH) {
    throw new StateFileError(`truncated: ${file.length} bytes, shorter than the ${STATE_HEADER_LENGTH}-byte header`)
  }
  if (file.toString('latin1', 0, 8) !== STATE_MAGIC) throw new StateFileError('not a state file (bad magic)')
  const version = file.readUInt32BE(8)
  if (version !== STATE_VERSION) throw new StateFileError(`unsupported version ${version} (this tracker reads ${STATE_VERSION})`)
  const length = file.readBigUInt64BE(16)
  const actual = BigInt(file.length - STATE_HEADER_LENGTH)
  if (length !== actual) {
    throw new StateFileError(length > actual
      ? `truncated: header says ${length} body bytes, file has ${actual}`
      : `trailing garbage: header says ${length} body bytes, file has ${actual}`)
  }
  const body = file.subarray(STATE_HEADER_LENGTH)
  if (!createHash('sha256').update(body).digest().equals(file.subarray(24, 56))) {
    throw new StateFileError('checksum mismatch (the body is corrupt)')
  }
  const r = new Reader(body)
  const savedAt = r.f64()
  const swarms: SavedSwarm[] = []
  for (let i = 0, n = r.u32(); i < n; i++) {
    const infoHash = r.latin1(20)
    const downloaded = count(r.f64(), 'downloaded count')
    const peers: SavedPeer[] = []
    for (let j = 0, m = r.u32(); j < m; j++) {
      const flags = r.u8()
      if (flags > 3) throw new StateFileError(`malformed body: bad peer flags ${flags}`)
      const addr = r.latin1((flags & 2) !== 0 ? 18 : 6)
      peers.push({ addr, peerId: r.latin1(20), seeder: (flags & 1) !== 0, lastSeen: r.u32() })
    }
    swarms.push({ infoHash, downloaded, peers })
  }
  const retired: Array<[BinaryString, number]> = []
  for (let i = 0, n = r.u32(); i < n; i++) retired.push([r.latin1(20), count(r.f64(), 'downloaded count')])
  const accounts: SavedAccount[] = []
  for (let i = 0, n = r.u32(); i < n; i++) {
    const key = r.latin1(r.u8())
    const source = r.u8()
    if (source > 1) throw new StateFileError(`malformed body: bad passkey source ${source}`)
    accounts.push({ key, source: source === 1 ? 'api' : 'file', uploaded: count(r.f64(), 'uploaded'), downloaded: count(r.f64(), 'downloaded') })
  }
  const reports: Array<[string, LastReport]> = []
  for (let i = 0, n = r.u32(); i < n; i++) {
    const id = r.latin1(r.u16())
    reports.push([id, { uploaded: count(r.f64(), 'uploaded'), downloaded: count(r.f64(), 'downloaded'), seen: r.u32() }])
  }
  if (!r.done) throw new StateFileError('malformed body: bytes left after the last section')
  return { savedAt, swarms, retired, accounts, reports }
}

/**
 * Puts a saved state into an empty store and registry. Peers silent since before `cutoff`
 * (seconds) are left out: they would be expired at once. Passkeys from the API come back; file
 * keys get their accounting back only if the file still lists them (the file decides which
 * file keys exist).
 */
export function applyState (s: SavedState, store: SwarmStore, passkeys: Passkeys | undefined, cutoff: number): void {
  for (const sw of s.swarms) {
    for (const p of sw.peers) {
      if (p.lastSeen < cutoff) continue
      store.restorePeer!(sw.infoHash, p.addr, {
        peerId: p.peerId, addr: p.addr, kind: p.addr.length === 6 ? KIND_V4 : KIND_V6, seeder: p.seeder, lastSeen: p.lastSeen
      })
    }
    if (sw.downloaded > 0) store.setDownloaded!(sw.infoHash, sw.downloaded)
  }
  for (const [infoHash, downloaded] of s.retired) store.setDownloaded!(infoHash, downloaded)
  if (passkeys === undefined) return
  for (const a of s.accounts) {
    const live = passkeys.get(a.key)
    if (live !== undefined) {
      live.uploaded = a.uploaded
      live.downloaded = a.downloaded
    } else if (a.source === 'api') {
      try { passkeys.add(a.key, 'api', a.uploaded, a.downloaded) } catch { /* a malformed key is dropped */ }
    }
  }
  for (const [id, r] of s.reports) {
    if (passkeys.has(id.slice(0, id.indexOf('\u0000')))) passkeys.restoreReport(id, r)
  }
}

// ---------------------------------------------------------------------------------------------
// Files

export type LoadResult =
  | { ok: true, state: SavedState }
  | { ok: false, missing: true }
  | { ok: false, missing: false, error: string, movedTo: string | undefined }

/**
 * Reads and decodes `path`. A missing file is a first start. A file that cannot be used is moved
 * aside to `<path>.corrupt-<time>` (kept for inspection, never overwritten by the next save).
 */
export function loadStateFile (path: string, now = new Date()): LoadResult {
  let bytes: Buffer
  try {
    bytes = readFileSync(path)
  } catch (err) {
    const e = err as NodeJS.ErrnoException
    if (e.code === 'ENOENT') return { ok: false, missing: true }
    return { ok: false, missing: false, error: `cannot read: ${e.message}`, movedTo: undefined }
  }
  try {
    return { ok: true, state: decodeState(bytes) }
  } catch (err) {
    const error = err instanceof StateFileError ? err.message : `malformed body: ${(err as Error).message}`
    const movedTo = `${path}.corrupt-${now.toISOString().replace(/[:.]/g, '-')}`
    try {
      renameSync(path, movedTo)
      return { ok: false, missing: false, error, movedTo }
    } catch (e) {
      return { ok: false, missing: false, error: `${error}; could not move it aside: ${(e as Error).message}`, movedTo: undefined }
    }
  }
}

/** Writes `bytes` to `path` atomically and durably: temp file → fsync → rename → fsync directory. */
export async function writeStateFile (path: string, bytes: Uint8Array): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`
  const fh = await open(tmp, 'w', 0o600)
  try {
    await fh.writeFile(bytes)
    await fh.sync()
  } catch (err) {
    await fh.close().catch(() => undefined)
    await unlink(tmp).catch(() => undefined)
    throw err
  }
  await fh.close()
  try {
    await rename(tmp, path)
  } catch (err) {
    await unlink(tmp).catch(() => undefined)
    throw err
  }
  // The rename is durable only once the directory entry is on disk.
  const dir = await open(dirname(path), 'r')
  try { await dir.sync() } finally { await dir.close() }
}
