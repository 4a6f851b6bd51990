import { EventEmitter } from 'node:events'
import { readFileSync, statSync, watch } from 'node:fs'
import type { FSWatcher } from 'node:fs'
import { readFile, stat } from 'node:fs/promises'
import { basename, dirname, resolve } from 'node:path'
import { ACCESS_LIST_DEBOUNCE_MS, ACCESS_LIST_MAX_BYTES, ID_LENGTH } from '../../constants.js'
import { TrackerError, trackerError } from '../../errors.js'
import type { BinaryString } from '../../protocol/common/types.js'
import { parseInfoHashList } from './list-file.js'

export interface AccessListOptions {
  /** File of the only info hashes served (see list-file.ts for the format). */
  allowlist?: string
  /** File of info hashes refused. Exclusive with `allowlist`. */
  denylist?: string
  /** Peer id prefixes (e.g. `-qB`, `-TR`) of the only clients served (announce only). */
  clientAllow?: readonly string[]
  /** Peer id prefixes of clients refused (announce only). */
  clientDeny?: readonly string[]
  /** Re-read the file when it changes (fs.watch on its directory). Default true. */
  watch?: boolean
}

/**
 * @internal What a worker thread needs to check requests as a list does (plain data for
 * postMessage): the mode, the binary client prefixes and the info hashes, 20 bytes each.
 */
export interface AccessListData {
  mode: 'allow' | 'deny' | 'none'
  clientAllow: BinaryString[]
  clientDeny: BinaryString[]
  hashes: Uint8Array
}

/** A list file that cannot be read or parsed; `line` when the parser names one. */
export class AccessListError extends Error {
  /** For a failed reload: what triggered it. */
  reason: string | undefined
  constructor (readonly file: string, message: string, readonly line?: number) {
    super(`access list ${file}${line !== undefined ? `, line ${line}` : ''}: ${message}`)
    this.name = 'AccessListError'
  }
}

/**
 * Which torrents and clients a tracker serves: an allow- or deny-list of info hashes read from a
 * file, and allow/deny lists of peer id prefixes. `check` is a Set lookup on the binary info
 * hash (no hex on the hot path). A reload (`reload()`, or a change of the file when watching)
 * parses the new file completely, then swaps the Set in one assignment: requests never wait,
 * and a file that fails to read or parse leaves the previous list in force.
 *
 * Events: `reload` `{ file, count, reason }` after a successful reload (`reason`: what
 * `reload` was given; `'change'` for the watcher); `warning` an AccessListError (with `reason`)
 * when a reload failed (the old list stays). The list belongs to whoever made it: `close()` it
 * (stops the watcher) when done; Server.close() leaves it alone, so one list may serve several
 * servers.
 */
export class AccessList extends EventEmitter {
  readonly mode: 'allow' | 'deny' | 'none'
  readonly file: string | undefined
  private hashes: Set<BinaryString>
  private readonly clientAllow: BinaryString[]
  private readonly clientDeny: BinaryString[]
  // One error object per refusal kind: refusing allocates nothing.
  private readonly torrentRefused = trackerError('TORRENT_NOT_ALLOWED')
  private readonly clientRefused = trackerError('CLIENT_NOT_ALLOWED')
  private watcher: FSWatcher | undefined
  private debounce: NodeJS.Timeout | undefined
  private generation = 0

  /**
   * Reads the list file synchronously (start-up); throws AccessListError or a TypeError for bad
   * options. (`data`: internal, see `fromData`.)
   */
  constructor (opts: AccessListOptions = {}, data?: AccessListData) {
    super()
    if (data !== undefined) {
      this.mode = data.mode
      this.file = undefined
      this.clientAllow = [...data.clientAllow]
      this.clientDeny = [...data.clientDeny]
      this.hashes = hashSet(data.hashes)
      return
    }
    if (opts.allowlist !== undefined && opts.denylist !== undefined) throw new TypeError('allowlist and denylist are mutually exclusive')
    const file = opts.allowlist ?? opts.denylist
    this.mode = opts.allowlist !== undefined ? 'allow' : opts.denylist !== undefined ? 'deny' : 'none'
    this.file = file === undefined ? undefined : resolve(file)
    this.clientAllow = prefixes(opts.clientAllow, 'clientAllow')
    this.clientDeny = prefixes(opts.clientDeny, 'clientDeny')
    this.hashes = this.file === undefined ? new Set() : parseOrThrow(this.file, readSync(this.file))
    if (this.file !== undefined && opts.watch !== false) this.startWatching(this.file)
  }

  /** Info hashes in the list. */
  get size (): number { return this.hashes.size }

  /** @internal The list as plain data, for worker threads (`fromData`, `replaceHashes`). */
  toData (): AccessListData {
    const hashes = new Uint8Array(this.hashes.size * ID_LENGTH)
    let at = 0
    for (const h of this.hashes) { hashes.set(Buffer.from(h, 'latin1'), at); at += ID_LENGTH }
    return { mode: this.mode, clientAllow: this.clientAllow, clientDeny: this.clientDeny, hashes }
  }

  /**
   * @internal A copy of a list made by `toData` in another thread: no file and no watcher; the
   * owner of the original sends each reloaded list (`replaceHashes`).
   */
  static fromData (data: AccessListData): AccessList {
    return new AccessList({ watch: false }, data)
  }

  /** @internal Swaps in the info hashes of a reloaded list (20 bytes each), in one assignment. */
  replaceHashes (hashes: Uint8Array): void {
    this.hashes = hashSet(hashes)
  }

  /** null when `infoHash` (and the client, when `peerId` is given) may be served. */
  check (infoHash: BinaryString, peerId?: BinaryString): TrackerError | null {
    if (this.mode !== 'none' && this.hashes.has(infoHash) !== (this.mode === 'allow')) return this.torrentRefused
    if (peerId !== undefined && (this.clientAllow.length > 0 || this.clientDeny.length > 0)) {
      if (this.clientAllow.length > 0 && !hasPrefix(peerId, this.clientAllow)) return this.clientRefused
      if (hasPrefix(peerId, this.clientDeny)) return this.clientRefused
    }
    return null
  }

  /** Whether the torrent may be served (the info-hash list only). */
  allows (infoHash: BinaryString): boolean {
    return this.mode === 'none' || this.hashes.has(infoHash) === (this.mode === 'allow')
  }

  /**
   * Re-reads the file. Resolves true when the new list is in force; false when reading or
   * parsing failed (a `warning` is emitted and the previous list stays) or a newer reload
   * overtook this one.
   */
  async reload (reason = 'reload'): Promise<boolean> {
    const file = this.file
    if (file === undefined) return true
    const gen = ++this.generation
    let next: Set<BinaryString>
    try {
      const st = await stat(file)
      if (st.size > ACCESS_LIST_MAX_BYTES) throw new AccessListError(file, `larger than ${ACCESS_LIST_MAX_BYTES} bytes`)
      next = parseOrThrow(file, await readFile(file, 'latin1'))
    } catch (err) {
      const e = err instanceof AccessListError ? err : new AccessListError(file, (err as Error).message)
      e.reason = reason
      if (this.listenerCount('warning') > 0) this.emit('warning', e)
      return false
    }
    if (gen !== this.generation) return false
    this.hashes = next
    this.emit('reload', { file, count: next.size, reason })
    return true
  }

  /** Stops watching the file. */
  close (): void {
    this.watcher?.close()
    this.watcher = undefined
    if (this.debounce !== undefined) clearTimeout(this.debounce)
  }

  private startWatching (file: string): void {
    const name = basename(file)
    // The directory, not the file: an editor or `mv` replaces the file, and a watch on the old
    // inode would go silent.
    this.watcher = watch(dirname(file), { persistent: false }, (_event, changed) => {
      if (changed !== null && changed !== name) return
      if (this.debounce !== undefined) clearTimeout(this.debounce)
      this.debounce = setTimeout(() => {
        this.debounce = undefined
        this.reload('change').catch(() => undefined)
      }, ACCESS_LIST_DEBOUNCE_MS)
      this.debounce.unref()
    })
    this.watcher.on('error', (err: Error) => {
      if (this.listenerCount('warning') > 0) this.emit('warning', new AccessListError(file, `watch failed: ${err.message}`))
    })
  }
}

function hashSet (hashes: Uint8Array): Set<BinaryString> {
  const out = new Set<BinaryString>()
  const b = Buffer.from(hashes.buffer, hashes.byteOffset, hashes.byteLength)
  for (let at = 0; at + ID_LENGTH <= b.length; at += ID_LENGTH) out.add(b.toString('latin1', at, at + ID_LENGTH))
  return out
}

function readSync (file: string): string {
  try {
    if (statSync(file).size > ACCESS_LIST_MAX_BYTES) throw new AccessListError(file, `larger than ${ACCESS_LIST_MAX_BYTES} bytes`)
    return readFileSync(file, 'latin1')
  } catch (err) {
    if (err instanceof AccessListError) throw err
    throw new AccessListError(file, (err as Error).message)
  }
}

function parseOrThrow (file: string, text: string): Set<BinaryString> {
  const r = parseInfoHashList(text)
  if (!r.ok) throw new AccessListError(file, r.error, r.line)
  return r.hashes
}

function prefixes (list: readonly string[] | undefined, name: string): BinaryString[] {
  if (list === undefined) return []
  return list.map(p => {
    if (typeof p !== 'string' || p.length === 0 || p.length > ID_LENGTH) throw new TypeError(`${name}: a peer id prefix is 1 to ${ID_LENGTH} characters`)
    return Buffer.from(p, 'utf8').toString('latin1')
  })
}

function hasPrefix (peerId: BinaryString, list: readonly BinaryString[]): boolean {
  for (let i = 0; i < list.length; i++) if (peerId.startsWith(list[i])) return true
  return false
}
