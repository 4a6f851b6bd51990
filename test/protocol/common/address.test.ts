import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import net from 'node:net'
import fc from 'fast-check'
import {
  canonicalIp, compactAddr, formatAddr, ipFamily, ipFromBytes, parseCompactAddr
} from '../../../src/protocol/common/address.js'

/** RFC 5952 form from an independent implementation (WHATWG URL host serializer). */
function whatwgIpv6 (ip: string): string {
  return new URL(`http://[${ip}]/`).hostname.slice(1, -1)
}

describe('canonicalIp: IPv4', () => {
  it('accepts strict dotted quads', () => {
    for (const ip of ['0.0.0.0', '1.2.3.4', '255.255.255.255', '10.0.0.1', '192.168.100.200']) {
      assert.equal(canonicalIp(ip), ip)
    }
  })
  it('rejects leading zeros, shorthand, out-of-range and junk', () => {
    for (const ip of ['01.2.3.4', '1.2.3.04', '1.2.3.00', '256.1.1.1', '1.2.3.256', '1.2.3', '1.2.3.4.5',
      '127.1', '0x7f.0.0.1', '1.2.3.4 ', ' 1.2.3.4', '1..3.4', '1.2.3.', '.1.2.3', '', '1234.1.1.1',
      '1.2.3.4/8', '-1.2.3.4', '1.2.3.+4', 'a.b.c.d', '[1.2.3.4]']) {
      assert.equal(canonicalIp(ip), undefined, ip)
    }
  })
})

describe('canonicalIp: IPv6', () => {
  const cases: Array<[string, string]> = [
    ['::', '::'],
    ['::1', '::1'],
    ['1::', '1::'],
    ['0:0:0:0:0:0:0:0', '::'],
    ['0:0:0:0:0:0:0:1', '::1'],
    ['2001:DB8::1', '2001:db8::1'],
    ['2001:0db8:0000:0000:0000:0000:0000:0001', '2001:db8::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'], // first of two equal runs
    ['2001:db8:0:1:0:0:0:1', '2001:db8:0:1::1'], // longest run wins
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'], // a single zero group is not compressed
    ['1:2:3:4:5:6:7::', '1:2:3:4:5:6:7:0'],
    ['::2:3:4:5:6:7:8', '0:2:3:4:5:6:7:8'],
    ['fe80::abcd:ef01', 'fe80::abcd:ef01'],
    ['::1.2.3.4', '::102:304'], // IPv4-compatible (deprecated): printed as hex
    ['64:ff9b::1.2.3.4', '64:ff9b::102:304'],
    ['::ffff:0:1.2.3.4', '::ffff:0:102:304'] // SIIT form, not mapped
  ]
  for (const [input, expected] of cases) {
    it(`${input} → ${expected}`, () => {
      assert.equal(canonicalIp(input), expected)
    })
  }
  it('turns IPv4-mapped addresses into IPv4', () => {
    assert.equal(canonicalIp('::ffff:1.2.3.4'), '1.2.3.4')
    assert.equal(canonicalIp('::FFFF:1.2.3.4'), '1.2.3.4')
    assert.equal(canonicalIp('::ffff:102:304'), '1.2.3.4')
    assert.equal(canonicalIp('0:0:0:0:0:ffff:ff00:1'), '255.0.0.1')
    assert.equal(canonicalIp('::ffff:0.0.0.0'), '0.0.0.0')
  })
  it('rejects malformed text, zone ids and brackets', () => {
    for (const ip of [':', ':::', '1:2', '1::2::3', '::1::', '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7:8::',
      '::1:2:3:4:5:6:7:8', '12345::', ':1::', '1:', ':1', '1::2:', 'g::', '1:::2', 'fe80::1%eth0', '::1%1',
      '[::1]', '::ffff:1.2.3', '::ffff:01.2.3.4', '::ffff:1.2.3.4:5', '1.2.3.4::', '::1.2.3.4.5',
      '1:2:3:4:5:6:7:1.2.3.4', '1:2:3:4:5:6::1.2.3.4', '::ffff:256.1.1.1', '::0x1', ' ::1', '::1 ',
      '1:2:3:4:5:6:7:8:1.2.3.4', '::1.2.3.4:1', '0000:0000:0000:0000:0000:0000:0000:00000',
      '::' + '0'.repeat(50)]) {
      assert.equal(canonicalIp(ip), undefined, ip)
    }
  })
  it('accepts the longest valid text (45 chars)', () => {
    const ip = 'ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255'
    assert.equal(ip.length, 45)
    assert.equal(canonicalIp(ip), 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff')
    assert.equal(canonicalIp('1:2:3:4:5:6:1.2.3.4'), '1:2:3:4:5:6:102:304')
  })
  it('rejects non-strings without throwing', () => {
    assert.equal(canonicalIp(undefined as unknown as string), undefined)
    assert.equal(canonicalIp(1234 as unknown as string), undefined)
  })
})

describe('canonicalIp: properties', () => {
  it('fc.ipV4 addresses are their own canonical form', () => {
    fc.assert(fc.property(fc.ipV4(), (ip) => {
      assert.equal(canonicalIp(ip), ip)
      assert.equal(ipFamily(ip), 4)
    }))
  })
  it('fc.ipV6 addresses canonicalise as WHATWG URL does (mapped → IPv4)', () => {
    fc.assert(fc.property(fc.ipV6(), (ip) => {
      const want = whatwgIpv6(ip)
      const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(want)
      if (mapped !== null) {
        const hi = parseInt(mapped[1], 16)
        const lo = parseInt(mapped[2], 16)
        assert.equal(canonicalIp(ip), `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`)
      } else {
        assert.equal(canonicalIp(ip), want)
        assert.equal(ipFamily(ip), 6)
      }
    }), { numRuns: 2000 })
  })
  it('canonical form is a fixed point', () => {
    fc.assert(fc.property(fc.oneof(fc.ipV4(), fc.ipV6()), (ip) => {
      const c = canonicalIp(ip)
      assert.notEqual(c, undefined)
      assert.equal(canonicalIp(c as string), c)
    }))
  })
  it('agrees with node:net on validity for address-like strings (zones aside)', () => {
    const chars = fc.constantFrom(...'0123456789abcdefABCDEF:.:.:.g '.split(''))
    fc.assert(fc.property(fc.string({ unit: chars, maxLength: 24 }), (s) => {
      assert.equal(canonicalIp(s) !== undefined, net.isIP(s) !== 0, JSON.stringify(s))
    }), { numRuns: 20000 })
  })
  it('agrees with node:net on mutated valid addresses', () => {
    const mutated = fc.tuple(fc.oneof(fc.ipV4(), fc.ipV6()), fc.nat(50), fc.constantFrom('', ':', '::', '.', '0', 'f', '1.2')).map(
      ([ip, at, ins]) => ip.slice(0, at % (ip.length + 1)) + ins + ip.slice(at % (ip.length + 1) + (ins === '' ? 1 : 0)))
    fc.assert(fc.property(mutated, (s) => {
      assert.equal(canonicalIp(s) !== undefined, net.isIP(s) !== 0, JSON.stringify(s))
    }), { numRuns: 5000 })
  })
})

describe('ipFamily', () => {
  it('classifies', () => {
    assert.equal(ipFamily('1.2.3.4'), 4)
    assert.equal(ipFamily('::1'), 6)
    assert.equal(ipFamily('::ffff:1.2.3.4'), 4)
    assert.equal(ipFamily('1.2.3'), 0)
    assert.equal(ipFamily('fe80::1%lo'), 0)
    assert.equal(ipFamily(''), 0)
    assert.equal(ipFamily(null as unknown as string), 0)
  })
})

describe('compactAddr (BEP 23 / BEP 7)', () => {
  it('IPv4: 4 address bytes + big-endian port', () => {
    // 1.2.3.4:6881 → 01 02 03 04 | 1a e1
    assert.equal(compactAddr('1.2.3.4', 6881), '\x01\x02\x03\x04\x1a\xe1')
    assert.equal(compactAddr('255.0.128.1', 65535), '\xff\x00\x80\x01\xff\xff')
    assert.equal(compactAddr('0.0.0.0', 0), '\x00\x00\x00\x00\x00\x00')
  })
  it('IPv6: 16 address bytes + big-endian port', () => {
    // 2001:db8::1:443 → 20 01 0d b8 00×10 00 01 | 01 bb
    assert.equal(compactAddr('2001:db8::1', 443), '\x20\x01\x0d\xb8' + '\x00'.repeat(10) + '\x00\x01\x01\xbb')
    assert.equal(compactAddr('::', 256), '\x00'.repeat(16) + '\x01\x00')
  })
  it('IPv4-mapped IPv6 becomes a 6-byte IPv4 entry', () => {
    assert.equal(compactAddr('::ffff:10.0.0.1', 80), '\x0a\x00\x00\x01\x00\x50')
  })
  it('rejects invalid addresses and ports', () => {
    assert.equal(compactAddr('1.2.3', 80), undefined)
    assert.equal(compactAddr('fe80::1%eth0', 80), undefined)
    assert.equal(compactAddr('1.2.3.4', 65536), undefined)
    assert.equal(compactAddr('1.2.3.4', -1), undefined)
    assert.equal(compactAddr('1.2.3.4', 1.5), undefined)
    assert.equal(compactAddr('1.2.3.4', NaN), undefined)
    assert.equal(compactAddr(5 as unknown as string, 80), undefined)
  })
})

describe('parseCompactAddr', () => {
  it('decodes 6- and 18-byte entries', () => {
    assert.deepEqual(parseCompactAddr('\x01\x02\x03\x04\x1a\xe1'), { ip: '1.2.3.4', port: 6881, family: 4 })
    assert.deepEqual(parseCompactAddr('\x20\x01\x0d\xb8' + '\x00'.repeat(10) + '\x00\x01\x01\xbb'),
      { ip: '2001:db8::1', port: 443, family: 6 })
  })
  it('an 18-byte IPv4-mapped entry comes back as IPv4', () => {
    assert.deepEqual(parseCompactAddr('\x00'.repeat(10) + '\xff\xff\x01\x02\x03\x04\x00\x50'),
      { ip: '1.2.3.4', port: 80, family: 4 })
  })
  it('rejects other lengths and wide chars', () => {
    for (const a of ['', '\x01\x02\x03\x04\x05', '\x01\x02\x03\x04\x05\x06\x07', '\x00'.repeat(17), '\x00'.repeat(19),
      '\x01\x02\x03\u0104\x05\x06']) {
      assert.equal(parseCompactAddr(a), undefined)
    }
    assert.equal(parseCompactAddr(undefined as unknown as string), undefined)
  })
  it('property: round trip with compactAddr', () => {
    fc.assert(fc.property(fc.oneof(fc.ipV4(), fc.ipV6()), fc.integer({ min: 0, max: 65535 }), (ip, port) => {
      const addr = compactAddr(ip, port)
      assert.notEqual(addr, undefined)
      const canon = canonicalIp(ip) as string
      assert.equal(addr?.length, ipFamily(canon) === 4 ? 6 : 18)
      assert.deepEqual(parseCompactAddr(addr as string), { ip: canon, port, family: ipFamily(canon) })
    }), { numRuns: 2000 })
  })
  it('property: any 6/18 bytes decode and re-encode to the same bytes (unless mapped)', () => {
    fc.assert(fc.property(fc.oneof(fc.uint8Array({ minLength: 6, maxLength: 6 }), fc.uint8Array({ minLength: 18, maxLength: 18 })), (u8) => {
      const s = Buffer.from(u8).toString('latin1')
      const p = parseCompactAddr(s)
      assert.notEqual(p, undefined)
      const back = compactAddr(p!.ip, p!.port)
      if (p!.family === 4 && s.length === 18) assert.equal(back, s.slice(12))
      else assert.equal(back, s)
    }))
  })
})

describe('formatAddr', () => {
  it('brackets IPv6 only', () => {
    assert.equal(formatAddr('1.2.3.4', 5), '1.2.3.4:5')
    assert.equal(formatAddr('::1', 5), '[::1]:5')
    assert.equal(formatAddr('2001:db8::1', 65535), '[2001:db8::1]:65535')
  })
})

describe('ipFromBytes', () => {
  it('gives the canonical text of raw addresses at an offset', () => {
    const b = new Uint8Array(40)
    b.set([192, 0, 2, 255], 3)
    assert.equal(ipFromBytes(b, 3, 4), '192.0.2.255')
    const cases: Array<[string, string]> = [
      ['00000000000000000000000000000001', '::1'],
      ['20010db8000000000000000000000001', '2001:db8::1'],
      ['20010db8000000010000000000000001', '2001:db8:0:1::1'],
      ['00000000000000000000ffffc0000201', '192.0.2.1'], // IPv4-mapped: the IPv4 it carries
      ['fe800000000000000000000000000000', 'fe80::'],
      ['00000000000000000000000000000000', '::']
    ]
    for (const [hex, text] of cases) {
      b.set(Buffer.from(hex, 'hex'), 20)
      assert.equal(ipFromBytes(b, 20, 6), text, hex)
    }
  })

  it('agrees with canonicalIp of the same address (property)', () => {
    fc.assert(fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), bytes => {
      const groups = Array.from({ length: 8 }, (_, k) => ((bytes[2 * k] << 8) | bytes[2 * k + 1]).toString(16)).join(':')
      assert.equal(ipFromBytes(bytes, 0, 6), canonicalIp(groups))
      assert.equal(ipFromBytes(bytes, 0, 4), canonicalIp(Array.from(bytes.subarray(0, 4)).join('.')))
    }))
  })
})
