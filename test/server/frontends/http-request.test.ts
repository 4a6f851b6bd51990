/**
 * The fast path's strict request-head reader: the forms it accepts (and what it reads from
 * them), every form it leaves to node:http, and fuzzing against an independent model.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import {
  findHeadEnd, headersObject, newRequestHead, parseRequestHead, partialHeadRejected
} from '../../../src/server/frontends/http-request.js'
import { HTTP_FAST_MAX_HEAD_BYTES, HTTP_FAST_MAX_HEADERS } from '../../../src/constants.js'

function parse (text: string): ReturnType<typeof newRequestHead> | null {
  const buf = Buffer.from(text, 'latin1')
  const end = findHeadEnd(buf, 0)
  assert.equal(end, buf.length, 'one whole head')
  const out = newRequestHead()
  return parseRequestHead(buf, 0, end, out) ? out : null
}

const GOOD = 'GET /announce?info_hash=%AA&port=1 HTTP/1.1\r\nHost: t.example:8000\r\nUser-Agent: qBittorrent/4.6.3\r\nAccept-Encoding: gzip\r\n\r\n'

describe('parseRequestHead: accepted forms', () => {
  it('reads a libtorrent-style GET: target, keep-alive, header offsets', () => {
    const h = parse(GOOD)
    assert.ok(h !== null)
    assert.equal(h.url, '/announce?info_hash=%AA&port=1')
    assert.equal(h.head, false)
    assert.equal(h.close, false)
    assert.equal(h.forwardedFor, undefined)
    assert.equal(h.headersStart, 'GET /announce?info_hash=%AA&port=1 HTTP/1.1\r\n'.length)
    assert.equal(h.headersEnd, GOOD.length - 2)
  })

  it('HEAD, Connection: close / keep-alive in any case, whitespace around values', () => {
    assert.deepEqual(parse('HEAD /scrape HTTP/1.1\r\nhost: x\r\n\r\n')?.head, true)
    assert.equal(parse('GET /a HTTP/1.1\r\nHOST:x\r\nCONNECTION:   Close  \r\n\r\n')?.close, true)
    assert.equal(parse('GET /a HTTP/1.1\r\nHost: x\r\nConnection: Keep-Alive\r\n\r\n')?.close, false)
    assert.equal(parse('GET /a HTTP/1.1\r\nHost: x\r\nConnection:\tclose\t\r\n\r\n')?.close, true)
  })

  it('X-Forwarded-For: repeated headers joined with ", " as node:http does', () => {
    assert.equal(parse('GET /a HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 1.2.3.4\r\n\r\n')?.forwardedFor, '1.2.3.4')
    assert.equal(parse('GET /a HTTP/1.1\r\nX-Forwarded-For: 1.1.1.1, 2.2.2.2 \r\nHost: x\r\nx-forwarded-for:3.3.3.3\r\n\r\n')?.forwardedFor,
      '1.1.1.1, 2.2.2.2, 3.3.3.3')
    assert.equal(parse('GET /a HTTP/1.1\r\nHost: x\r\nX-Forwarded-For:\r\n\r\n')?.forwardedFor, '')
  })

  it('exactly HTTP_FAST_MAX_HEADERS headers pass', () => {
    const lines = ['Host: x', ...Array.from({ length: HTTP_FAST_MAX_HEADERS - 1 }, (_, i) => `X-H${i}: ${i}`)]
    assert.ok(parse(`GET / HTTP/1.1\r\n${lines.join('\r\n')}\r\n\r\n`) !== null)
  })

  it('a head found after earlier bytes (pipelining): offsets are absolute', () => {
    const two = Buffer.from(GOOD + 'GET /scrape?x HTTP/1.1\r\nHost: y\r\nConnection: close\r\n\r\n', 'latin1')
    const e1 = findHeadEnd(two, 0)
    assert.equal(e1, GOOD.length)
    const e2 = findHeadEnd(two, e1)
    assert.equal(e2, two.length)
    const out = newRequestHead()
    assert.equal(parseRequestHead(two, e1, e2, out), true)
    assert.equal(out.url, '/scrape?x')
    assert.equal(out.close, true)
    assert.equal(out.headersStart, e1 + 'GET /scrape?x HTTP/1.1\r\n'.length)
  })
})

describe('parseRequestHead: left to node:http', () => {
  const cases: Array<[string, string]> = [
    ['POST', 'POST /announce HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['lower-case method', 'get /announce HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['OPTIONS', 'OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['HTTP/1.0', 'GET /announce HTTP/1.0\r\nHost: x\r\n\r\n'],
    ['HTTP/2.0', 'GET /announce HTTP/2.0\r\nHost: x\r\n\r\n'],
    ['no version', 'GET /announce\r\nHost: x\r\n\r\n'],
    ['absolute-form', 'GET http://x/announce HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['two spaces', 'GET  /announce HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['non-ASCII in target', 'GET /announce?\xff HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['TAB in target', 'GET /a\tb HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['no Host', 'GET /announce HTTP/1.1\r\nUser-Agent: x\r\n\r\n'],
    ['two Hosts', 'GET /announce HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n'],
    ['Content-Length', 'GET /announce HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n'],
    ['Transfer-Encoding', 'GET /announce HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n'],
    ['CL and TE', 'GET /announce HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n'],
    ['Expect', 'GET /announce HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n'],
    ['Upgrade', 'GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n'],
    ['Upgrade header alone', 'GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n'],
    ['Connection list', 'GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, TE\r\n\r\n'],
    ['two Connection headers', 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nConnection: close\r\n\r\n'],
    ['obs-fold', 'GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n  2\r\n\r\n'],
    ['space before colon', 'GET / HTTP/1.1\r\nHost : x\r\n\r\n'],
    ['empty name', 'GET / HTTP/1.1\r\nHost: x\r\n: v\r\n\r\n'],
    ['no colon', 'GET / HTTP/1.1\r\nHost: x\r\nX-A\r\n\r\n'],
    ['NUL in value', 'GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n'],
    ['bare LF in value', 'GET / HTTP/1.1\r\nHost: x\r\nX-A: a\nb\r\n\r\n'],
    ['bare CR in value', 'GET / HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n'],
    ['bare LF line end', 'GET / HTTP/1.1\nHost: x\r\n\r\n'],
    ['non-ASCII in value', 'GET / HTTP/1.1\r\nHost: x\r\nX-A: \xe9\r\n\r\n'],
    ['DEL in value', 'GET / HTTP/1.1\r\nHost: x\r\nX-A: \x7f\r\n\r\n'],
    ['leading CRLF', '\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n']
  ]
  for (const [name, text] of cases) {
    it(name, () => {
      const buf = Buffer.from(text, 'latin1')
      const end = findHeadEnd(buf, 0)
      // Some of these have no CRLFCRLF at all: then they can never be read as the fast form.
      if (end !== -1) assert.equal(parseRequestHead(buf, 0, end, newRequestHead()), false)
      else assert.equal(partialHeadRejected(buf, 0, buf.length), true)
    })
  }

  it('one header more than HTTP_FAST_MAX_HEADERS', () => {
    const lines = ['Host: x', ...Array.from({ length: HTTP_FAST_MAX_HEADERS }, (_, i) => `X-H${i}: ${i}`)]
    assert.equal(parse(`GET / HTTP/1.1\r\n${lines.join('\r\n')}\r\n\r\n`), null)
  })

  it('a head over HTTP_FAST_MAX_HEAD_BYTES', () => {
    const pad = 'a'.repeat(HTTP_FAST_MAX_HEAD_BYTES)
    assert.equal(parse(`GET /announce?${pad} HTTP/1.1\r\nHost: x\r\n\r\n`), null)
    assert.equal(partialHeadRejected(Buffer.from(`GET /announce?${pad}`), 0, HTTP_FAST_MAX_HEAD_BYTES), true)
  })
})

describe('partialHeadRejected', () => {
  it('an incomplete valid head is not rejected; a CR at the end waits for its LF', () => {
    for (const t of ['G', 'GET /announce?x=1 HT', 'GET / HTTP/1.1\r', 'GET / HTTP/1.1\r\nHost: x\r\n', 'GET / HTTP/1.1\r\nHost: x\r\n\r']) {
      assert.equal(partialHeadRejected(Buffer.from(t, 'latin1'), 0, t.length), false, JSON.stringify(t))
    }
  })
  it('NUL, bare LF, CR before another byte, non-ASCII: rejected before the head ends', () => {
    for (const t of ['GET /\x00', 'GET /\n', 'GET / HTTP/1.1\rX', 'GET /\xc3\xa9', '\nGET']) {
      assert.equal(partialHeadRejected(Buffer.from(t, 'latin1'), 0, t.length), true, JSON.stringify(t))
    }
  })
  it('looks only at [start, end)', () => {
    const b = Buffer.from('\x00\x00GET /', 'latin1')
    assert.equal(partialHeadRejected(b, 2, b.length), false)
  })
})

describe('headersObject: as node:http builds req.headers', () => {
  it('lower-case names, trimmed values, repeats joined, first-wins and cookie rules', () => {
    const text = 'GET / HTTP/1.1\r\nHost: a\r\nUser-Agent: one\r\nX-List: 1\r\nx-list: 2 \r\nUser-Agent: two\r\n' +
      'Cookie: a=1\r\nCookie: b=2\r\nSet-Cookie: s=1\r\nSet-Cookie: s=2\r\nConstructor: c\r\n__proto__: p\r\n\r\n'
    const h = parse(text)
    assert.ok(h !== null)
    const headers = headersObject(Buffer.from(text, 'latin1'), h.headersStart, h.headersEnd)
    assert.deepEqual({ ...headers }, {
      host: 'a', 'user-agent': 'one', 'x-list': '1, 2', cookie: 'a=1; b=2', 'set-cookie': ['s=1', 's=2'], constructor: 'c'
    })
    assert.equal(Object.getPrototypeOf(headers), Object.prototype)
  })
})

// An independent model of the accepted language, for fuzzing: the reader must accept exactly
// the heads the model generates and read the same fields from them.
const tokenChar = fc.constantFrom(...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&\'*+-.^_`|~'.split(''))
const headerName = fc.string({ unit: tokenChar, minLength: 1, maxLength: 12 })
  .filter(n => !['host', 'connection', 'x-forwarded-for', 'content-length', 'transfer-encoding', 'upgrade', 'expect', 'http2-settings', 'te', 'trailer'].includes(n.toLowerCase()))
const valueChar = fc.integer({ min: 0x20, max: 0x7e }).map(c => String.fromCharCode(c))
const headerValue = fc.string({ unit: valueChar, maxLength: 20 }).map(v => v.trim())
const targetChar = fc.integer({ min: 0x21, max: 0x7e }).map(c => String.fromCharCode(c))
const target = fc.string({ unit: targetChar, maxLength: 60 }).map(t => '/' + t)

describe('parseRequestHead: fuzzed', () => {
  it('accepts every generated valid head and reads its fields', () => {
    fc.assert(fc.property(
      fc.boolean(), target, fc.array(fc.tuple(headerName, headerValue), { maxLength: 8 }), fc.constantFrom(undefined, 'close', 'keep-alive'),
      fc.option(headerValue, { nil: undefined }), fc.nat({ max: 9 }),
      (isHead, url, extra, conn, xff, hostAt) => {
        const lines = extra.map(([n, v]) => `${n}: ${v}`)
        lines.splice(Math.min(hostAt, lines.length), 0, 'Host: h')
        if (conn !== undefined) lines.push(`Connection: ${conn}`)
        if (xff !== undefined) lines.push(`X-Forwarded-For: ${xff}`)
        const h = parse(`${isHead ? 'HEAD' : 'GET'} ${url} HTTP/1.1\r\n${lines.join('\r\n')}\r\n\r\n`)
        assert.ok(h !== null)
        assert.equal(h.url, url)
        assert.equal(h.head, isHead)
        assert.equal(h.close, conn === 'close')
        assert.equal(h.forwardedFor, xff)
      }), { numRuns: 500 })
  })

  it('one byte replaced by a control byte, DEL or non-ASCII byte: never accepted', () => {
    fc.assert(fc.property(
      fc.nat({ max: GOOD.length - 5 }), fc.oneof(fc.integer({ min: 0, max: 0x1f }).filter(c => c !== 0x09), fc.integer({ min: 0x7f, max: 0xff })),
      (at, byte) => {
        const buf = Buffer.from(GOOD, 'latin1')
        // The CRLFs of the head are control bytes too: replacing one with itself changes nothing.
        if (buf[at] === byte) return
        buf[at] = byte
        const end = findHeadEnd(buf, 0)
        if (end === -1) return
        assert.equal(parseRequestHead(buf, 0, end, newRequestHead()), false)
      }), { numRuns: 500 })
  })

  it('random bytes: never throws, and what it accepts re-reads the same way', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), fc.boolean(), (bytes, prefix) => {
      const buf = Buffer.concat([prefix ? Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n') : Buffer.alloc(0), Buffer.from(bytes), Buffer.from('\r\n\r\n')])
      const end = findHeadEnd(buf, 0)
      const out = newRequestHead()
      if (parseRequestHead(buf, 0, end, out)) {
        // Everything accepted is visible ASCII + CRLF, and starts with GET or HEAD.
        const text = buf.subarray(0, end).toString('latin1')
        assert.match(text, /^(GET|HEAD) \/[\x21-\x7e]* HTTP\/1\.1\r\n([\x21-\x7e]+:[\x20-\x7e\t]*\r\n)*\r\n$/)
        assert.equal(out.url, text.slice(text.indexOf(' ') + 1, text.indexOf(' HTTP/1.1')))
      }
    }), { numRuns: 1000 })
  })
})
