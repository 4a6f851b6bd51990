/**
 * The state file: swarms, `downloaded` counts and private-tracker accounting, so a restart loses
 * nothing.
 *
 * Format (version 1), big-endian. Binary rather than JSON lines: a peer is 31 or 43 bytes instead
 * of ~120 bytes of JSON, the 20-byte ids need no hex or base64 round trip, and one checksum over
 * the whole body catches truncation and corruption anywhere (a file replaces the old one whole, so
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
 * A save is built in slices between which the event loop runs (encodeState says what a file
 * holds when the store changes meanwhile), checksummed a piece at a time, then written with
 * async I/O to a temporary file, fsynced, renamed over the old file, and the directory is
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
import { STATE_SAVE_PIECE_BYTES, STATE_SAVE_SLICE_MS } from '../../constants.js'

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

/**
 * The file being built, in pieces of STATE_SAVE_PIECE_BYTES (no growth copies of tens of MB, and
 * each piece hashed and written on its own). A field never straddles two pieces.
 */
class Pieces {
  readonly done: Buffer[] = []
  buf = Buffer.allocUnsafe(STATE_SAVE_PIECE_BYTES)
  len = 0

  private need (n: number): void {
    if (this.len + n <= this.buf.length) return
    this.done.push(this.buf.subarray(0, this.len))
    this.buf = Buffer.allocUnsafe(Math.max(STATE_SAVE_PIECE_BYTES, n))
    this.len = 0
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
  /** Reserves a u32 to fill in later (counts known only after a walk): its piece and offset. */
  hole (): [Buffer, number] { this.need(4); this.len += 4; return [this.buf, this.len - 4] }
  /** The pieces, the last one cut to its length. */
  finish (): Buffer[] {
    if (this.len > 0) this.done.push(this.buf.subarray(0, this.len))
    this.buf = Buffer.alloc(0)
    this.len = 0
    return this.done
  }
}

/** Hashing a piece (~1 MiB, a few ms) counts as this much work: enough to look at the clock. */
const PIECE_WORK = 64

function fill ([buf, at]: [Buffer, number], v: number): void { buf.writeUInt32BE(v >>> 0, at) }

/**
 * Says when a slice of work is over: called with the work just done (1 a torrent, retired
 * torrent, key or report, plus 1 a peer written, PIECE_WORK a piece hashed); true ends the slice.
 */
export type SliceEnd = (work: number) => boolean

/**
 * Builds the state file into `out` (pieces in order, header included), yielding whenever
 * `end` says a slice is over so the caller can let the event loop run.
 *
 * Snapshot semantics while the store changes between slices: each torrent is written as it is
 * when its slice reaches it (peers announced or expired after that are in the next save); every
 * torrent live when the walk ends is in the file exactly once (with `store.torrentWalk`); a
 * torrent written and then dropped stays as written, and its `downloaded` may also be among the
 * retired, read later: on load the retired count, the newer, wins. Retired torrents, keys and
 * reports are written as they are when their slice runs.
 */
export function * encodeState (
  store: SwarmStore, passkeys: Passkeys | undefined, carried: SavedState | undefined, nowMs: number,
  out: Buffer[], end: SliceEnd
): Generator<void, void, void> {
  const w = new Pieces()
  w.len = STATE_HEADER_LENGTH // the header is filled in last, over these bytes
  w.f64(nowMs)
  const swarmCount = w.hole()
  let swarms = 0
  const walk = store.torrentWalk?.()
  const hashes = walk === undefined ? store.infoHashes() : undefined
  try {
    for (;;) {
      let infoHash: BinaryString | undefined
      if (walk !== undefined) infoHash = walk.next()
      else {
        const r = hashes!.next()
        infoHash = r.done === true ? undefined : r.value
      }
      if (infoHash === undefined) break
      const info = walk !== undefined ? walk.info() : store.swarmInfo(infoHash)
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
      fill(peerCount, peers)
      swarms++
      if (end(1 + peers)) yield
    }
  } finally {
    walk?.close()
  }
  fill(swarmCount, swarms)

  const retiredCount = w.hole()
  let retired = 0
  for (const [infoHash, downloaded] of store.retired!()) {
    w.latin1(infoHash)
    w.f64(downloaded)
    retired++
    if (end(1)) yield
  }
  fill(retiredCount, retired)

  // With private mode off, accounting read at start is carried over untouched, not dropped.
  const accounts = passkeys !== undefined ? passkeys.list() : (carried?.accounts ?? [])[Symbol.iterator]()
  const accountCount = w.hole()
  let keys = 0
  for (const a of accounts) {
    w.u8(a.key.length)
    w.latin1(a.key)
    w.u8(a.source === 'api' ? 1 : 0)
    w.f64(a.uploaded)
    w.f64(a.downloaded)
    keys++
    if (end(1)) yield
  }
  fill(accountCount, keys)
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
    if (end(1)) yield
  }
  fill(reportCount, n)

  const pieces = w.finish()
  let bodyLength = -STATE_HEADER_LENGTH
  for (const p of pieces) bodyLength += p.length
  // The checksum a piece at a time (~1 MiB: a few ms each).
  const hash = createHash('sha256')
  for (let i = 0; i < pieces.length; i++) {
    hash.update(i === 0 ? pieces[0].subarray(STATE_HEADER_LENGTH) : pieces[i])
    if (end(PIECE_WORK) && i < pieces.length - 1) yield
  }
  const head = pieces[0]
  head.write(STATE_MAGIC, 0, 'latin1')
  head.writeUInt32BE(STATE_VERSION, 8)
  head.writeUInt32BE(0, 12)
  head.writeBigUInt64BE(BigInt(bodyLength), 16)
  hash.digest().copy(head, 24)
  for (const p of pieces) out.push(p)
}

/** Snapshot of the store (HTTP/UDP peers; WebSocket peers die with their sockets) and accounting, in one go. */
export function dumpState (store: SwarmStore, passkeys: Passkeys | undefined, carried: SavedState | undefined, nowMs: number): Buffer {
  const out: Buffer[] = []
  const run = encodeState(store, passkeys, carried, nowMs, out, () => false)
  while (run.next().done !== true);
  return out.length === 1 ? out[0] : Buffer.concat(out)
}

/** Options of dumpStateSliced (tests pass `sliceWork` to cut slices by work, not time). */
export interface SliceOptions {
  /** Length of a slice, ms (default STATE_SAVE_SLICE_MS). */
  sliceMs?: number
  /** Instead: slices of this much work (see SliceEnd), whatever the time. */
  sliceWork?: number
  /** Runs between slices (tests change the store here). */
  between?: () => void
}

/**
 * Builds the state file in slices, letting the event loop run between them (setImmediate: I/O
 * first), then writes it like writeStateFile. The event loop stalls at most about a slice, plus
 * the time of one torrent's peers or one piece's checksum.
 */
export async function dumpStateSliced (
  store: SwarmStore, passkeys: Passkeys | undefined, carried: SavedState | undefined, nowMs: number,
  path: string, opts: SliceOptions = {}
): Promise<void> {
  const out: Buffer[] = []
  const ms = opts.sliceMs ?? STATE_SAVE_SLICE_MS
  const per = opts.sliceWork
  let work = 0
  let deadline = performance.now() + ms
  const end: SliceEnd = per !== undefined
    ? n => { work += n; if (work < per) return false; work = 0; return true }
    // The clock is read every PIECE_WORK units of work, so a slice overruns by at most that much.
    : n => { work += n; if (work < PIECE_WORK) return false; work = 0; return performance.now() >= deadline }
  const run = encodeState(store, passkeys, carried, nowMs, out, end)
  try {
    while (run.next().done !== true) {
      await new Promise(resolve => setImmediate(resolve))
      opts.between?.()
      deadline = performance.now() + ms
    }
  } finally {
    run.return() // abandoned half-way: the store's walk is closed
  }
  await writeStateFile(path, out)
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

/**
 * Writes `bytes` (one buffer or pieces in order) to `path` atomically and durably: temp file →
 * fsync → rename → fsync directory. On failure the temp file is removed and the old file stays.
 */
export async function writeStateFile (path: string, bytes: Uint8Array | readonly Uint8Array[]): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`
  const pieces = bytes instanceof Uint8Array ? [bytes] : bytes
  const fh = await open(tmp, 'w', 0o600)
  try {
    let at = 0
    for (const p of pieces) {
      // One piece per call (async, off the event loop); a short write goes on from where it stopped.
      for (let done = 0; done < p.length;) {
        const { bytesWritten } = await fh.write(p, done, p.length - done, at)
        done += bytesWritten
        at += bytesWritten
      }
    }
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
