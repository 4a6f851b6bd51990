import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import {
  bbinary, bbytes, bdecode, bdecodeDict, bdict, bencode, bint, bintLength, blist, bstr, buint, utf8Length,
  type BEncodable, type BValue
} from '../../../src/protocol/common/bencode.js'
import { BENCODE_MAX_DEPTH } from '../../../src/constants.js'

const te = new TextEncoder()
const ascii = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0))
const latin1 = (u8: Uint8Array): string => Buffer.from(u8).toString('latin1')

function decodeOk (s: string | Uint8Array): BValue {
  const r = bdecode(typeof s === 'string' ? ascii(s) : s)
  if (!r.ok) assert.fail(`expected ok, got ${r.error.message}`)
  return r.value
}

function decodeErr (s: string | Uint8Array, pattern: RegExp): void {
  const r = bdecode(typeof s === 'string' ? ascii(s) : s)
  assert.equal(r.ok, false, `expected failure for ${JSON.stringify(typeof s === 'string' ? s : latin1(s))}`)
  if (!r.ok) {
    assert.equal(r.error.code, 'INVALID_PACKET')
    assert.match(r.error.message, pattern)
  }
}

describe('bencode', () => {
  it('encodes integers', () => {
    assert.equal(latin1(bencode(0)), 'i0e')
    assert.equal(latin1(bencode(-42)), 'i-42e')
    assert.equal(latin1(bencode(Number.MAX_SAFE_INTEGER)), 'i9007199254740991e')
    assert.equal(latin1(bencode(-0)), 'i0e')
  })
  it('rejects non-integers and unsafe integers', () => {
    for (const v of [1.5, NaN, Infinity, -Infinity, 2 ** 53]) assert.throws(() => bencode(v), TypeError)
  })
  it('encodes text as UTF-8 and bytes raw', () => {
    assert.equal(latin1(bencode('spam')), '4:spam')
    assert.equal(latin1(bencode('')), '0:')
    assert.equal(latin1(bencode('é')), '2:\xc3\xa9')
    assert.equal(latin1(bencode('😀')), '4:\xf0\x9f\x98\x80')
    assert.equal(latin1(bencode('\ud800')), '3:\xef\xbf\xbd') // lone surrogate → U+FFFD
    assert.equal(latin1(bencode(new Uint8Array([0, 0x80, 0xff]))), '3:\x00\x80\xff')
    assert.equal(latin1(bencode(Buffer.from('ab'))), '2:ab')
  })
  it('encodes lists and dicts with byte-sorted keys, skipping undefined', () => {
    assert.equal(latin1(bencode(['spam', 42, []])), 'l4:spami42elee')
    assert.equal(latin1(bencode({ zeta: 1, alpha: 'x', mid: undefined, B: 2, '10': 3, '9': 4 })),
      'd2:10i3e1:9i4e1:Bi2e5:alpha1:x4:zetai1ee') // '1' < '9' < 'B' < 'a' < 'z' as bytes
    assert.equal(latin1(bencode({})), 'de')
  })
  it('writes binary-string keys one byte per char (raw info hashes as keys)', () => {
    const hash = '\x00\xff\x80\x7f' + 'a'.repeat(16)
    const out = bencode({ [hash]: 1, '\x01': 2 })
    // sorted: \x00… < \x01
    assert.deepEqual(out, Uint8Array.from([
      ...ascii('d20:'), 0x00, 0xff, 0x80, 0x7f, ...ascii('a'.repeat(16)), ...ascii('i1e'),
      ...ascii('1:'), 0x01, ...ascii('i2ee')]))
  })
  it('throws on keys that are not binary strings, unsupported values and cycles', () => {
    assert.throws(() => bencode({ '\u0100': 1 }), TypeError)
    assert.throws(() => bencode(null as unknown as BEncodable), TypeError)
    assert.throws(() => bencode(true as unknown as BEncodable), TypeError)
    assert.throws(() => bencode(new Map() as unknown as BEncodable), TypeError)
    assert.throws(() => bencode(new Uint16Array(2) as unknown as BEncodable), TypeError)
    const cyclic: unknown[] = []
    cyclic.push(cyclic)
    assert.throws(() => bencode(cyclic as BEncodable), TypeError)
  })
  it('accepts null-prototype dicts', () => {
    const d = Object.create(null) as Record<string, BEncodable>
    d.b = 1
    d.a = 2
    assert.equal(latin1(bencode(d)), 'd1:ai2e1:bi1ee')
  })
  it('grows its buffer for large values', () => {
    const big = new Uint8Array(100_000).fill(7)
    const out = bencode([big, 'x'.repeat(1000)])
    assert.equal(out.length, 1 + 7 + 100_000 + 5 + 1000 + 1)
    assert.equal(latin1(out.subarray(0, 8)), 'l100000:')
    assert.equal(latin1(out.subarray(-7)), 'xxxxxxe')
  })
  it('utf8Length and bintLength', () => {
    assert.equal(utf8Length('a\u00e9\u20ac\ud83d\ude00\ud800'), 1 + 2 + 3 + 4 + 3)
    assert.equal(utf8Length('\udc00\ud800x'), 3 + 3 + 1)
    assert.equal(bintLength(0), 3)
    assert.equal(bintLength(-10), 5)
    assert.equal(bintLength(Number.MAX_SAFE_INTEGER), 18)
    for (const v of [0, 9, 10, 99, 100, -1, -9, -10, 123456789]) assert.equal(bintLength(v), `i${v}e`.length)
  })
})

describe('bdecode', () => {
  it('decodes integers', () => {
    assert.equal(decodeOk('i0e'), 0)
    assert.equal(decodeOk('i-1e'), -1)
    assert.equal(decodeOk('i9007199254740991e'), Number.MAX_SAFE_INTEGER)
    assert.equal(decodeOk('i-9007199254740991e'), -Number.MAX_SAFE_INTEGER)
  })
  it('rejects bad integers', () => {
    decodeErr('i03e', /leading zero/)
    decodeErr('i00e', /leading zero/)
    decodeErr('i-0e', /negative zero/)
    decodeErr('i-03e', /negative zero/)
    decodeErr('ie', /without digits/)
    decodeErr('i-e', /without digits/)
    decodeErr('i1', /unterminated integer/)
    decodeErr('i1x', /unterminated integer/)
    decodeErr('i+1e', /without digits/)
    decodeErr('i9007199254740992e', /safe range/)
    decodeErr('i99999999999999999999999999e', /safe range/)
  })
  it('decodes byte strings as views, keeping every byte', () => {
    const input = Uint8Array.from([...ascii('3:'), 0x00, 0x80, 0xff])
    const v = decodeOk(input)
    assert.ok(v instanceof Uint8Array)
    assert.deepEqual(Array.from(v as Uint8Array), [0x00, 0x80, 0xff])
    assert.equal((v as Uint8Array).buffer, input.buffer)
    assert.deepEqual(decodeOk('0:'), new Uint8Array(0))
  })
  it('rejects bad strings', () => {
    decodeErr('5:abc', /longer than input/)
    decodeErr('03:abc', /leading zero/)
    decodeErr('3abc', /expected ":"/)
    decodeErr('99999999999999999999:x', /longer than input/)
    decodeErr('x', /expected a value/)
    decodeErr('-1:a', /expected a value/)
  })
  it('decodes lists and dicts (null prototype, binary-string keys)', () => {
    assert.deepEqual(decodeOk('l4:spami42elee'), [ascii('spam'), 42, []])
    const d = decodeOk('d3:bar4:spam3:fooi42ee') as Record<string, BValue>
    assert.equal(Object.getPrototypeOf(d), null)
    assert.deepEqual(Object.keys(d), ['bar', 'foo'])
    assert.deepEqual(d.bar, ascii('spam'))
    assert.equal(d.foo, 42)
  })
  it('keeps raw key bytes (≥ 0x80 and 0x00) as one char each', () => {
    const key = '\x00\x80\xff\xc3' + 'k'.repeat(16)
    const d = decodeOk(bencode({ [key]: 7 })) as Record<string, BValue>
    assert.deepEqual(Object.keys(d), [key])
    assert.equal(d[key], 7)
  })
  it('treats __proto__ and constructor as ordinary keys', () => {
    const d = decodeOk('d9:__proto__i1e11:constructori2ee') as Record<string, BValue>
    assert.equal(Object.getPrototypeOf(d), null)
    assert.deepEqual(Object.keys(d).sort(), ['__proto__', 'constructor'])
    assert.equal(d.__proto__, 1)
    assert.equal(({} as Record<string, unknown>).polluted, undefined)
  })
  it('tolerates unsorted keys but rejects duplicates and non-string keys', () => {
    const d = decodeOk('d1:bi1e1:ai2ee') as Record<string, BValue>
    assert.equal(d.a, 2)
    assert.equal(d.b, 1)
    decodeErr('d1:ai1e1:ai2ee', /duplicate dict key at byte 7/)
    decodeErr('di1ei2ee', /dict key is not a string/)
    decodeErr('dlee1:ae', /dict key is not a string/)
  })
  it('rejects truncation, trailing data and empty input', () => {
    decodeErr('', /unexpected end/)
    decodeErr('l', /unterminated list/)
    decodeErr('li1e', /unterminated list/)
    decodeErr('d', /unterminated dict/)
    decodeErr('d1:a', /unexpected end/)
    decodeErr('i1ei2e', /trailing data at byte 3/)
    decodeErr('dee', /trailing data/)
    decodeErr('e', /expected a value/)
  })
  it('limits nesting depth (default BENCODE_MAX_DEPTH, or maxDepth)', () => {
    const nested = (n: number): string => 'l'.repeat(n) + 'e'.repeat(n)
    assert.equal(BENCODE_MAX_DEPTH, 32)
    decodeOk(nested(BENCODE_MAX_DEPTH))
    decodeErr(nested(BENCODE_MAX_DEPTH + 1), /nesting too deep/)
    assert.equal(bdecode(ascii('d1:ad1:ad1:aleeee'), { maxDepth: 4 }).ok, true)
    assert.equal(bdecode(ascii('d1:ad1:ad1:aleeee'), { maxDepth: 3 }).ok, false)
    assert.equal(bdecode(ascii(nested(3)), { maxDepth: 3 }).ok, true)
    assert.equal(bdecode(ascii(nested(4)), { maxDepth: 3 }).ok, false)
    assert.equal(bdecode(ascii('i1e'), { maxDepth: 0 }).ok, true)
    // A very deep input fails cleanly instead of overflowing the stack.
    decodeErr(nested(200_000), /nesting too deep/)
  })
  it('limits input length with maxLength', () => {
    assert.equal(bdecode(ascii('4:spam'), { maxLength: 6 }).ok, true)
    const r = bdecode(ascii('4:spam'), { maxLength: 5 })
    assert.equal(r.ok, false)
    if (!r.ok) {
      assert.equal(r.error.code, 'INVALID_PACKET')
      assert.match(r.error.message, /longer than 5 bytes/)
    }
  })
  it('fails on non-byte input instead of throwing', () => {
    const r = bdecode('i1e' as unknown as Uint8Array)
    assert.equal(r.ok, false)
    if (!r.ok) assert.equal(r.error.code, 'INVALID_PACKET')
  })
})

describe('bdecodeDict', () => {
  it('returns the top-level dict', () => {
    const r = bdecodeDict(ascii('d1:ai7e1:b2:xye'), 'test body')
    assert.ok(r.ok)
    assert.deepEqual(plain(r.value), { a: 7, b: [120, 121] })
  })
  it('fails with "<what> is not a dict" on any other value', () => {
    for (const body of ['i1e', 'le', '3:abc']) {
      const r = bdecodeDict(ascii(body), 'test body')
      assert.equal(r.ok, false, body)
      if (!r.ok) assert.deepEqual([r.error.code, r.error.message], ['INVALID_PACKET', 'malformed packet: test body is not a dict'])
    }
  })
  it('passes bencode errors through', () => {
    const r = bdecodeDict(ascii('d1:a'), 'test body')
    assert.equal(r.ok, false)
    if (!r.ok) {
      assert.equal(r.error.code, 'INVALID_PACKET')
      assert.doesNotMatch(r.error.message, /not a dict/)
    }
  })
})

/** Arbitrary bencodable values with binary-string keys and byte-string leaves. */
const { value: bvalueArb } = fc.letrec<{ value: BEncodable }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.maxSafeInteger(),
    fc.uint8Array({ maxLength: 24 }),
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(fc.string({ unit: 'binary', maxLength: 6 }).map((s) => latin1(Buffer.from(s, 'latin1'))), tie('value'), { maxKeys: 4 })
  )
}))

/** The decoded form of an encodable value (text → UTF-8 bytes; dicts null-prototype). */
function normalise (v: BEncodable): unknown {
  if (typeof v === 'number') return v === 0 ? 0 : v
  if (typeof v === 'string') return te.encode(v)
  if (v instanceof Uint8Array) return new Uint8Array(v)
  if (Array.isArray(v)) return v.map(normalise)
  const out: Record<string, unknown> = {}
  for (const [k, x] of Object.entries(v as Record<string, BEncodable | undefined>)) if (x !== undefined) out[k] = normalise(x)
  return out
}

function plain (v: unknown): unknown {
  if (v instanceof Uint8Array) return Array.from(v)
  if (Array.isArray(v)) return v.map(plain)
  if (typeof v === 'object' && v !== null) {
    const out: Record<string, unknown> = {}
    for (const k of Object.keys(v)) out[k] = plain((v as Record<string, unknown>)[k])
    return out
  }
  return v
}

describe('bencode ⇄ bdecode properties', () => {
  it('decode(encode(v)) equals v', () => {
    fc.assert(fc.property(bvalueArb, (v) => {
      assert.deepEqual(plain(decodeOk(bencode(v))), plain(normalise(v)))
    }), { numRuns: 1000 })
  })
  it('encode(decode(b)) equals b for canonical b', () => {
    fc.assert(fc.property(bvalueArb, (v) => {
      const b = bencode(v)
      assert.deepEqual(bencode(decodeOk(b) as BEncodable), b)
    }), { numRuns: 500 })
  })
  it('never throws on random bytes', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), (u8) => {
      const r = bdecode(u8)
      assert.equal(typeof r.ok, 'boolean')
      if (!r.ok) assert.equal(r.error.code, 'INVALID_PACKET')
    }), { numRuns: 5000 })
  })
  it('never throws on mutated valid encodings, and what decodes re-encodes', () => {
    const mutated = fc.tuple(bvalueArb, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 }), fc.boolean()), { maxLength: 4 }))
      .map(([v, edits]) => {
        const b = Array.from(bencode(v))
        for (const [at, byte, insert] of edits) {
          const i = b.length === 0 ? 0 : at % b.length
          if (insert) b.splice(i, 0, byte)
          else b[i] = byte
        }
        return Uint8Array.from(b)
      })
    fc.assert(fc.property(mutated, (u8) => {
      const r = bdecode(u8)
      if (r.ok) bencode(r.value as BEncodable) // must be representable again
      else assert.equal(r.error.code, 'INVALID_PACKET')
    }), { numRuns: 3000 })
  })
  it('never throws on structural fragments', () => {
    const frag = fc.constantFrom('i', 'e', 'l', 'd', '0', '1', '9', '-', ':', '3:', 'i0e', '0:', 'x')
    fc.assert(fc.property(fc.array(frag, { maxLength: 30 }), (parts) => {
      const r = bdecode(ascii(parts.join('')))
      assert.equal(typeof r.ok, 'boolean')
    }), { numRuns: 5000 })
  })
})

describe('accessors', () => {
  const d = decodeOk('d1:ai-1e1:b3:\xc3\xa9x1:cle1:dde1:ei5ee') as Record<string, BValue>
  it('narrow by type', () => {
    assert.equal(bint(d.a), -1)
    assert.equal(buint(d.a), undefined)
    assert.equal(buint(d.e), 5)
    assert.equal(bint(d.b), undefined)
    assert.deepEqual(bbytes(d.b), Uint8Array.from([0xc3, 0xa9, 0x78]))
    assert.equal(bbytes(d.a), undefined)
    assert.deepEqual(blist(d.c), [])
    assert.equal(blist(d.d), undefined)
    assert.notEqual(bdict(d.d), undefined)
    assert.equal(bdict(d.c), undefined)
    assert.equal(bdict(d.b), undefined)
    assert.equal(bdict(d.a), undefined)
    assert.equal(bdict(undefined), undefined)
  })
  it('bstr decodes UTF-8 leniently, bbinary keeps bytes', () => {
    assert.equal(bstr(d.b), 'éx')
    assert.equal(bstr(decodeOk('2:\xff\x41')), '\ufffdA')
    assert.equal(bstr(decodeOk('3:\xef\xbb\xbf')), '\ufeff')
    assert.equal(bstr(d.a), undefined)
    assert.equal(bstr(undefined), undefined)
    assert.equal(bbinary(d.b), '\xc3\xa9x')
    assert.equal(bbinary(d.a), undefined)
  })
})
