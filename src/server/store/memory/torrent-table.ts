import { randomBytes } from 'node:crypto'

/**
 * The torrents of the in-memory store: fixed 52-byte entries in chunks of Uint32Arrays, found by
 * their 20-byte info hash through an open-addressing index. No JS object, Map entry or string per
 * torrent: at one peer per torrent those cost ~180 bytes, more than three times the entry.
 *
 * Entry (ENTRY_WORDS = 13 little-endian uint32 words):
 *
 *     bytes 0..19   info hash (byte i of the hash is byte i of the entry)
 *     bytes 20..51  the store's 32 bytes (memory-store.ts says what they hold); byte 27 (TAG_BYTE)
 *                   is the entry's tag, 0 (TAG_FREE) for an unused entry, whose bytes 20..23
 *                   then link the free list (next free entry + 1, 0 at the end)
 *
 * Entries are numbered densely (chunk = e >>> 12, word = (e & 0xfff) * 13) and never move, so
 * the store can hold an entry number; freed entries are reused, last freed first. Chunks are
 * 2^12 entries (208 KiB: little unused at the end, even for a small store; the chunk objects cost
 * ~0.1 B per entry) and are kept at the store's peak (like the arena's).
 *
 * Index: Int32Array of 2^k slots, linear probing, each slot 0 (empty) or entry + 1 in the low 27
 * bits with 5 more bits of the hash above them, so most probes that do not match are rejected
 * without touching the entry (a cache miss each). The hash mixes all 20 bytes with a per-process
 * random seed (clients choose info hashes: unseeded, some could be made to share a probe chain).
 * Deletion leaves a tombstone (TOMB; one index write: shifting the run back instead would read
 * the entry of every slot it moves, a cache miss each, which made an expiry step of 20,000
 * one-peer torrents take ~10 ms); inserts reuse tombstones, and an index whose live and dead
 * slots pass 0.7 is rebuilt (the same size when it is mostly tombstones). At most 0.7 full (with the tag bits a probe is one read, mostly in the same cache line): at 1M
 * torrents the index is 2^21 slots (8 bytes per torrent), at 10M 2^24 (6.7 bytes).
 *
 * Resizing never stalls: a new index (twice as large, the same, or half as large under 1/8 load)
 * is filled incrementally by walking the entries, a few per insert or delete (`migrate`), while the
 * old index, kept complete, answers lookups. Inserts and deletes go to both indexes for entries
 * the walk has passed, to the old one only for the rest (the walk adds them when it gets there).
 */
export const ENTRY_WORDS = 13
export const ENTRY_BYTES = ENTRY_WORDS * 4
export const ENTRY_SHIFT = 12
export const ENTRY_MASK = (1 << ENTRY_SHIFT) - 1
/** First word of the store's area; byte of the tag (in the entry). */
export const W_AREA = 5
export const B_TAG = 27
export const TAG_FREE = 0

const MAX_ENTRIES = (1 << 27) - 2
/** A dead slot: its reference part (2^27 - 1) is never a live entry's. */
const TOMB = -1
const REF_MASK = (1 << 27) - 1
const MIN_SLOTS = 1 << 10

export class EntryChunk {
  readonly u32: Uint32Array
  readonly u16: Uint16Array
  readonly u8: Buffer
  constructor () {
    this.u8 = Buffer.alloc((1 << ENTRY_SHIFT) * ENTRY_BYTES)
    this.u32 = new Uint32Array(this.u8.buffer, this.u8.byteOffset, this.u8.length >> 2)
    this.u16 = new Uint16Array(this.u8.buffer, this.u8.byteOffset, this.u8.length >> 1)
  }
}

export class TorrentTable {
  readonly chunks: EntryChunk[] = []
  /** Entries ever handed out (live or free): they are numbered 0 .. end - 1. */
  end = 0
  /** Live entries. */
  size = 0
  private freeHead = 0
  private index: Int32Array = new Int32Array(MIN_SLOTS)
  /** The index being filled, the next entry its walk adds, and entries to walk per call. */
  private next: Int32Array | undefined = undefined
  private walk = 0
  private walkPer = 0
  /** Dead slots (tombstones) in the index and in the one being filled. */
  private tombs = 0
  private nextTombs = 0
  private readonly seed: number
  // The key of the last `find`, as words, and its hash (no allocation per lookup).
  private k0 = 0
  private k1 = 0
  private k2 = 0
  private k3 = 0
  private k4 = 0
  private h = 0

  constructor (seed?: number) {
    this.seed = seed ?? randomBytes(4).readInt32LE(0)
  }

  /** Index slots (for tests and the memory probe), and whether a resize is under way. */
  get slots (): number { return this.index.length }
  get resizing (): boolean { return this.next !== undefined }
  /** Dead slots (tombstones) in the index answering lookups. */
  get dead (): number { return this.tombs }
  get bytes (): number { return this.chunks.length * (1 << ENTRY_SHIFT) * ENTRY_BYTES + this.index.length * 4 + (this.next?.length ?? 0) * 4 }

  /**
   * The entry of this info hash, or -1 (always -1 for a string that is not 20 characters). Keeps
   * the key for an `insert` that follows.
   */
  find (key: string): number {
    if (key.length !== 20) { this.h = -1; return -1 }
    const k0 = this.k0 = (key.charCodeAt(0) | key.charCodeAt(1) << 8 | key.charCodeAt(2) << 16 | key.charCodeAt(3) << 24)
    const k1 = this.k1 = (key.charCodeAt(4) | key.charCodeAt(5) << 8 | key.charCodeAt(6) << 16 | key.charCodeAt(7) << 24)
    const k2 = this.k2 = (key.charCodeAt(8) | key.charCodeAt(9) << 8 | key.charCodeAt(10) << 16 | key.charCodeAt(11) << 24)
    const k3 = this.k3 = (key.charCodeAt(12) | key.charCodeAt(13) << 8 | key.charCodeAt(14) << 16 | key.charCodeAt(15) << 24)
    const k4 = this.k4 = (key.charCodeAt(16) | key.charCodeAt(17) << 8 | key.charCodeAt(18) << 16 | key.charCodeAt(19) << 24)
    const h = this.h = mix(this.seed, k0, k1, k2, k3, k4)
    const index = this.index
    const mask = index.length - 1
    const tag = h >>> 27
    const chunks = this.chunks
    for (let s = h & mask; ; s = (s + 1) & mask) {
      const v = index[s]
      if (v === 0) return -1
      if (v >>> 27 !== tag || v === TOMB) continue
      const e = (v & REF_MASK) - 1
      const u32 = chunks[e >>> ENTRY_SHIFT].u32
      const w = (e & ENTRY_MASK) * ENTRY_WORDS
      if ((u32[w] | 0) === k0 && (u32[w + 1] | 0) === k1 && (u32[w + 2] | 0) === k2 && (u32[w + 3] | 0) === k3 && (u32[w + 4] | 0) === k4) return e
    }
  }

  /**
   * Adds the key of the last `find` (which returned -1) and returns its entry: info hash set,
   * tag `tag` (not TAG_FREE), the rest zero.
   */
  insert (tag: number): number {
    if (this.h === -1) throw new TypeError('an info hash is 20 bytes')
    let e: number
    if (this.freeHead !== 0) {
      e = this.freeHead - 1
      this.freeHead = this.chunks[e >>> ENTRY_SHIFT].u32[(e & ENTRY_MASK) * ENTRY_WORDS + W_AREA]
    } else {
      if (this.end === MAX_ENTRIES) throw new RangeError('too many torrents for one store')
      e = this.end++
      if ((e >>> ENTRY_SHIFT) === this.chunks.length) this.chunks.push(new EntryChunk())
    }
    const u32 = this.chunks[e >>> ENTRY_SHIFT].u32
    const w = (e & ENTRY_MASK) * ENTRY_WORDS
    u32[w] = this.k0; u32[w + 1] = this.k1; u32[w + 2] = this.k2; u32[w + 3] = this.k3; u32[w + 4] = this.k4
    for (let i = W_AREA; i < ENTRY_WORDS; i++) u32[w + i] = 0
    this.chunks[e >>> ENTRY_SHIFT].u8[w * 4 + B_TAG] = tag
    const v = (this.h >>> 27) << 27 | (e + 1)
    if (add(this.index, this.h, v)) this.tombs--
    if (this.next !== undefined && e < this.walk && add(this.next, this.h, v)) this.nextTombs--
    this.size++
    if (this.next !== undefined) this.migrate(this.walkPer)
    else if ((this.size + this.tombs) * 10 > this.index.length * 7) {
      // Full of live entries: twice the size; mostly of tombstones: the same size, without them.
      this.startResize(this.size * 20 > this.index.length * 7 ? this.index.length * 2 : this.index.length)
    }
    return e
  }

  /** Frees a live entry. */
  delete (e: number): void {
    const u32 = this.chunks[e >>> ENTRY_SHIFT].u32
    const w = (e & ENTRY_MASK) * ENTRY_WORDS
    const h = mix(this.seed, u32[w] | 0, u32[w + 1] | 0, u32[w + 2] | 0, u32[w + 3] | 0, u32[w + 4] | 0)
    bury(this.index, h, e)
    this.tombs++
    if (this.next !== undefined && e < this.walk) { bury(this.next, h, e); this.nextTombs++ }
    u32[w + W_AREA] = this.freeHead
    u32[w + (B_TAG >> 2)] = 0
    this.freeHead = e + 1
    this.size--
    // Deletes add no load, so they only start a shrink; inserts and `migrate` calls finish it.
    if (this.next === undefined && this.size * 8 < this.index.length && this.index.length > MIN_SLOTS) this.startResize(this.index.length / 2)
  }

  /** Whether entry `e` is live. */
  live (e: number): boolean {
    return this.chunks[e >>> ENTRY_SHIFT].u8[(e & ENTRY_MASK) * ENTRY_BYTES + B_TAG] !== TAG_FREE
  }

  /** The info hash of entry `e` as a binary string. */
  key (e: number): string {
    const b = (e & ENTRY_MASK) * ENTRY_BYTES
    return this.chunks[e >>> ENTRY_SHIFT].u8.toString('latin1', b, b + 20)
  }

  clear (): void {
    this.chunks.length = 0
    this.end = this.size = this.freeHead = 0
    this.index = new Int32Array(MIN_SLOTS)
    this.next = undefined
    this.tombs = this.nextTombs = 0
  }

  /** Walks up to `n` entries into the index being filled; swaps it in when the walk is done. */
  migrate (n: number): void {
    const next = this.next
    if (next === undefined) return
    const stop = Math.min(this.end, this.walk + n)
    for (let e = this.walk; e < stop; e++) {
      const chunk = this.chunks[e >>> ENTRY_SHIFT]
      const w = (e & ENTRY_MASK) * ENTRY_WORDS
      if (chunk.u8[w * 4 + B_TAG] === TAG_FREE) continue
      const u32 = chunk.u32
      const h = mix(this.seed, u32[w] | 0, u32[w + 1] | 0, u32[w + 2] | 0, u32[w + 3] | 0, u32[w + 4] | 0)
      add(next, h, (h >>> 27) << 27 | (e + 1))
    }
    this.walk = stop
    if (stop === this.end) {
      this.index = next
      this.tombs = this.nextTombs
      this.next = undefined
      this.walk = 0
      // Emptied a lot meanwhile: the next halving (deletes alone would not start it now).
      if (this.size * 8 < this.index.length && this.index.length > MIN_SLOTS) this.startResize(this.index.length / 2)
    }
  }

  private startResize (slots: number): void {
    this.next = new Int32Array(slots)
    this.nextTombs = 0
    this.walk = 0
    // Done within slots/32 further inserts: the old index stays under 0.7 + 1/16 full meanwhile
    // (entries freed earlier are walked too, so the step grows with them).
    this.walkPer = Math.max(16, Math.ceil(this.end * 32 / slots))
    this.migrate(this.walkPer)
  }
}

/** Puts `v` (known absent) in the first empty or dead slot of its chain; true if it was dead. */
function add (index: Int32Array, h: number, v: number): boolean {
  const mask = index.length - 1
  let s = h & mask
  for (;;) {
    const o = index[s]
    if (o === 0 || o === TOMB) { index[s] = v; return o === TOMB }
    s = (s + 1) & mask
  }
}

/** Marks the slot of entry `e` (hash `h`) dead. */
function bury (index: Int32Array, h: number, e: number): void {
  const mask = index.length - 1
  let s = h & mask
  while ((index[s] & REF_MASK) !== e + 1 || index[s] === TOMB) s = (s + 1) & mask
  index[s] = TOMB
}

/** 32-bit hash of the five words (murmur3-style rounds; the seed makes collisions unpredictable). */
function mix (seed: number, a: number, b: number, c: number, d: number, e: number): number {
  let h = seed
  h = round(h, a); h = round(h, b); h = round(h, c); h = round(h, d); h = round(h, e)
  h ^= 20
  h = Math.imul(h ^ h >>> 16, 0x85ebca6b)
  h = Math.imul(h ^ h >>> 13, 0xc2b2ae35)
  return h ^ h >>> 16
}

function round (h: number, k: number): number {
  k = Math.imul(k, 0xcc9e2d51)
  k = Math.imul(k << 15 | k >>> 17, 0x1b873593)
  h ^= k
  h = h << 13 | h >>> 19
  return (Math.imul(h, 5) + 0xe6546b64) | 0
}
