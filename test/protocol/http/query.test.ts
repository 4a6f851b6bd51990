import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { parseQuery, percentEncodeBytes, percentEncodeText, type QueryParam } from '../../../src/protocol/http/query.js'
import { MAX_QUERY_PARAMS } from '../../../src/constants.js'

function parsed (q: string): QueryParam[] {
  const r = parseQuery(q)
  if (!r.ok) assert.fail(`expected ok, got ${r.error.code}: ${r.error.message}`)
  return r.value
}

const latin1 = (u8: Uint8Array): string => Buffer.from(u8).toString('latin1')

describe('parseQuery', () => {
  it('splits names and values in order, keeping repeats', () => {
    assert.deepEqual(parsed('a=1&b=2&a=3'), [
      { name: 'a', value: '1' }, { name: 'b', value: '2' }, { name: 'a', value: '3' }])
  })
  it('skips a leading ? and empty segments; a bare name has value ""', () => {
    assert.deepEqual(parsed('?a=1&&b&=x&'), [
      { name: 'a', value: '1' }, { name: 'b', value: '' }, { name: '', value: 'x' }])
    assert.deepEqual(parsed(''), [])
    assert.deepEqual(parsed('?'), [])
    assert.deepEqual(parsed('&&&'), [])
  })
  it('splits on the first = only', () => {
    assert.deepEqual(parsed('a=b=c'), [{ name: 'a', value: 'b=c' }])
  })
  it('percent-decodes to BYTES, never through UTF-8', () => {
    // %C3%A9 stays two bytes; %FF and %80 are not valid UTF-8 but are valid bytes; %00 is a byte.
    assert.deepEqual(parsed('x=%C3%A9%ff%80%00%41'), [{ name: 'x', value: '\xc3\xa9\xff\x80\x00A' }])
    assert.deepEqual(parsed('%69nfo_hash=1'), [{ name: 'info_hash', value: '1' }])
  })
  it('decodes a 20-byte info hash with every kind of byte', () => {
    const hash = '\x00\x01\x7f\x80\xff%&=+ abcXZ-._~\x0a'
    assert.equal(hash.length, 20)
    assert.deepEqual(parsed(`info_hash=${percentEncodeBytes(hash)}`), [{ name: 'info_hash', value: hash }])
  })
  it('reads + as space; a %2B is a literal +', () => {
    assert.deepEqual(parsed('a+b=c+d%2B'), [{ name: 'a b', value: 'c d+' }])
  })
  it('keeps raw chars 0x80–0xFF as the bytes they stand for', () => {
    assert.deepEqual(parsed('k=\xe9\xff'), [{ name: 'k', value: '\xe9\xff' }])
  })
  it('INVALID_QUERY on bad escapes', () => {
    for (const q of ['a=%', 'a=%4', 'a=%G0', 'a=%0G', '%=1', 'a=1&b=%zz', 'a=%%41', 'a=%4&b']) {
      const r = parseQuery(q)
      assert.equal(r.ok, false, q)
      if (!r.ok) assert.equal(r.error.code, 'INVALID_QUERY', q)
    }
  })
  it('INVALID_QUERY on chars above 0xFF, with the offset', () => {
    const r = parseQuery('a=1&b=\u0100')
    assert.equal(r.ok, false)
    if (!r.ok) {
      assert.equal(r.error.code, 'INVALID_QUERY')
      assert.equal(r.error.message, 'malformed query string: bad escape or character at offset 6')
    }
    const r2 = parseQuery('\u20ac=1')
    assert.equal(r2.ok, false)
    if (!r2.ok) assert.equal(r2.error.code, 'INVALID_QUERY')
  })
  it('INVALID_QUERY on a non-string', () => {
    const r = parseQuery(undefined as unknown as string)
    assert.equal(r.ok, false)
    if (!r.ok) assert.equal(r.error.code, 'INVALID_QUERY')
  })
  it('TOO_MANY_PARAMS beyond MAX_QUERY_PARAMS (empty segments do not count)', () => {
    const atLimit = Array.from({ length: MAX_QUERY_PARAMS }, (_, i) => `p${i}=${i}`).join('&&')
    assert.equal(parsed(atLimit).length, MAX_QUERY_PARAMS)
    const r = parseQuery(atLimit + '&x=1')
    assert.equal(r.ok, false)
    if (!r.ok) {
      assert.equal(r.error.code, 'TOO_MANY_PARAMS')
      assert.equal(r.error.message, `too many query parameters: more than ${MAX_QUERY_PARAMS}`)
    }
    const r2 = parseQuery('a&b&c', 2)
    assert.equal(r2.ok, false)
    if (!r2.ok) assert.equal(r2.error.code, 'TOO_MANY_PARAMS')
  })
  it('is linear on hostile input', () => {
    const q = 'a'.repeat(200_000) + '&' + '='.repeat(200_000)
    const t = performance.now()
    assert.equal(parsed(q).length, 2)
    assert.ok(performance.now() - t < 1000)
  })
})

describe('percentEncodeBytes', () => {
  it('leaves exactly the unreserved set unescaped, uppercase hex otherwise', () => {
    const all = Uint8Array.from({ length: 256 }, (_, i) => i)
    const enc = percentEncodeBytes(all)
    const plain = enc.replace(/%[0-9A-F]{2}/g, '')
    assert.equal(plain, '-.0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz~')
    assert.equal(enc.length, plain.length + (256 - plain.length) * 3)
    assert.equal(percentEncodeBytes(new Uint8Array([0x00, 0x20, 0x2b, 0x80, 0xff, 0x7e])), '%00%20%2B%80%FF~')
  })
  it('takes binary strings too', () => {
    assert.equal(percentEncodeBytes('\x00\xff a'), '%00%FF%20a')
    assert.equal(percentEncodeBytes(''), '')
  })
  it('property: parseQuery inverts it for any bytes', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 40 }), fc.uint8Array({ maxLength: 40 }), (n, v) => {
      const [p, ...rest] = parsed(`${percentEncodeBytes(n)}=${percentEncodeBytes(v)}`)
      assert.equal(rest.length, 0)
      if (n.length === 0 && v.length === 0) return // "=" alone still gives one param
      assert.deepEqual(p, { name: latin1(n), value: latin1(v) })
    }))
  })
  it('property: agrees with URLSearchParams on printable ASCII', () => {
    fc.assert(fc.property(fc.string({ unit: 'grapheme-ascii', maxLength: 30 }), (s) => {
      const enc = percentEncodeBytes(s)
      assert.equal(new URLSearchParams(`k=${enc}`).get('k'), s)
    }))
  })
})

describe('percentEncodeText', () => {
  it('encodes text as UTF-8 bytes', () => {
    assert.equal(percentEncodeText('é €'), '%C3%A9%20%E2%82%AC')
    assert.equal(percentEncodeText('abc-_.~'), 'abc-_.~')
    assert.equal(percentEncodeText("!'()*"), '%21%27%28%29%2A')
  })
  it('does not throw on lone surrogates (encodeURIComponent would)', () => {
    assert.equal(percentEncodeText('\ud800'), '%EF%BF%BD')
  })
})

describe('parseQuery never throws', () => {
  it('on random strings', () => {
    const chars = fc.constantFrom('a', '=', '&', '%', '+', '0', 'f', 'G', '?', '\xff', '\u0100', '\ud800')
    fc.assert(fc.property(fc.string({ unit: chars, maxLength: 60 }), (s) => {
      const r = parseQuery(s)
      if (!r.ok) assert.ok(r.error.code === 'INVALID_QUERY' || r.error.code === 'TOO_MANY_PARAMS')
      else for (const p of r.value) for (const x of [p.name, p.value]) for (let i = 0; i < x.length; i++) assert.ok(x.charCodeAt(i) <= 0xff)
    }), { numRuns: 5000 })
  })
  it('on arbitrary unicode', () => {
    fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 60 }), (s) => {
      assert.equal(typeof parseQuery(s).ok, 'boolean')
    }), { numRuns: 2000 })
  })
})
