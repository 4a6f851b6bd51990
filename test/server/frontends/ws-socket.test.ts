// Our own RFC 6455 server side (src/server/frontends/ws-socket.ts), spoken to over raw TCP
// sockets: the handshake, masked/split/fragmented frames, control frames, the close handshake,
// and every hostile frame with the exact close code it earns.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import net from 'node:net'
import { after, before, describe, it } from 'node:test'
import {
  WS_CLOSE_GOING_AWAY, WS_CLOSE_INVALID_PAYLOAD, WS_CLOSE_NORMAL, WS_CLOSE_PROTOCOL_ERROR, WS_CLOSE_TOO_BIG,
  WS_MAX_BUFFERED, WS_MAX_FRAGMENTS, WS_MAX_FRAME, WS_MAX_MESSAGE
} from '../../../src/constants.js'
import { utf8Text } from '../../../src/server/frontends/ws-socket.js'
import { hex, id20, REPLY_TIMEOUT_MS, startServer, waitFor, withTimeout, wsClient } from '../../helpers/tracker-clients.js'
import type { StartedServer } from '../../helpers/tracker-clients.js'

const IH = id20(4242)

interface Frame { fin: boolean, rsv: number, opcode: number, masked: boolean, payload: Buffer }

/** A client frame; masked unless told otherwise. `len` overrides the length field (for lies). */
function frame (opcode: number, payload: Buffer | string, o: { fin?: boolean, mask?: boolean, rsv?: number, len?: number } = {}): Buffer {
  const p = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload
  const n = o.len ?? p.length
  const mask = o.mask ?? true
  const head: number[] = [((o.fin ?? true) ? 0x80 : 0) | ((o.rsv ?? 0) << 4) | opcode]
  const mbit = mask ? 0x80 : 0
  if (n < 126) head.push(mbit | n)
  else if (n < 65536) head.push(mbit | 126, n >>> 8, n & 0xff)
  else {
    const ext = Buffer.alloc(8)
    ext.writeBigUInt64BE(BigInt(n))
    head.push(mbit | 127, ...ext)
  }
  if (!mask) return Buffer.concat([Buffer.from(head), p])
  const key = randomBytes(4)
  const body = Buffer.from(p)
  for (let i = 0; i < body.length; i++) body[i] ^= key[i & 3]
  return Buffer.concat([Buffer.from(head), key, body])
}

const text = (s: string, o?: Parameters<typeof frame>[2]): Buffer => frame(0x1, s, o)
const closeFrame = (code: number, reason = ''): Buffer => {
  const b = Buffer.alloc(2 + Buffer.byteLength(reason))
  b.writeUInt16BE(code)
  b.write(reason, 2)
  return frame(0x8, b)
}

/** A raw WebSocket client: writes bytes as given, parses the server's frames. */
class RawClient {
  private buf: Buffer = Buffer.alloc(0)
  private frames: Frame[] = []
  private waiting: (() => void) | null = null
  /** Resolves when the TCP socket is closed (by either side). */
  readonly closed: Promise<void>
  /** Set when the server half-closed (FIN). */
  ended = false

  constructor (readonly socket: net.Socket) {
    socket.on('data', d => { this.buf = Buffer.concat([this.buf, d]); this.parse() })
    socket.on('end', () => { this.ended = true; this.wake() })
    socket.on('error', () => {})
    this.closed = new Promise(resolve => socket.once('close', () => { this.wake(); resolve() }))
  }

  static async connect (port: number, path = '/', extraHeaders = ''): Promise<{ client: RawClient, response: string }> {
    const socket = net.connect(port, '127.0.0.1')
    socket.setNoDelay(true)
    await new Promise<void>((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject) })
    const key = randomBytes(16).toString('base64')
    socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n${extraHeaders}\r\n`)
    // The response head, then whatever follows goes to the frame parser.
    let head = Buffer.alloc(0)
    const rest = await withTimeout(new Promise<Buffer>((resolve, reject) => {
      const onData = (d: Buffer): void => {
        head = Buffer.concat([head, d])
        const end = head.indexOf('\r\n\r\n')
        if (end === -1) return
        socket.off('data', onData)
        resolve(head.subarray(end + 4))
        head = head.subarray(0, end + 4)
      }
      socket.on('data', onData)
      socket.once('close', () => reject(new Error(`closed during the handshake: ${head.toString()}`)))
    }), REPLY_TIMEOUT_MS, 'handshake')
    const client = new RawClient(socket)
    if (rest.length > 0) { client.buf = rest; client.parse() }
    return { client, response: head.toString('latin1') }
  }

  write (b: Buffer | string): void { this.socket.write(b) }

  private wake (): void { const w = this.waiting; this.waiting = null; w?.() }

  private parse (): void {
    for (;;) {
      const b = this.buf
      if (b.length < 2) break
      let n = b[1] & 0x7f
      let at = 2
      if (n === 126) { if (b.length < 4) break; n = b.readUInt16BE(2); at = 4 }
      else if (n === 127) { if (b.length < 10) break; n = Number(b.readBigUInt64BE(2)); at = 10 }
      const masked = (b[1] & 0x80) !== 0
      if (masked) at += 4
      if (b.length < at + n) break
      this.frames.push({ fin: (b[0] & 0x80) !== 0, rsv: (b[0] >> 4) & 7, opcode: b[0] & 0x0f, masked, payload: Buffer.from(b.subarray(at, at + n)) })
      this.buf = b.subarray(at + n)
    }
    this.wake()
  }

  /** The next frame from the server; rejects if none comes in time or the socket ends first. */
  async next (ms = REPLY_TIMEOUT_MS): Promise<Frame> {
    const deadline = Date.now() + ms
    while (this.frames.length === 0) {
      if (this.socket.destroyed || this.ended) throw new Error('socket ended, no frame')
      const left = deadline - Date.now()
      if (left <= 0) throw new Error('no frame in time')
      await new Promise<void>(resolve => {
        const t = setTimeout(resolve, left)
        this.waiting = () => { clearTimeout(t); resolve() }
      })
    }
    return this.frames.shift()!
  }

  async nextText (): Promise<string> {
    const f = await this.next()
    assert.equal(f.opcode, 0x1, `expected a text frame, got opcode ${f.opcode}`)
    return f.payload.toString('utf8')
  }

  /** Expects the server's close frame with `code`, then the end of the TCP connection. */
  async expectClose (code: number): Promise<void> {
    const f = await this.next()
    assert.equal(f.opcode, 0x8, `expected a close frame, got opcode ${f.opcode}: ${f.payload.toString()}`)
    assert.equal(f.fin, true)
    assert.equal(f.masked, false)
    assert.equal(f.payload.readUInt16BE(0), code)
    await withTimeout(new Promise<void>(resolve => { if (this.ended || this.socket.destroyed) resolve(); else this.socket.once('end', () => resolve()) }), REPLY_TIMEOUT_MS, 'server FIN')
    this.socket.destroy()
  }

  destroy (): void { this.socket.destroy() }
}

const scrapeText = JSON.stringify({ action: 'scrape', info_hash: IH })
const scrapeReply = JSON.stringify({ action: 'scrape', files: { [IH]: { complete: 0, incomplete: 0, downloaded: 0 } } })

describe('utf8Text (frames decoded in pieces cut at "sdp":")', () => {
  it('is b.toString("utf8", s, e) for any bytes: multi-byte and invalid sequences next to the cuts, cuts at the edges', () => {
    const KEY = Buffer.from('"sdp":"')
    const PARTS = [KEY, KEY, Buffer.from('é€😀'), Buffer.from([0xc3]), Buffer.from([0xe2, 0x82]), Buffer.from([0xff, 0x80]),
      Buffer.from([0xf0, 0x9f, 0x98]), Buffer.from('"sdp":'), Buffer.from('\\"sdp\\":\\"')]
    let seed = 7
    const rnd = (n: number): number => { seed = (Math.imul(seed, 1103515245) + 12345) >>> 0; return (seed >>> 8) % n }
    let pieces = 0
    for (let i = 0; i < 2000; i++) {
      const parts: Buffer[] = []
      for (let k = rnd(30); k > 0; k--) parts.push(rnd(3) === 0 ? Buffer.from('a'.repeat(rnd(300))) : rnd(4) === 0 ? randomBytes(rnd(8)) : PARTS[rnd(PARTS.length)])
      const b = Buffer.concat(parts)
      const s = rnd(Math.min(b.length, 20) + 1)
      const e = b.length - rnd(Math.min(b.length - s, 20) + 1)
      assert.equal(utf8Text(b, s, e), b.toString('utf8', s, e), b.toString('hex'))
      if (e - s >= 512 && b.subarray(s, e).includes(KEY)) pieces++
    }
    assert.ok(pieces > 200, String(pieces))
  })
})

describe('WS framing (our own RFC 6455 server side)', () => {
  let s: StartedServer
  before(async () => { s = await startServer({ udp: false }) })
  after(async () => { await s.close() })

  /** Messages of the warnings emitted while `fn` runs. */
  async function warnedDuring (fn: () => Promise<void>): Promise<string[]> {
    const from = s.warnings.length
    await fn()
    return s.warnings.slice(from).map(w => w.message)
  }

  it('answers the handshake with the RFC 6455 accept value, no extension, the first protocol offered', async () => {
    const socket = net.connect(s.port, '127.0.0.1')
    await new Promise<void>(resolve => socket.once('connect', resolve))
    // The key and accept value of RFC 6455 §1.3.
    socket.write('GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n' +
      'Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\nSec-WebSocket-Protocol: chat, superchat\r\n\r\n')
    const head = await withTimeout(new Promise<string>(resolve => {
      let got = ''
      socket.on('data', d => { got += d.toString('latin1'); if (got.includes('\r\n\r\n')) resolve(got) })
    }), REPLY_TIMEOUT_MS, '101')
    socket.destroy()
    assert.equal(head, 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      'Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: chat\r\n\r\n')
  })

  for (const [name, request, status] of [
    ['no Sec-WebSocket-Key', 'GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n', 'HTTP/1.1 400 Bad Request'],
    ['a malformed key', 'GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: short\r\nSec-WebSocket-Version: 13\r\n\r\n', 'HTTP/1.1 400 Bad Request'],
    ['version 12', 'GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 12\r\n\r\n', 'HTTP/1.1 400 Bad Request'],
    ['Upgrade: h2c', 'GET / HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n', 'HTTP/1.1 400 Bad Request'],
    ['POST', 'POST / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nContent-Length: 0\r\n\r\n', 'HTTP/1.1 405 Method Not Allowed']
  ] as const) {
    it(`refuses a handshake with ${name}: ${status}, then closes`, async () => {
      const socket = net.connect(s.port, '127.0.0.1')
      await new Promise<void>(resolve => socket.once('connect', resolve))
      socket.write(request)
      const got = await withTimeout(new Promise<string>(resolve => {
        let all = ''
        socket.on('data', d => { all += d.toString('latin1') })
        socket.on('close', () => resolve(all))
      }), REPLY_TIMEOUT_MS, 'refusal')
      assert.equal(got.split('\r\n')[0], status)
      if (name === 'version 12') assert.match(got, /\r\nSec-WebSocket-Version: 13, 8\r\n/)
    })
  }

  it('a masked text frame gets an unmasked text frame back; frames in one write are each answered', async () => {
    const { client } = await RawClient.connect(s.port)
    client.write(text(scrapeText))
    const f = await client.next()
    assert.deepEqual([f.fin, f.rsv, f.opcode, f.masked], [true, 0, 1, false])
    assert.equal(f.payload.toString(), scrapeReply)
    client.write(Buffer.concat([text(scrapeText), text('nope'), text(scrapeText)]))
    assert.equal(await client.nextText(), scrapeReply)
    assert.equal(await client.nextText(), JSON.stringify({ 'failure reason': 'invalid JSON' }))
    assert.equal(await client.nextText(), scrapeReply)
    client.destroy()
  })

  it('reassembles frames sent byte by byte, with 16- and 64-bit lengths, and a mask key split too', async () => {
    const { client } = await RawClient.connect(s.port)
    const long = JSON.stringify({ action: 'scrape', info_hash: IH, pad: 'p'.repeat(300) }) // 126..65535: 16-bit length
    const bytes = Buffer.concat([text(scrapeText), text(long)])
    for (const b of bytes) {
      client.write(Buffer.from([b]))
      await new Promise(resolve => setImmediate(resolve))
    }
    assert.equal(await client.nextText(), scrapeReply)
    assert.equal(await client.nextText(), scrapeReply)
    // A 64-bit length field for a small payload is allowed (not minimal, still valid).
    const payload = Buffer.from(scrapeText)
    const key = randomBytes(4)
    const head = Buffer.from([0x81, 0x80 | 127, 0, 0, 0, 0, 0, 0, 0, payload.length])
    const body = Buffer.from(payload.map((c, i) => c ^ key[i & 3]))
    client.write(Buffer.concat([head, key.subarray(0, 2)]))
    await new Promise(resolve => setTimeout(resolve, 20))
    client.write(Buffer.concat([key.subarray(2), body.subarray(0, 10)]))
    await new Promise(resolve => setTimeout(resolve, 20))
    client.write(body.subarray(10))
    assert.equal(await client.nextText(), scrapeReply)
    client.destroy()
  })

  it('unmasks payloads at every alignment (lengths 0–70 around the 32-bit path)', async () => {
    const { client } = await RawClient.connect(s.port)
    // Each message is an invalid-action object of a different length, so every reply is the same
    // and any unmasking error would turn it into invalid JSON.
    for (let pad = 0; pad <= 70; pad++) {
      const msg = JSON.stringify({ p: 'x'.repeat(pad) })
      // A prefix of 0–3 bytes of another frame before it shifts its payload's alignment in the read.
      client.write(Buffer.concat([text('{}'), text(msg)]))
      assert.equal(await client.nextText(), JSON.stringify({ 'failure reason': 'invalid action' }))
      assert.equal(await client.nextText(), JSON.stringify({ 'failure reason': 'invalid action' }))
    }
    client.destroy()
  })

  it('reassembles a fragmented message, with a ping answered between its fragments', async () => {
    const { client } = await RawClient.connect(s.port)
    const parts = [scrapeText.slice(0, 5), scrapeText.slice(5, 20), scrapeText.slice(20)]
    client.write(text(parts[0], { fin: false }))
    client.write(frame(0x9, 'are you there'))
    client.write(frame(0x0, parts[1], { fin: false }))
    client.write(frame(0x0, parts[2]))
    const pong = await client.next()
    assert.equal(pong.opcode, 0xa)
    assert.equal(pong.payload.toString(), 'are you there')
    assert.equal(await client.nextText(), scrapeReply)
    client.destroy()
  })

  it('a client that pings and never reads: pongs stop at WS_MAX_BUFFERED buffered, the socket still works', async () => {
    let server: { bufferedAmount: number, socket: net.Socket } | undefined
    s.server.ws!.once('connection', (ws: { bufferedAmount: number, socket: net.Socket }) => { server = ws })
    const { client } = await RawClient.connect(s.port)
    assert.ok(server !== undefined)
    const ping = frame(0x9, 'p'.repeat(125))
    const batch = Buffer.concat(Array(4096).fill(ping))
    let sent = 0
    client.socket.pause()
    try {
      while (sent < 32 * 1024 * 1024) {
        if (!client.socket.write(batch)) await withTimeout(new Promise(resolve => client.socket.once('drain', resolve)), REPLY_TIMEOUT_MS, 'drain')
        sent += batch.length
      }
      // Every ping read by the server (the handshake's bytes come on top)...
      assert.ok(await waitFor(() => server!.socket.bytesRead > sent, REPLY_TIMEOUT_MS), `${server.socket.bytesRead} of ${sent}`)
      // ...and at most one pong (2 + 125 bytes) beyond the limit waits in our memory; without the
      // limit the tens of MB the kernel does not hold would.
      assert.ok(server.bufferedAmount <= WS_MAX_BUFFERED + 127, String(server.bufferedAmount))
    } finally {
      // A paused socket would keep the test process alive after a failed assertion.
      client.socket.resume()
    }
    // Once the client has read the backlog, messages are answered again.
    assert.ok(await waitFor(() => server!.bufferedAmount === 0, REPLY_TIMEOUT_MS))
    client.write(text(scrapeText))
    let pongs = 0
    for (;;) {
      const f = await client.next()
      if (f.opcode === 0x1) { assert.equal(f.payload.toString(), scrapeReply); break }
      assert.equal(f.opcode, 0xa)
      pongs++
    }
    assert.ok(pongs > 0 && pongs < sent / ping.length, `${pongs} pongs for ${sent / ping.length} pings`)
    client.destroy()
  })

  it('a binary message is answered like invalid JSON; a pong is accepted silently', async () => {
    const { client } = await RawClient.connect(s.port)
    client.write(frame(0xa, 'unsolicited'))
    client.write(frame(0x2, Buffer.from(scrapeText)))
    assert.equal(await client.nextText(), JSON.stringify({ 'failure reason': 'invalid JSON' }))
    client.destroy()
  })

  it('text holding a real U+FFFD is valid UTF-8 and decoded', async () => {
    const { client } = await RawClient.connect(s.port)
    client.write(text('{"x":"\uFFFD"}'))
    assert.equal(await client.nextText(), JSON.stringify({ 'failure reason': 'invalid action' }))
    client.destroy()
  })

  const hostile: Array<[string, () => Buffer, number, string]> = [
    ['an unmasked frame', () => text(scrapeText, { mask: false }), WS_CLOSE_PROTOCOL_ERROR, 'client frame not masked'],
    ['an unmasked empty frame (refused from its 2 header bytes)', () => Buffer.from([0x81, 0x00]), WS_CLOSE_PROTOCOL_ERROR, 'client frame not masked'],
    ['RSV1 set (no extension negotiated)', () => text(scrapeText, { rsv: 4 }), WS_CLOSE_PROTOCOL_ERROR, 'reserved bits set'],
    ['RSV3 set', () => text(scrapeText, { rsv: 1 }), WS_CLOSE_PROTOCOL_ERROR, 'reserved bits set'],
    ['reserved data opcode 3', () => frame(0x3, 'x'), WS_CLOSE_PROTOCOL_ERROR, 'reserved opcode 3'],
    ['reserved control opcode 0xB', () => frame(0xb, 'x'), WS_CLOSE_PROTOCOL_ERROR, 'reserved opcode 11'],
    ['a continuation with no message started', () => frame(0x0, 'x'), WS_CLOSE_PROTOCOL_ERROR, 'continuation without a message'],
    ['a new text frame inside a fragmented message', () => Buffer.concat([text('{', { fin: false }), text('}')]), WS_CLOSE_PROTOCOL_ERROR, 'new message inside a fragmented one'],
    ['a fragmented ping', () => frame(0x9, 'x', { fin: false }), WS_CLOSE_PROTOCOL_ERROR, 'fragmented control frame'],
    ['a ping of 126 bytes', () => frame(0x9, 'x'.repeat(126)), WS_CLOSE_PROTOCOL_ERROR, 'control frame too long'],
    ['a close frame of 1 byte', () => frame(0x8, Buffer.from([3])), WS_CLOSE_PROTOCOL_ERROR, 'close frame of 1 byte'],
    ['close code 1005 (never sent on the wire)', () => closeFrame(1005), WS_CLOSE_PROTOCOL_ERROR, 'invalid close code 1005'],
    ['close code 999', () => closeFrame(999), WS_CLOSE_PROTOCOL_ERROR, 'invalid close code 999'],
    ['a close reason that is not UTF-8', () => frame(0x8, Buffer.from([0x03, 0xe8, 0xc3, 0x28])), WS_CLOSE_INVALID_PAYLOAD, 'invalid UTF-8 close reason'],
    ['a text message that is not UTF-8', () => frame(0x1, Buffer.from([0x7b, 0xc3, 0x28, 0x7d])), WS_CLOSE_INVALID_PAYLOAD, 'invalid UTF-8'],
    ['a long signalling frame with invalid UTF-8 after an SDP (decoded in pieces)', () => frame(0x1, Buffer.concat([
      Buffer.from('{"x":"\xe9\xff","offers":[{"offer":{"sdp":"' + 'v'.repeat(600)), Buffer.from([0xc3, 0x28]), Buffer.from('"}}]}')])),
    WS_CLOSE_INVALID_PAYLOAD, 'invalid UTF-8'],
    ['UTF-8 split between fragments, invalid once joined', () => Buffer.concat([frame(0x1, Buffer.from([0x22, 0xe2, 0x82]), { fin: false }), frame(0x0, Buffer.from([0x22]))]), WS_CLOSE_INVALID_PAYLOAD, 'invalid UTF-8'],
    ['a frame longer than WS_MAX_FRAME (refused from its header)', () => text('', { len: WS_MAX_FRAME + 1 }).subarray(0, 14), WS_CLOSE_TOO_BIG, 'Max payload size exceeded'],
    ['a 64-bit length of 2^32', () => Buffer.from([0x81, 0xff, 0, 0, 0, 1, 0, 0, 0, 0, 1, 2, 3, 4]), WS_CLOSE_TOO_BIG, 'Max payload size exceeded'],
    ['a 64-bit length with its top bit set', () => Buffer.from([0x81, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4]), WS_CLOSE_PROTOCOL_ERROR, 'Max payload size exceeded'],
    ['fragments adding up to more than WS_MAX_MESSAGE', () => Buffer.concat([
      text('x'.repeat(WS_MAX_MESSAGE / 2), { fin: false }), frame(0x0, 'x'.repeat(WS_MAX_MESSAGE / 2), { fin: false }), frame(0x0, 'x')
    ]), WS_CLOSE_TOO_BIG, 'Max payload size exceeded'],
    ['more than WS_MAX_FRAGMENTS fragments', () => Buffer.concat([text('x', { fin: false }), ...Array.from({ length: WS_MAX_FRAGMENTS }, () => frame(0x0, 'x', { fin: false }))]),
      WS_CLOSE_TOO_BIG, 'too many fragments']
  ]

  for (const [name, bytes, code, reason] of hostile) {
    it(`${name}: close ${code}, the connection ends, a warning says why, other sockets unaffected`, async () => {
      const other = await wsClient(s.ws)
      const { client } = await RawClient.connect(s.port)
      const warned = await warnedDuring(async () => {
        client.write(bytes())
        await client.expectClose(code)
      })
      assert.deepEqual(warned, [`WebSocket closed (${code}): ${reason}`])
      other.send(scrapeText)
      assert.equal(await other.nextRaw(REPLY_TIMEOUT_MS), scrapeReply)
      await other.close()
    })
  }

  it('a client close gets the same code back, the TCP close, and its peer leaves the swarm', async () => {
    const { client } = await RawClient.connect(s.port)
    const closes: number[] = []
    s.server.ws!.once('connection', (socket: { once: (e: string, f: (code: number) => void) => void }) => socket.once('close', code => closes.push(code)))
    const second = await RawClient.connect(s.port)
    second.client.write(text(JSON.stringify({ action: 'announce', info_hash: IH, peer_id: id20(1), numwant: 0, uploaded: 0, downloaded: 0, left: 1, event: 'started' })))
    assert.equal(JSON.parse(await second.client.nextText()).incomplete, 1)
    assert.equal(s.server.torrents[hex(IH)].peers.size, 1)
    second.client.write(closeFrame(WS_CLOSE_NORMAL, 'bye'))
    await second.client.expectClose(WS_CLOSE_NORMAL)
    assert.ok(await waitFor(() => (s.server.torrents[hex(IH)]?.peers.size ?? 0) === 0, 2000))
    assert.deepEqual(closes, [WS_CLOSE_NORMAL])
    client.destroy()
  })

  it('a close frame without a code is answered with an empty close frame', async () => {
    const { client } = await RawClient.connect(s.port)
    client.write(frame(0x8, Buffer.alloc(0)))
    const f = await client.next()
    assert.deepEqual([f.opcode, f.payload.length], [0x8, 0])
    await client.closed
  })

  it('a client vanishing mid-frame (header, then half a payload) leaves no peer behind', async () => {
    for (const cut of [1, 5, 40]) {
      const { client } = await RawClient.connect(s.port)
      client.write(text(JSON.stringify({ action: 'announce', info_hash: IH, peer_id: id20(2), numwant: 0, uploaded: 0, downloaded: 0, left: 1, event: 'started' })))
      assert.equal(JSON.parse(await client.nextText()).incomplete, 1)
      client.write(text(scrapeText).subarray(0, cut))
      await new Promise(resolve => setTimeout(resolve, 20))
      client.destroy()
      assert.ok(await waitFor(() => (s.server.torrents[hex(IH)]?.peers.size ?? 0) === 0, 2000), `cut at ${cut}`)
    }
  })

  it('a client that half-closes (FIN, no close frame) is closed too', async () => {
    const { client } = await RawClient.connect(s.port)
    client.socket.end()
    await withTimeout(client.closed, REPLY_TIMEOUT_MS, 'close after FIN')
  })
})

describe('WS framing: heartbeat-independent shutdowns', () => {
  it('drain sends close 1001 to our own sockets, and the server ends them', async () => {
    const s = await startServer({ udp: false })
    const { client } = await RawClient.connect(s.port)
    const drained = new Promise<void>(resolve => s.server.drain(() => resolve()))
    const f = await client.next()
    assert.equal(f.opcode, 0x8)
    assert.equal(f.payload.readUInt16BE(0), WS_CLOSE_GOING_AWAY)
    assert.equal(f.payload.subarray(2).toString(), 'tracker restarting')
    // The client completes the handshake; the server then closes the TCP connection.
    client.write(closeFrame(WS_CLOSE_GOING_AWAY))
    await withTimeout(client.closed, REPLY_TIMEOUT_MS, 'TCP close after the close handshake')
    await withTimeout(drained, 10_000, 'drain')
  })

  it('server.ws is a ws server (noServer) that still emits headers and connection for our sockets; ws options keep the ws package', async () => {
    const s = await startServer({ udp: false })
    const seen: string[] = []
    s.server.ws!.on('connection', (_socket: unknown, req: { url: string }) => seen.push(req.url))
    // 'headers' lets users add response lines, as with the ws package (the workers tag theirs).
    s.server.ws!.on('headers', (headers: string[]) => headers.push('X-Test: 1'))
    const { client, response } = await RawClient.connect(s.port, '/some/path')
    assert.match(response, /^HTTP\/1\.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: [A-Za-z0-9+/]{27}=\r\nX-Test: 1\r\n\r\n$/)
    assert.ok(await waitFor(() => seen.length === 1, 2000))
    assert.deepEqual(seen, ['/some/path'])
    client.destroy()
    await s.close()
    // With ws options, the ws package serves: its limit (here smaller) applies, with its message.
    const t = await startServer({ udp: false, ws: { maxPayload: 100 } })
    const c = await wsClient(t.ws)
    c.send(JSON.stringify({ action: 'scrape', info_hash: IH, pad: 'x'.repeat(200) }))
    assert.equal(await withTimeout(c.closed, REPLY_TIMEOUT_MS, 'close'), WS_CLOSE_TOO_BIG)
    assert.ok(t.warnings.some(w => /Max payload size exceeded/.test(w.message)))
    await t.close()
  })
})
