/** Rate-limit and bad-id tables, address keys and proxy ranges: exact values, clock as a parameter. */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { RateLimiter, StrikeTable, addressKey, cidrMatcher, parseCidr, slowAddressKey } from '../../../src/server/frontends/abuse.js'
import type { AddressKey } from '../../../src/server/frontends/abuse.js'
import { RATE_LIMIT_EVICTION_PROBES } from '../../../src/constants.js'

const k = (ip: string): AddressKey => addressKey(ip)!

describe('addressKey', () => {
  it('is the 32-bit number for IPv4 (IPv4-mapped IPv6 included) and the /64 bytes for IPv6', () => {
    assert.equal(addressKey('1.2.3.4'), 0x01020304)
    assert.equal(addressKey('255.255.255.255'), -1, 'int32')
    assert.equal(addressKey('0.0.0.0'), 0)
    assert.equal(addressKey('::ffff:1.2.3.4'), 0x01020304)
    assert.equal(addressKey('::ffff:255.1.2.3'), addressKey('255.1.2.3'))
    assert.equal(addressKey('2001:db8:1:2:aaaa::1'), '\x20\x01\x0d\xb8\x00\x01\x00\x02')
    assert.equal(addressKey('2001:db8:1:2:ffff::9'), addressKey('2001:db8:1:2::1'))
    assert.notEqual(addressKey('2001:db8:1:3::1'), addressKey('2001:db8:1:2::1'))
    for (const bad of ['not an ip', '1.2.3.256', '1.2.3', '1..2.3', '1.2.3.4.', '.1.2.3', '1.2.3.4.5', '1.2.3.1000', '', '1.2.3.-4', '::g']) {
      assert.equal(addressKey(bad), undefined, bad)
    }
  })
})

describe('RateLimiter', () => {
  it('allows a burst, then one request per 1/rate seconds', () => {
    const r = new RateLimiter({ rate: 2, burst: 3 }, 10)
    const a = k('10.0.0.1')
    assert.deepEqual([r.allow(a, 0), r.allow(a, 0), r.allow(a, 0), r.allow(a, 0)], [true, true, true, false])
    assert.equal(r.allow(a, 499), false, '0.998 of a token after 499 ms')
    assert.equal(r.allow(a, 500), true, 'one token after 500 ms at 2/s')
    assert.equal(r.allow(a, 500), false)
    // A long silence refills up to the burst, not beyond.
    assert.deepEqual([r.allow(a, 100_000), r.allow(a, 100_000), r.allow(a, 100_000), r.allow(a, 100_000)], [true, true, true, false])
  })

  it('keeps addresses apart', () => {
    const r = new RateLimiter({ rate: 1, burst: 1 }, 10)
    assert.equal(r.allow(k('10.0.0.1'), 0), true)
    assert.equal(r.allow(k('10.0.0.1'), 0), false)
    assert.equal(r.allow(k('10.0.0.2'), 0), true)
    assert.equal(r.allow(k('2001:db8::1'), 0), true)
    assert.equal(r.allow(k('2001:db8::2'), 0), false, 'same /64')
  })

  it('a clock that steps back refills nothing', () => {
    const r = new RateLimiter({ rate: 1000, burst: 1 }, 10)
    const a = k('10.0.0.1')
    assert.equal(r.allow(a, 5000), true)
    assert.equal(r.allow(a, 1000), false)
    assert.equal(r.allow(a, 1000), false)
  })

  it('never holds more than its capacity, and forgets idle addresses before limited ones', () => {
    const r = new RateLimiter({ rate: 0.001, burst: 1 }, 4)
    const limited = k('10.0.0.1')
    assert.equal(r.allow(limited, 0), true)
    assert.equal(r.allow(limited, 0), false) // empty bucket: "busy"
    for (let i = 2; i < 1000; i++) {
      r.allow(k(`10.0.${i >> 8}.${i & 255}`), 0)
      assert.ok(r.size <= 4)
    }
    assert.equal(r.size, 4)
    assert.equal(r.allow(limited, 0), false, 'the limited address was kept through 998 new ones')
  })

  it('a table full of limited addresses still takes new ones (bounded probing)', () => {
    const r = new RateLimiter({ rate: 0.001, burst: 1 }, RATE_LIMIT_EVICTION_PROBES)
    for (let i = 0; i < RATE_LIMIT_EVICTION_PROBES; i++) { const a = k(`10.0.0.${i}`); r.allow(a, 0); r.allow(a, 0) }
    assert.equal(r.allow(k('10.0.1.1'), 0), true)
    assert.equal(r.size, RATE_LIMIT_EVICTION_PROBES)
  })

  it('refuses nonsense limits', () => {
    assert.throws(() => new RateLimiter({ rate: 0, burst: 1 }), /rate must be a positive number/)
    assert.throws(() => new RateLimiter({ rate: Number.NaN, burst: 1 }), /rate must be a positive number/)
    assert.throws(() => new RateLimiter({ rate: 1, burst: 0.5 }), /burst must be at least 1/)
    assert.throws(() => new RateLimiter({ rate: 1, burst: 1 }, 0), /table size must be a positive integer/)
  })
})

describe('StrikeTable', () => {
  const limit = { max: 3, windowMs: 1000, banMs: 5000 }

  it('bans on the max-th strike within a window, for banMs', () => {
    const t = new StrikeTable(limit, 10)
    const a = k('10.0.0.1')
    assert.equal(t.banned(a, 0), false)
    assert.deepEqual([t.strike(a, 0), t.strike(a, 100), t.strike(a, 999)], [false, false, true])
    assert.equal(t.banned(a, 999), true)
    assert.equal(t.banned(a, 5998), true)
    assert.equal(t.banned(a, 5999), false)
    assert.equal(t.banned(k('10.0.0.2'), 1000), false)
  })

  it('strikes spread over more than a window never ban', () => {
    const t = new StrikeTable(limit, 10)
    const a = k('10.0.0.1')
    const results = []
    for (let i = 0; i < 20; i++) results.push(t.strike(a, i * 600))
    assert.deepEqual(results, new Array(20).fill(false))
    assert.equal(t.banned(a, 20 * 600), false)
  })

  it('stays bounded, forgetting addresses whose strikes are old before a banned one', () => {
    const t = new StrikeTable(limit, 4)
    const a = k('10.0.0.1')
    t.strike(a, 0); t.strike(a, 0); t.strike(a, 0)
    for (const ip of ['10.0.0.2', '10.0.0.3', '10.0.0.4']) t.strike(k(ip), 0)
    // At 2000 ms the three single strikes are outside their window; `a` is banned until 5000.
    for (const ip of ['10.0.1.2', '10.0.1.3', '10.0.1.4']) t.strike(k(ip), 2000)
    assert.equal(t.size, 4)
    assert.equal(t.banned(a, 2000), true)
    // Full of busy entries, a new address still gets in and the table stays at its size.
    for (let i = 0; i < 300; i++) t.strike(k(`10.2.${i >> 8}.${i & 255}`), 2000)
    assert.equal(t.size, 4)
  })

  it('refuses nonsense limits', () => {
    assert.throws(() => new StrikeTable({ max: 0, windowMs: 1, banMs: 1 }), /max must be a positive integer/)
    assert.throws(() => new StrikeTable({ max: 1, windowMs: 0, banMs: 1 }), /windowMs and banMs must be positive/)
  })
})

describe('trusted proxy ranges', () => {
  it('matches addresses and CIDR ranges of the same family', () => {
    const m = cidrMatcher(['127.0.0.1/32', '10.0.0.0/8', '192.168.128.0/17', '::1', '2001:db8::/32'])
    assert.equal(m('127.0.0.1'), true)
    assert.equal(m('127.0.0.2'), false)
    assert.equal(m('10.200.3.4'), true)
    assert.equal(m('11.0.0.1'), false)
    assert.equal(m('192.168.200.1'), true)
    assert.equal(m('192.168.127.255'), false)
    assert.equal(m('::1'), true)
    assert.equal(m('::2'), false)
    assert.equal(m('2001:db8:ffff::1'), true)
    assert.equal(m('2001:db9::1'), false)
    assert.equal(m('::ffff:10.1.1.1'), true, 'IPv4-mapped counts as IPv4')
    assert.equal(m('garbage'), false)
    assert.equal(cidrMatcher(['0.0.0.0/0'])('8.8.8.8'), true)
    assert.equal(cidrMatcher(['0.0.0.0/0'])('::1'), false)
  })

  it('names a bad entry', () => {
    assert.deepEqual(parseCidr('10.0.0.0/8'), { bytes: '\x0a\x00\x00\x00', bits: 8 })
    assert.throws(() => parseCidr('10.0.0/8'), /invalid address in proxy list: 10.0.0\/8/)
    assert.throws(() => parseCidr('10.0.0.0/33'), /invalid prefix length in proxy list: 10.0.0.0\/33/)
    assert.throws(() => parseCidr('::1/129'), /invalid prefix length/)
    assert.throws(() => parseCidr('10.0.0.0/'), /invalid prefix length/)
    assert.throws(() => parseCidr('10.0.0.0/x'), /invalid prefix length/)
  })
})

describe('addressKey fast paths agree with the general address parser', () => {
  it('on every valid IPv4 and IPv6 text (property), in lower and upper case', () => {
    fc.assert(fc.property(fc.oneof(fc.ipV4(), fc.ipV6()), ip => {
      assert.deepEqual(addressKey(ip), slowAddressKey(ip), ip)
      assert.deepEqual(addressKey(ip.toUpperCase()), slowAddressKey(ip.toUpperCase()), ip)
    }), { numRuns: 5000 })
  })

  it('on edge forms and malformed text', () => {
    const cases = [
      '::', '::1', '1::', '1::2', '::ffff:102:304', '::ffff:1.2.3.4', '1:2:3:4:5:6:7:8', 'ABCD:ef01::',
      ':::', '1:::2', '1::2::3', ':1::', '1:2:3:4:5:6:7:8:9', '12345::', '1:2:3:4:5:6:7::8', '1:2:3:4:5:6:7:', 'g::',
      '1:', ':', '', '::%eth0', 'fe80::1%eth0', '1:2:3:4:5:6:1.2.3.4', '::1.2.3'
    ]
    for (const ip of cases) assert.deepEqual(addressKey(ip), slowAddressKey(ip), ip)
    assert.equal(addressKey('::'), '\0'.repeat(8))
    assert.equal(addressKey('1:2:3:4::'), '\0\x01\0\x02\0\x03\0\x04')
    assert.equal(addressKey('::ffff:102:304'), 0x01020304)
    assert.equal(addressKey('1::2::3'), undefined)
  })
})
