/**
 * Loads the optional native addon (native/udp_batch.c, built into build/Release by
 * `npm install`): batched UDP I/O with recvmmsg/sendmmsg, and `listenFd` for TCP listeners
 * several threads share. Without it the UDP tracker runs on node:dgram.
 */
import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

/** Options of a native UDP socket. */
export interface NativeUdpOptions {
  /** SO_REUSEPORT: several sockets (threads, processes) share the port; the kernel spreads datagrams. */
  reusePort?: boolean
  reuseAddr?: boolean
  /** SO_RCVBUF / SO_SNDBUF in bytes (the kernel doubles and caps them). */
  recvBufferSize?: number
  sendBufferSize?: number
}

/** The addon's socket: bound and polled from construction until close(). */
export interface NativeUdpHandle {
  /** BATCH × SLOT_SIZE bytes: datagram i at i × SLOT_SIZE. */
  readonly recvData: ArrayBuffer
  /** BATCH × META_SIZE bytes: length, port, family, address of datagram i (see udp-batch.ts). */
  readonly recvMeta: ArrayBuffer
  readonly sendData: ArrayBuffer
  readonly sendMeta: ArrayBuffer
  /** Sends reply slots [0, n) now, queueing what the kernel cannot take yet (bounded). */
  send: (n: number) => void
  close: () => void
  ref: () => void
  unref: () => void
  /** [ip, port] the socket is bound to. */
  address: () => [string, number]
  /** Counters in STAT_NAMES order. */
  stats: () => number[]
}

export interface NativeAddon {
  /**
   * Opens a non-blocking UDP socket of `family` (IPv6: IPV6_V6ONLY), binds it to host:port and
   * polls it on this thread's loop; `onBatch(n)` gets datagrams [0, n) of the receive slabs and
   * returns how many reply slots of the send slabs it filled. Throws errors with errno code names.
   */
  UdpSocket: new (family: 4 | 6, host: string, port: number, opts: NativeUdpOptions, onBatch: (this: NativeUdpHandle, n: number) => number) => NativeUdpHandle
  /**
   * A non-blocking listening TCP socket with SO_REUSEADDR + SO_REUSEPORT (tcp6: IPV6_V6ONLY),
   * as a file descriptor for `net.Server.listen({ fd })`.
   */
  listenFd: (kind: 'tcp4' | 'tcp6', host: string, port: number, backlog: number) => number
  /**
   * Attaches a classic BPF program to the SO_REUSEPORT group of `socket` that hands each BEP 15
   * announce or scrape to the group's socket number `shardOf(info hash, shards)` (sockets are
   * numbered in the order they were bound; see src/server/workers/shard.ts); other datagrams go
   * where the kernel's flow hash puts them. Throws with an errno code when the kernel refuses.
   */
  steerReuseport: (socket: NativeUdpHandle, shards: number) => void
  readonly BATCH: number
  readonly SLOT_SIZE: number
  readonly META_SIZE: number
  readonly QUEUE_MAX: number
}

/** Names of the numbers `NativeUdpHandle.stats()` returns, in order. */
export const STAT_NAMES = ['recvCalls', 'received', 'sendCalls', 'sent', 'queued', 'dropped', 'eagain', 'sendErrors', 'truncated', 'queueLength'] as const

export interface NativeStatus {
  available: boolean
  /** Why it is not available. */
  reason?: string
}

let loaded: { addon?: NativeAddon, status: NativeStatus } | undefined

/** The package root: this file is <root>/{src,dist}/server/native/loader.*; the CJS bundle is <root>/dist/index.cjs. */
function packageRoot (): string {
  const url = import.meta.url as string | undefined
  if (typeof url === 'string' && url !== '') return fileURLToPath(new URL('../../../', url))
  return join(__dirname, '..')
}

function load (): { addon?: NativeAddon, status: NativeStatus } {
  if (loaded !== undefined) return loaded
  const no = (reason: string): { status: NativeStatus } => ({ status: { available: false, reason } })
  if (process.env.BITTORRENT_TRACKER_NATIVE === '0') return (loaded = no('disabled by BITTORRENT_TRACKER_NATIVE=0'))
  if (process.platform !== 'linux') return (loaded = no(`needs Linux, this is ${process.platform}`))
  const root = packageRoot()
  const file = join(root, 'build', 'Release', 'udp_batch.node')
  if (!existsSync(file)) return (loaded = no('native addon not built: build/Release/udp_batch.node is missing (npm run build:native)'))
  try {
    const addon = createRequire(join(root, 'package.json'))(file) as NativeAddon
    return (loaded = { addon, status: { available: true } })
  } catch (err) {
    return (loaded = no(`native addon failed to load: ${(err as Error).message.split('\n')[0]}`))
  }
}

/** Whether the batched UDP addon can be used here, and if not, why. */
export function nativeStatus (): NativeStatus {
  return load().status
}

/** The addon, or undefined (see nativeStatus). */
export function nativeAddon (): NativeAddon | undefined {
  return load().addon
}

/**
 * A listening TCP socket's file descriptor with SO_REUSEPORT, for `net.Server.listen({ fd })`
 * in each of several worker threads. Throws when the addon is not available.
 */
export function listenFd (kind: 'tcp4' | 'tcp6', host: string, port: number, backlog: number): number {
  const addon = load().addon
  if (addon === undefined) throw new Error(`listenFd: ${load().status.reason ?? 'native addon not available'}`)
  return addon.listenFd(kind, host, port, backlog)
}
