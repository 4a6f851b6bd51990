import { randomBytes } from 'node:crypto'
import { MAX_ACCOUNTING_PEERS, PASSKEY_PATTERN, PASSKEY_RANDOM_BYTES } from '../../constants.js'
import { trackerError } from '../../errors.js'
import type { TrackerError } from '../../errors.js'
import { EVENT_STARTED, EVENT_STOPPED } from '../../protocol/common/types.js'
import type { AnnounceEvent, BinaryString } from '../../protocol/common/types.js'

/** Where a passkey came from: the keys file / `keys` option, or the admin API. */
export type PasskeySource = 'file' | 'api'

export interface Account {
  readonly key: string
  source: PasskeySource
  /** Sum of upload deltas reported under this key, bytes. */
  uploaded: number
  /** Sum of download deltas reported under this key, bytes. */
  downloaded: number
}

/** The counters a peer last reported under one key in one swarm (to turn totals into deltas). */
export interface LastReport {
  uploaded: number
  downloaded: number
  /** Seconds (tracker clock) of the report: entries expire with their peer. */
  seen: number
}

export function isValidPasskey (key: string): boolean {
  return PASSKEY_PATTERN.test(key)
}

/**
 * Private tracker mode: the set of valid passkeys, with per-key upload/download accounting.
 *
 * Clients report running totals (since their session started); the account adds the difference
 * to the last report of the same (key, torrent, peer). A total lower than the last one (the client
 * restarted) counts as a fresh start: the new total is the delta. `started` starts over, `stopped`
 * forgets the peer after counting. Remembered reports are an LRU: re-inserted on every report,
 * so the oldest sit first and expiry stops at the first fresh one.
 */
export class Passkeys {
  private readonly accounts = new Map<string, Account>()
  private readonly last = new Map<string, LastReport>()

  constructor (private readonly maxPeers = MAX_ACCOUNTING_PEERS) {}

  get size (): number { return this.accounts.size }
  /** Remembered (key, torrent, peer) reports. */
  get tracked (): number { return this.last.size }

  /** null when `key` may announce; else the failure to send. Cheap: one Map lookup. */
  check (key: string | undefined): TrackerError | null {
    if (key === undefined || key === '') return trackerError('PASSKEY_REQUIRED')
    return this.accounts.has(key) ? null : trackerError('UNKNOWN_PASSKEY')
  }

  has (key: string): boolean { return this.accounts.has(key) }
  get (key: string): Account | undefined { return this.accounts.get(key) }
  list (): IterableIterator<Account> { return this.accounts.values() }
  reports (): IterableIterator<[string, LastReport]> { return this.last.entries() }

  /** Adds a key (a fresh random one when `key` is undefined). Throws on a malformed key. */
  add (key: string | undefined, source: PasskeySource, uploaded = 0, downloaded = 0): Account {
    const k = key ?? randomBytes(PASSKEY_RANDOM_BYTES).toString('hex')
    if (!isValidPasskey(k)) throw new RangeError(`invalid passkey (16–64 characters A-Z a-z 0-9): ${JSON.stringify(k.slice(0, 80))}`)
    const existing = this.accounts.get(k)
    if (existing !== undefined) return existing
    const a: Account = { key: k, source, uploaded, downloaded }
    this.accounts.set(k, a)
    return a
  }

  /** Removes a key; its remembered reports go when they expire. Returns the removed account. */
  delete (key: string): Account | undefined {
    const a = this.accounts.get(key)
    if (a !== undefined) this.accounts.delete(key)
    return a
  }

  /**
   * Counts one accepted announce. `peer` identifies the peer within the swarm (compact address for
   * HTTP/UDP, peer id for WS); totals are what the client reported.
   */
  account (key: string, infoHash: BinaryString, peer: BinaryString, event: AnnounceEvent, uploaded: number, downloaded: number, now: number): void {
    const a = this.accounts.get(key)
    if (a === undefined) return
    const id = key + '\u0000' + infoHash + peer
    const prev = event === EVENT_STARTED ? undefined : this.last.get(id)
    a.uploaded += delta(prev?.uploaded, uploaded)
    a.downloaded += delta(prev?.downloaded, downloaded)
    this.last.delete(id)
    if (event === EVENT_STOPPED) return
    this.remember(id, { uploaded, downloaded, seen: now })
  }

  /** Restores a remembered report (state file). */
  restoreReport (id: string, r: LastReport): void {
    this.last.delete(id)
    this.remember(id, r)
  }

  /** Forgets reports older than `cutoff` seconds. Visits only the expired ones (LRU order). */
  expire (cutoff: number): number {
    let n = 0
    for (const [id, r] of this.last) {
      if (r.seen >= cutoff) break
      this.last.delete(id)
      n++
    }
    return n
  }

  private remember (id: string, r: LastReport): void {
    this.last.set(id, r)
    if (this.last.size > this.maxPeers) this.last.delete(this.last.keys().next().value!)
  }
}

/** What a new total adds: the growth since `prev`, or the whole total after a restart. */
function delta (prev: number | undefined, total: number): number {
  if (!(total > 0) || !Number.isFinite(total)) return 0
  return prev === undefined || total < prev ? total : total - prev
}
