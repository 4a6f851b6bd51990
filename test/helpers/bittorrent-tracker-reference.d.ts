// Types for the parts of the reference package (npm alias of bittorrent-tracker@11.2.3, a
// devDependency used only by test/interop/) that the interop tests touch. It ships no types.
declare module 'bittorrent-tracker-reference' {
  import { EventEmitter } from 'node:events'

  export interface AnnounceOpts {
    uploaded?: number
    downloaded?: number
    left?: number
    numwant?: number
    [param: string]: unknown
  }

  export interface ClientOpts {
    infoHash: string | Uint8Array
    peerId: string | Uint8Array
    announce: string | string[]
    port: number
    getAnnounceOpts?: () => AnnounceOpts
    rtcConfig?: object
    wrtc?: object
    userAgent?: string
  }

  export interface UpdateData {
    announce: string
    complete: number
    incomplete: number
    [key: string]: unknown
  }

  export interface ScrapeData {
    announce: string
    infoHash: string
    complete: number
    incomplete: number
    downloaded: number
    [key: string]: unknown
  }

  /** The WebRTC peer handed out by the ws tracker client: a @thaunknown/simple-peer instance. */
  export interface SimplePeer extends EventEmitter {
    id: string
    connected: boolean
    send (data: string | Uint8Array): void
    destroy (err?: Error): void
  }

  export default class Client extends EventEmitter {
    constructor (opts: ClientOpts)
    start (opts?: AnnounceOpts): void
    stop (opts?: AnnounceOpts): void
    complete (opts?: AnnounceOpts): void
    update (opts?: AnnounceOpts): void
    scrape (opts?: object): void
    setInterval (ms: number): void
    destroy (cb?: (err?: Error | null) => void): void
    on (event: 'update', listener: (data: UpdateData) => void): this
    on (event: 'scrape', listener: (data: ScrapeData) => void): this
    on (event: 'peer', listener: (peer: string | SimplePeer) => void): this
    on (event: 'warning' | 'error', listener: (err: Error) => void): this
    on (event: string, listener: (...args: any[]) => void): this
    static scrape (opts: { announce: string, infoHash: string | string[] }, cb: (err: Error | null, data: unknown) => void): Client
  }

  export { Client }
}
