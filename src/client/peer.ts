/**
 * A minimal WebRTC peer: one RTCPeerConnection carrying one data channel, with the small
 * event API that WebTorrent-style code expects of a tracker's peer object.
 *
 * Browser-safe: no node:* imports. `events` is Node's built-in module in Node and the npm
 * `events` package in the browser bundle. The WebRTC implementation is the global one (browser)
 * or the one passed as `wrtc` (Node: `@roamhq/wrtc`).
 *
 * Signalling is non-trickle: a description is handed out only once ICE gathering is complete
 * (or after `gatherTimeoutMs`, with whatever candidates were found by then), because a
 * WebTorrent tracker relays exactly one offer and one answer.
 *
 * Events:
 *   'signal'  ({ type: 'offer' | 'answer', sdp })  the local description, ready to relay
 *   'connect' ()                                   the data channel is open
 *   'data'    (Uint8Array)                         a message (text messages arrive UTF-8 encoded)
 *   'error'   (Error)                              fatal; 'close' follows
 *   'close'   ()                                   the peer is gone, once
 */
import { CLIENT_ICE_GATHER_TIMEOUT_MS } from '../constants.js'
import { EventEmitter } from 'events'

/** The parts of a WebRTC implementation this module uses (`@roamhq/wrtc` or the browser's). */
export interface WebRtcImpl {
  RTCPeerConnection: new (config?: RTCConfiguration) => RTCPeerConnection
}

export interface PeerOptions {
  /** This side makes the offer. */
  initiator?: boolean
  /** RTCPeerConnection configuration (ICE servers …). */
  config?: RTCConfiguration
  /** WebRTC implementation; default: the global one. */
  wrtc?: WebRtcImpl
  /** Label of the data channel the initiator opens. */
  channelName?: string
  /** Longest wait for ICE gathering before the description is sent as it is, in ms. */
  gatherTimeoutMs?: number
}

export interface SignalData {
  type: 'offer' | 'answer'
  sdp: string
}

const DEFAULT_CHANNEL_NAME = 'webtorrent'

/** The WebRTC implementation to use: `wrtc` when it has one, else the global one, else undefined. */
export function resolveWebRtc (wrtc?: unknown): WebRtcImpl | undefined {
  const w = wrtc as Partial<WebRtcImpl> | null | undefined
  if (w != null && typeof w.RTCPeerConnection === 'function') return w as WebRtcImpl
  const g = globalThis as { RTCPeerConnection?: WebRtcImpl['RTCPeerConnection'] }
  if (typeof g.RTCPeerConnection === 'function') return { RTCPeerConnection: g.RTCPeerConnection }
  return undefined
}

const encoder = new TextEncoder()

export class Peer extends EventEmitter {
  /** Remote peer id (hex), set by whoever introduced the two peers (the tracker). */
  id: string | undefined
  readonly initiator: boolean
  connected = false
  destroyed = false

  private readonly pc: RTCPeerConnection
  private channel: RTCDataChannel | null = null
  private readonly gatherTimeoutMs: number
  private gatherTimer: ReturnType<typeof setTimeout> | undefined
  private signalled = false
  private remoteSet = false

  constructor (opts: PeerOptions = {}) {
    super()
    this.initiator = opts.initiator === true
    this.gatherTimeoutMs = opts.gatherTimeoutMs ?? CLIENT_ICE_GATHER_TIMEOUT_MS
    const impl = resolveWebRtc(opts.wrtc)
    if (impl === undefined) throw new Error('No WebRTC implementation: pass `wrtc` (e.g. @roamhq/wrtc) in Node')
    this.pc = new impl.RTCPeerConnection(opts.config)
    this.pc.onconnectionstatechange = () => this.onStateChange()
    this.pc.oniceconnectionstatechange = () => this.onStateChange()
    if (this.initiator) {
      this.setChannel(this.pc.createDataChannel(opts.channelName ?? DEFAULT_CHANNEL_NAME))
      this.pc.createOffer()
        .then(offer => this.pc.setLocalDescription(offer))
        .then(() => this.emitWhenGathered(), err => this.fail(err, 'cannot create offer'))
    } else {
      this.pc.ondatachannel = (ev: RTCDataChannelEvent) => {
        if (this.channel === null) this.setChannel(ev.channel)
        else ev.channel.close()
      }
    }
  }

  /** Bytes queued on the data channel and not yet sent. */
  get bufferedAmount (): number {
    return this.channel?.bufferedAmount ?? 0
  }

  /** Hand over the remote side's description (an offer to a non-initiator, the answer to an initiator). */
  signal (data: SignalData): void {
    if (this.destroyed) return
    const expected = this.initiator ? 'answer' : 'offer'
    if (data === null || typeof data !== 'object' || data.type !== expected || typeof data.sdp !== 'string') {
      return this.destroy(new Error(`expected an ${expected}`))
    }
    if (this.remoteSet) return this.destroy(new Error(`a second ${expected} was signalled`))
    this.remoteSet = true
    let p = this.pc.setRemoteDescription({ type: data.type, sdp: data.sdp })
    if (!this.initiator) {
      p = p.then(() => this.pc.createAnswer()).then(answer => this.pc.setLocalDescription(answer))
        .then(() => this.emitWhenGathered())
    }
    p.catch(err => this.fail(err, `cannot apply the remote ${expected}`))
  }

  /** Send one message over the data channel. Throws unless connected. */
  send (data: string | Uint8Array | ArrayBuffer | ArrayBufferView): void {
    const ch = this.channel
    if (!this.connected || ch === null || ch.readyState !== 'open') throw new Error('peer is not connected')
    if (typeof data === 'string') ch.send(data)
    else if (data instanceof ArrayBuffer) ch.send(data)
    else if (data.buffer instanceof ArrayBuffer && data.byteOffset === 0 && data.byteLength === data.buffer.byteLength) {
      ch.send(data.buffer)
    } else {
      // A window on a larger (or shared) buffer, e.g. a pooled Node Buffer: send a copy of its bytes.
      const copy = new Uint8Array(data.byteLength)
      copy.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength))
      ch.send(copy.buffer)
    }
  }

  /** Close the channel and the connection. With `err`, 'error' is emitted before 'close'. Idempotent. */
  destroy (err?: Error): void {
    if (this.destroyed) return
    this.destroyed = true
    this.connected = false
    clearTimeout(this.gatherTimer)
    this.gatherTimer = undefined
    const ch = this.channel
    this.channel = null
    if (ch !== null) {
      ch.onopen = null
      ch.onmessage = null
      ch.onclose = null
      ch.onerror = null
      try { ch.close() } catch {}
    }
    const pc = this.pc
    pc.onconnectionstatechange = null
    pc.oniceconnectionstatechange = null
    pc.onicegatheringstatechange = null
    pc.ondatachannel = null
    try { pc.close() } catch {}
    queueMicrotask(() => {
      if (err !== undefined) this.emit('error', err)
      this.emit('close')
    })
  }

  private setChannel (ch: RTCDataChannel): void {
    this.channel = ch
    ch.binaryType = 'arraybuffer'
    ch.onopen = () => {
      if (this.destroyed || this.connected) return
      this.connected = true
      this.emit('connect')
    }
    ch.onmessage = (ev: MessageEvent) => {
      if (this.destroyed) return
      const d: unknown = ev.data
      if (typeof d === 'string') this.emit('data', encoder.encode(d))
      else if (d instanceof ArrayBuffer) this.emit('data', new Uint8Array(d))
      else if (ArrayBuffer.isView(d)) this.emit('data', new Uint8Array(d.buffer, d.byteOffset, d.byteLength))
    }
    ch.onclose = () => this.destroy()
    ch.onerror = (ev: Event) => {
      const e = (ev as { error?: unknown }).error
      this.destroy(e instanceof Error ? e : new Error('data channel error'))
    }
  }

  private onStateChange (): void {
    if (this.destroyed) return
    const pc = this.pc
    if (pc.connectionState === 'failed' || pc.iceConnectionState === 'failed') {
      this.destroy(new Error('WebRTC connection failed'))
    } else if (pc.connectionState === 'closed' || pc.iceConnectionState === 'closed') {
      this.destroy()
    }
  }

  /** Emit 'signal' with the local description once gathering is complete or the wait is over. */
  private emitWhenGathered (): void {
    if (this.destroyed) return
    const pc = this.pc
    const done = (): void => {
      if (this.destroyed || this.signalled) return
      this.signalled = true
      clearTimeout(this.gatherTimer)
      this.gatherTimer = undefined
      pc.onicegatheringstatechange = null
      const d = pc.localDescription
      if (d === null) return this.destroy(new Error('no local description'))
      this.emit('signal', { type: d.type as SignalData['type'], sdp: d.sdp })
    }
    if (pc.iceGatheringState === 'complete') return done()
    pc.onicegatheringstatechange = () => { if (pc.iceGatheringState === 'complete') done() }
    this.gatherTimer = setTimeout(done, this.gatherTimeoutMs)
  }

  private fail (err: unknown, what: string): void {
    if (this.destroyed) return
    this.destroy(new Error(`${what}: ${err instanceof Error ? err.message : String(err)}`))
  }
}
