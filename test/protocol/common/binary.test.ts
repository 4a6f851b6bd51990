import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import {
  binaryToBytes, binaryToHex, binaryToText, bytesToBinary, hexToBinary, isBinary, isId
} from '../../../src/protocol/common/binary.js'

const ALL_BYTES = Uint8Array.from({ length: 256 }, (_, i) => i)
const ALL_BINARY = Array.from({ length: 256 }, (_, i) => String.fromCharCode(i)).join('')

describe('bytesToBinary', () => {
  it('maps every byte value to the char with that code (plain Uint8Array, no latin1Slice)', () => {
    assert.equal((ALL_BYTES as { latin1Slice?: unknown }).latin1Slice, undefined)
    assert.equal(bytesToBinary(ALL_BYTES), ALL_BINARY)
  })

  it('uses the same mapping through Buffer (latin1Slice fast path)', () => {
    const buf = Buffer.from(ALL_BYTES)
    assert.equal(typeof (buf as unknown as { latin1Slice?: unknown }).latin1Slice, 'function')
    assert.equal(bytesToBinary(buf), ALL_BINARY)
    assert.equal(bytesToBinary(buf, 0x7e, 0x82), '\x7e\x7f\x80\x81')
  })

  it('keeps 0x80–0x9F (TextDecoder latin1 would remap them to windows-1252)', () => {
    assert.equal(bytesToBinary(new Uint8Array([0x80, 0x9f])), '\u0080\u009f')
  })

  it('honours start/end and clamps them like subarray', () => {
    const u8 = new Uint8Array([1, 2, 3, 4, 5])
    assert.equal(bytesToBinary(u8, 1, 3), '\x02\x03')
    assert.equal(bytesToBinary(u8, 3), '\x04\x05')
    assert.equal(bytesToBinary(u8, -5, 99), '\x01\x02\x03\x04\x05')
    assert.equal(bytesToBinary(u8, 4, 2), '')
    assert.equal(bytesToBinary(new Uint8Array(0)), '')
    assert.equal(bytesToBinary(Buffer.from(u8), -1, 99), '\x01\x02\x03\x04\x05')
    assert.equal(bytesToBinary(Buffer.from(u8), 3, 1), '')
  })

  it('handles inputs longer than one fromCharCode chunk', () => {
    const big = new Uint8Array(100_000)
    for (let i = 0; i < big.length; i++) big[i] = (i * 7) & 0xff
    const s = bytesToBinary(big)
    assert.equal(s.length, 100_000)
    assert.equal(s, Buffer.from(big).toString('latin1'))
    assert.equal(bytesToBinary(big, 8000, 20000), Buffer.from(big.subarray(8000, 20000)).toString('latin1'))
  })

  it('property: equals Buffer latin1 and round-trips through binaryToBytes', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (u8) => {
      const s = bytesToBinary(u8)
      assert.equal(s, Buffer.from(u8).toString('latin1'))
      assert.deepEqual(binaryToBytes(s), u8)
    }))
  })
})

describe('binaryToBytes', () => {
  it('maps chars to bytes', () => {
    assert.deepEqual(binaryToBytes(ALL_BINARY), ALL_BYTES)
    assert.deepEqual(binaryToBytes(''), new Uint8Array(0))
  })
  it('truncates chars above 0xFF to their low 8 bits (documented caller bug)', () => {
    assert.deepEqual(binaryToBytes('\u0141\u20ac'), new Uint8Array([0x41, 0xac]))
  })
})

describe('isBinary', () => {
  it('is true only when every char is ≤ 0xFF', () => {
    assert.equal(isBinary(ALL_BINARY), true)
    assert.equal(isBinary(''), true)
    assert.equal(isBinary('ab\u0100'), false)
  })
})

describe('hex', () => {
  it('hexToBinary decodes either case', () => {
    assert.equal(hexToBinary('00ff7F80'), '\x00\xff\x7f\x80')
    assert.equal(hexToBinary('AbCd'), '\xab\xcd')
    assert.equal(hexToBinary(''), '')
  })
  it('hexToBinary rejects odd length and non-hex', () => {
    assert.equal(hexToBinary('abc'), undefined)
    assert.equal(hexToBinary('zz'), undefined)
    assert.equal(hexToBinary('0g'), undefined)
    assert.equal(hexToBinary('g0'), undefined)
    assert.equal(hexToBinary(' 0'), undefined)
    assert.equal(hexToBinary('0x12'), undefined)
    assert.equal(hexToBinary('@`'), undefined) // neighbours of 'A'/'a' and of '0'-'9'
    assert.equal(hexToBinary('/:'), undefined)
    assert.equal(hexToBinary('GF'), undefined)
  })
  it('binaryToHex is lowercase, two digits per byte', () => {
    assert.equal(binaryToHex('\x00\x0f\xf0\xff'), '000ff0ff')
    assert.equal(binaryToHex(ALL_BINARY), Buffer.from(ALL_BYTES).toString('hex'))
  })
  it('a 40-char hex info hash with 0x00 and ≥ 0x80 bytes', () => {
    const hex = '00ff80112233445566778899aabbccddeeff0001'
    const bin = hexToBinary(hex)
    assert.equal(bin?.length, 20)
    assert.equal(bin?.charCodeAt(0), 0x00)
    assert.equal(bin?.charCodeAt(1), 0xff)
    assert.equal(bin?.charCodeAt(2), 0x80)
    assert.equal(binaryToHex(bin ?? ''), hex)
  })
  it('property: round trip and agreement with Buffer', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), (u8) => {
      const hex = Buffer.from(u8).toString('hex')
      const bin = bytesToBinary(u8)
      assert.equal(binaryToHex(bin), hex)
      assert.equal(hexToBinary(hex), bin)
      assert.equal(hexToBinary(hex.toUpperCase()), bin)
    }))
  })
  it('property: hexToBinary is defined exactly for even-length hex', () => {
    fc.assert(fc.property(fc.string({ maxLength: 12 }), (s) => {
      const expected = /^(?:[0-9a-fA-F]{2})*$/.test(s)
      assert.equal(hexToBinary(s) !== undefined, expected)
    }))
  })
})

describe('isId', () => {
  it('accepts exactly 20 byte chars', () => {
    assert.equal(isId('a'.repeat(20)), true)
    assert.equal(isId('\x00'.repeat(19) + '\xff'), true)
  })
  it('rejects other lengths, wide chars and non-strings', () => {
    assert.equal(isId('a'.repeat(19)), false)
    assert.equal(isId('a'.repeat(21)), false)
    assert.equal(isId('a'.repeat(19) + '\u0100'), false)
    assert.equal(isId(new Uint8Array(20)), false)
    assert.equal(isId(undefined), false)
    assert.equal(isId(null), false)
    assert.equal(isId(12345678901234567890), false)
  })
})

describe('binaryToText', () => {
  it('returns ASCII unchanged', () => {
    assert.equal(binaryToText('hello'), 'hello')
  })
  it('decodes valid UTF-8', () => {
    assert.equal(binaryToText('caf\xc3\xa9 \xe2\x82\xac'), 'café €')
  })
  it('falls back to latin1 for invalid UTF-8', () => {
    assert.equal(binaryToText('caf\xe9'), 'caf\xe9')
    assert.equal(binaryToText('\xc0\x80'), '\xc0\x80') // overlong NUL
    assert.equal(binaryToText('\xed\xa0\x80'), '\xed\xa0\x80') // encoded surrogate
  })
  it('keeps a leading BOM', () => {
    assert.equal(binaryToText('\xef\xbb\xbfx'), '\ufeffx')
  })
})
