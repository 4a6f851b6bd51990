/**
 * HTTP scrape (BEP 48): `/scrape?info_hash=…&info_hash=…` → `files` keyed by the RAW 20-byte
 * hash. Keys stay binary strings end to end; no UTF-8 or hex step touches them.
 */

import { ID_LENGTH, MAX_SCRAPE_HASHES } from '../../constants.js'
import { trackerError } from '../../errors.js'
import { bdecodeDict, bdict, bstr, buint } from '../common/bencode.js'
import { binaryToBytes, isId } from '../common/binary.js'
import { fail, ok, type Result } from '../common/result.js'
import type { BinaryString, ScrapeEntry, ScrapeRequest } from '../common/types.js'
import { parseQuery, percentEncodeBytes } from './query.js'

/**
 * Decode a scrape query: every `info_hash` must be 20 bytes (INVALID_INFO_HASH); repeats are
 * folded, keeping first-seen order; more than `maxHashes` distinct ones is TOO_MANY_HASHES.
 * None at all → an empty list, meaning a full scrape (whether to allow it is the server's call).
 * Other params are ignored.
 */
export function decodeScrapeQuery (query: string, maxHashes: number = MAX_SCRAPE_HASHES): Result<ScrapeRequest> {
  const parsed = parseQuery(query)
  if (!parsed.ok) return parsed
  const infoHashes: BinaryString[] = []
  let seen: Set<string> | undefined
  for (const { name, value } of parsed.value) {
    if (name !== 'info_hash') continue
    if (value.length !== ID_LENGTH) return fail(trackerError('INVALID_INFO_HASH', `${value.length} bytes, need ${ID_LENGTH}`))
    // A set only once there is more than one hash: the common scrape asks for one.
    if (infoHashes.length === 0) {
      infoHashes.push(value)
      continue
    }
    if (seen === undefined) seen = new Set(infoHashes)
    if (seen.has(value)) continue
    if (infoHashes.length >= maxHashes) return fail(trackerError('TOO_MANY_HASHES', `more than ${maxHashes}`))
    seen.add(value)
    infoHashes.push(value)
  }
  return ok({ infoHashes })
}

function count (v: number, what: string): number {
  if (!Number.isSafeInteger(v) || v < 0) throw new TypeError(`scrape response: bad ${what}: ${v}`)
  return v
}

/**
 * Bencode a scrape response: `files` maps each raw hash to `{complete, downloaded, incomplete}`
 * (entries sorted by hash bytes, a repeated hash written once), then BEP 48
 * `flags: {min_request_interval}` (seconds) when given. Entries from the server itself: a hash
 * that is not 20 bytes, or a bad count, is a bug and throws a TypeError.
 */
export function encodeScrapeResponse (entries: ScrapeEntry[], opts?: { minRequestInterval?: number }): Uint8Array {
  const sorted = entries.length > 1 ? entries.slice().sort(byHash) : entries
  // Everything written is ASCII or a raw hash byte, so one binary string converts in one pass.
  let s = 'd5:filesd'
  let last: string | undefined
  for (const e of sorted) {
    if (!isId(e.infoHash)) throw new TypeError('scrape response: info hash is not 20 bytes')
    if (e.infoHash === last) continue
    last = e.infoHash
    s += `20:${e.infoHash}d8:completei${count(e.complete, 'complete')}e` +
      `10:downloadedi${count(e.downloaded, 'downloaded')}e10:incompletei${count(e.incomplete, 'incomplete')}ee`
  }
  s += 'e'
  const mri = opts?.minRequestInterval
  if (mri !== undefined) s += `5:flagsd20:min_request_intervali${count(mri, 'minRequestInterval')}ee`
  return binaryToBytes(s + 'e')
}

function byHash (a: ScrapeEntry, b: ScrapeEntry): number {
  // Binary strings: code-unit order is byte order.
  return a.infoHash < b.infoHash ? -1 : a.infoHash > b.infoHash ? 1 : 0
}

/** The scrape query string for these hashes (binary strings), without the leading `?`. */
export function encodeScrapeQuery (infoHashes: readonly BinaryString[]): string {
  let q = ''
  for (const h of infoHashes) q += (q.length > 0 ? '&info_hash=' : 'info_hash=') + percentEncodeBytes(h)
  return q
}

export interface ScrapeResponse {
  /** The tracker refused (`failure reason`); `files` is empty then. */
  failure?: string
  /** Entries keyed by raw 20-byte hash; a tracker may leave out hashes it does not know. */
  files: ScrapeEntry[]
  /** BEP 48 `flags.min_request_interval`, seconds. */
  minRequestInterval?: number
}

/**
 * Decode a scrape response body. A `files` key that is not 20 bytes, or whose value is not a
 * dict, is skipped; a missing or invalid count reads as 0. Not a bencoded dict → INVALID_PACKET.
 */
export function decodeScrapeResponse (bytes: Uint8Array): Result<ScrapeResponse> {
  const decoded = bdecodeDict(bytes, 'scrape response')
  if (!decoded.ok) return decoded
  const d = decoded.value
  const out: ScrapeResponse = { files: [] }
  const failure = bstr(d['failure reason'])
  if (failure !== undefined) {
    out.failure = failure
    return ok(out)
  }
  // A refusal of the wrong type is still a refusal, not an answer with every field missing.
  if (d['failure reason'] !== undefined) return fail(trackerError('INVALID_PACKET', 'failure reason is not a string'))
  const files = bdict(d.files)
  if (files !== undefined) {
    for (const infoHash of Object.keys(files)) {
      if (infoHash.length !== ID_LENGTH) continue
      const f = bdict(files[infoHash])
      if (f === undefined) continue
      out.files.push({
        infoHash,
        complete: buint(f.complete) ?? 0,
        incomplete: buint(f.incomplete) ?? 0,
        downloaded: buint(f.downloaded) ?? 0
      })
    }
  }
  const mri = buint(bdict(d.flags)?.min_request_interval)
  if (mri !== undefined) out.minRequestInterval = mri
  return ok(out)
}

/**
 * BEP 48: the scrape URL of an announce URL replaces `announce` at the start of the last path
 * segment with `scrape` (`/x/announce.php?k=1` → `/x/scrape.php?k=1`). undefined when that
 * segment does not start with `announce` — the tracker does not support scrape.
 */
export function announceToScrapeUrl (url: string): string | undefined {
  if (typeof url !== 'string') return undefined
  let end = url.length
  const q = url.indexOf('?')
  if (q >= 0) end = q
  const h = url.indexOf('#')
  if (h >= 0 && h < end) end = h
  // The path starts after "scheme://authority"; a slash inside "//" is not a path separator.
  const scheme = url.indexOf('://')
  const pathStart = url.indexOf('/', scheme >= 0 && scheme < end ? scheme + 3 : 0)
  if (pathStart < 0 || pathStart >= end) return undefined
  const slash = url.lastIndexOf('/', end - 1)
  if (slash < pathStart) return undefined
  if (!url.startsWith('announce', slash + 1) || slash + 1 + 8 > end) return undefined
  return url.slice(0, slash + 1) + 'scrape' + url.slice(slash + 9)
}
