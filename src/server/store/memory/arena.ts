/**
 * Fixed-size peer records in large Buffers ("chunks"), handed out in blocks of 2^k records by a
 * buddy allocator.
 *
 * Why: one JS object per peer costs ~200 bytes; a 32-byte record in a shared Buffer costs 32. A
 * swarm owns one block and grows or shrinks by moving to a block of the next size class (the copy
 * is amortised like an array's). A block of class k starts at a multiple of 2^k in its chunk, so
 * a freed block merges with its free "buddy" (the other half of the class-(k+1) block) — without
 * that, swarms growing side by side leave every smaller block they outgrew stranded, doubling the
 * memory. Free blocks are kept in one doubly linked list per class, linked through their own first
 * record (no memory besides one byte per record saying "a free block of class k starts here").
 *
 * Chunks are 2^17 records (4 MiB), allocated as the store grows; a block larger than a chunk gets a
 * chunk of its own, left to the garbage collector when freed. Chunks are never returned (a store
 * keeps the memory of its peak).
 */
export const RECORD_BYTES = 32
const CHUNK_CLS = 17
const CHUNK_RECORDS = 1 << CHUNK_CLS
const WORDS = RECORD_BYTES >> 2

export class Chunk {
  readonly u8: Buffer
  readonly u16: Uint16Array
  readonly u32: Uint32Array
  /** k + 1 where a free block of class k starts; 0 elsewhere (undefined for an oversize chunk). */
  readonly freeCls: Uint8Array | undefined
  /** Position in the arena's chunk list; -1 for an oversize block's own chunk. */
  constructor (records: number, readonly index: number) {
    this.u8 = Buffer.alloc(records * RECORD_BYTES)
    this.u16 = new Uint16Array(this.u8.buffer, this.u8.byteOffset, records * (RECORD_BYTES >> 1))
    this.u32 = new Uint32Array(this.u8.buffer, this.u8.byteOffset, records * WORDS)
    this.freeCls = index < 0 ? undefined : new Uint8Array(records)
  }
}

export class Arena {
  /** Where the last `alloc` put its block. Two fields instead of a returned object: no allocation. */
  chunk: Chunk | undefined
  off = 0
  private readonly chunks: Chunk[] = []
  /** Per class: first free block as global record number + 1 (chunk index × 2^17 + offset), 0 if none. */
  private readonly heads = new Float64Array(CHUNK_CLS + 1)
  /** Bytes of all chunks, and records in free blocks (for tests and the memory probe). */
  bytes = 0
  freeRecords = 0

  /** A block of 2^cls records, in `this.chunk` at record `this.off`. */
  alloc (cls: number): void {
    if (cls >= CHUNK_CLS) {
      const own = new Chunk(1 << cls, -1)
      this.bytes += (1 << cls) * RECORD_BYTES
      this.chunk = own
      this.off = 0
      return
    }
    let j = cls
    while (j <= CHUNK_CLS && this.heads[j] === 0) j++
    if (j > CHUNK_CLS) {
      const chunk = new Chunk(CHUNK_RECORDS, this.chunks.length)
      this.chunks.push(chunk)
      this.bytes += CHUNK_RECORDS * RECORD_BYTES
      this.push(chunk, 0, CHUNK_CLS)
      j = CHUNK_CLS
    }
    const g = this.heads[j] - 1
    const chunk = this.chunks[Math.floor(g / CHUNK_RECORDS)]
    const off = g % CHUNK_RECORDS
    this.unlink(chunk, off, j)
    // Split down: the upper halves become free blocks of the smaller classes.
    while (j > cls) {
      j--
      this.push(chunk, off + (1 << j), j)
    }
    this.chunk = chunk
    this.off = off
  }

  free (chunk: Chunk, off: number, cls: number): void {
    const freeCls = chunk.freeCls
    if (freeCls === undefined) { this.bytes -= chunk.u8.length; return }
    while (cls < CHUNK_CLS) {
      const buddy = off ^ (1 << cls)
      if (freeCls[buddy] !== cls + 1) break
      this.unlink(chunk, buddy, cls)
      off = off < buddy ? off : buddy
      cls++
    }
    this.push(chunk, off, cls)
  }

  clear (): void {
    this.chunks.length = 0
    this.heads.fill(0)
    this.chunk = undefined
    this.bytes = 0
    this.freeRecords = 0
  }

  /** Links a free block at the head of its class's list: word 0 next + 1, word 1 previous + 1. */
  private push (chunk: Chunk, off: number, cls: number): void {
    const g = chunk.index * CHUNK_RECORDS + off
    const head = this.heads[cls]
    const w = off * WORDS
    chunk.u32[w] = head
    chunk.u32[w + 1] = 0
    if (head !== 0) this.setPrev(head - 1, g + 1)
    this.heads[cls] = g + 1
    chunk.freeCls![off] = cls + 1
    this.freeRecords += 1 << cls
  }

  private unlink (chunk: Chunk, off: number, cls: number): void {
    const w = off * WORDS
    const next = chunk.u32[w]
    const prev = chunk.u32[w + 1]
    if (prev === 0) this.heads[cls] = next
    else {
      const p = prev - 1
      this.chunks[Math.floor(p / CHUNK_RECORDS)].u32[(p % CHUNK_RECORDS) * WORDS] = next
    }
    if (next !== 0) this.setPrev(next - 1, prev)
    chunk.freeCls![off] = 0
    this.freeRecords -= 1 << cls
  }

  private setPrev (g: number, prev: number): void {
    this.chunks[Math.floor(g / CHUNK_RECORDS)].u32[(g % CHUNK_RECORDS) * WORDS + 1] = prev
  }
}
