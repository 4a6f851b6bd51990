import type { BinaryString } from '../../protocol/common/types.js'

/**
 * The shard (worker) that owns a swarm, from the first 20 bytes of its info hash: the five
 * big-endian 32-bit words XORed, times 0x9E3779B1 (mod 2^32), the top 16 bits, mod `shards`.
 * Cheap, spreads any hash layout (every byte counts), and simple enough for the kernel to
 * compute the same for each UDP datagram: native/udp_batch.c's steerReuseport runs exactly this
 * in classic BPF, so a UDP announce or scrape reaches the worker that owns its swarm.
 */
export function shardOf (infoHash: BinaryString, shards: number): number {
  if (shards === 1) return 0
  let x = 0
  // charCodeAt past the end is NaN, which `<<` makes 0: a short hash folds as if zero-padded.
  for (let i = 0; i < 20; i += 4) {
    x ^= infoHash.charCodeAt(i) << 24 | infoHash.charCodeAt(i + 1) << 16 | infoHash.charCodeAt(i + 2) << 8 | infoHash.charCodeAt(i + 3)
  }
  return (Math.imul(x, 0x9E3779B1) >>> 16) % shards
}
