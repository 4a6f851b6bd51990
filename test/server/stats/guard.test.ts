import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import type { IncomingMessage } from 'node:http'
import { AccessGuard, inRange, parseCidr, parseIp, requestToken } from '../../../src/server/stats/guard.js'

function matches (range: string, ip: string): boolean {
  const r = parseCidr(range)
  const a = parseIp(ip)
  assert.ok(r !== undefined, range)
  assert.ok(a !== undefined, ip)
  return inRange(a, r)
}

/** Just what the guard reads from a request: headers and url. */
function request (url: string, headers: Record<string, string> = {}): IncomingMessage {
  return { url, headers } as unknown as IncomingMessage
}

describe('CIDR parsing and matching', () => {
  it('parses IPv4 and IPv6 to 16 bytes (IPv4 mapped) and clears host bits', () => {
    assert.equal(parseIp('10.1.2.3')!.toString('hex'), '00000000000000000000ffff0a010203')
    assert.equal(parseIp('::1')!.toString('hex'), '00000000000000000000000000000001')
    assert.equal(parseIp('2001:db8::8:800:200c:417a')!.toString('hex'), '20010db80000000000080800200c417a')
    assert.equal(parseIp('::ffff:10.1.2.3')!.toString('hex'), parseIp('10.1.2.3')!.toString('hex'))
    assert.equal(parseIp('fe80::1%eth0')!.toString('hex'), 'fe800000000000000000000000000001')
    assert.equal(parseIp('1:2:3:4:5:6:7:8')!.toString('hex'), '00010002000300040005000600070008')
    assert.equal(parseIp('1::')!.toString('hex'), '00010000000000000000000000000000')
    assert.deepEqual(parseCidr('10.1.2.3/8'), { bytes: parseIp('10.0.0.0'), prefix: 104 })
    assert.deepEqual(parseCidr('2001:db8:ffff::/33'), { bytes: parseIp('2001:db8:8000::'), prefix: 33 })
    assert.deepEqual(parseCidr('192.0.2.1'), { bytes: parseIp('192.0.2.1'), prefix: 128 })
    assert.deepEqual(parseCidr('::/0'), { bytes: Buffer.alloc(16), prefix: 0 })
  })

  it('refuses malformed addresses and prefixes', () => {
    for (const bad of [
      '', '/8', '10.0.0.0/', '10.0.0.0/33', '10.0.0.0/-1', '10.0.0.0/8/8', '10.0.0.0/ 8', '10.0.0', '10.0.0.0.0', '256.0.0.1',
      '010.0.0.1', '1.2.3.4a', '::/129', '1:2:3:4:5:6:7:8:9', '1::2::3', ':1::', '1:::2', 'g::1', '12345::', '1:2:3:4:5:6:7',
      '::1.2.3', '::ffff:1.2.3.256', 'localhost', '10.0.0.0/1e1'
    ]) assert.equal(parseCidr(bad), undefined, bad)
  })

  it('matches at the prefix boundary, per family', () => {
    assert.ok(matches('10.0.0.0/8', '10.255.255.255'))
    assert.ok(!matches('10.0.0.0/8', '11.0.0.0'))
    assert.ok(matches('192.168.1.128/25', '192.168.1.255'))
    assert.ok(!matches('192.168.1.128/25', '192.168.1.127'))
    assert.ok(matches('192.168.1.7/32', '192.168.1.7'))
    assert.ok(!matches('192.168.1.7/32', '192.168.1.6'))
    assert.ok(matches('0.0.0.0/0', '203.0.113.9'))
    assert.ok(!matches('0.0.0.0/0', '::1'), 'an IPv4 range never matches a native IPv6 address')
    assert.ok(matches('::/0', '203.0.113.9'), '::/0 is everything, mapped IPv4 included')
    assert.ok(matches('2001:db8::/32', '2001:db8:ffff::1'))
    assert.ok(!matches('2001:db8::/32', '2001:db9::1'))
    assert.ok(matches('2001:db8::/33', '2001:db8:7fff::1'))
    assert.ok(!matches('2001:db8::/33', '2001:db8:8000::1'))
    assert.ok(matches('::1/128', '::1'))
    assert.ok(!matches('::1/128', '::2'))
    assert.ok(matches('10.0.0.0/8', '::ffff:10.9.9.9'), 'a mapped address matches its IPv4 range')
    assert.ok(matches('::ffff:0:0/96', '1.2.3.4'))
  })
})

describe('AccessGuard', () => {
  it('is open without options', () => {
    const g = new AccessGuard()
    assert.equal(g.active, false)
    assert.equal(g.check(request('/stats'), '203.0.113.1'), 200)
  })

  it('checks the address, then the token', () => {
    const g = new AccessGuard({ token: 'tok', allow: ['127.0.0.0/8', '::1'] })
    assert.equal(g.active, true)
    assert.equal(g.check(request('/stats', { authorization: 'Bearer tok' }), '192.0.2.1'), 403)
    assert.equal(g.check(request('/stats'), '192.0.2.1'), 403)
    assert.equal(g.check(request('/stats'), 'not an ip'), 403)
    assert.equal(g.check(request('/stats'), '127.0.0.1'), 401)
    assert.equal(g.check(request('/stats', { authorization: 'Bearer tok' }), '127.0.0.1'), 200)
    assert.equal(g.check(request('/stats?token=tok'), '::1'), 200)
    assert.equal(g.check(request('/stats?token=to'), '::1'), 401)
    assert.equal(g.check(request('/stats?token=tokk'), '::1'), 401)
  })

  it('an empty allow list lets nobody in; an empty token is no token', () => {
    assert.equal(new AccessGuard({ allow: [] }).check(request('/'), '127.0.0.1'), 403)
    assert.equal(new AccessGuard({ token: '' }).active, false)
  })

  it('throws on a malformed range, naming it', () => {
    assert.throws(() => new AccessGuard({ allow: ['10.0.0.0/8', 'nope'] }), { name: 'TypeError', message: 'invalid address range: nope' })
  })

  it('reads the token from a Bearer header or the query', () => {
    assert.equal(requestToken(request('/', { authorization: 'Bearer abc' })), 'abc')
    assert.equal(requestToken(request('/', { authorization: 'bearer  abc ' })), 'abc')
    assert.equal(requestToken(request('/', { authorization: 'Basic abc' })), undefined)
    assert.equal(requestToken(request('/x?a=1&token=a%20b')), 'a b')
    assert.equal(requestToken(request('/x?a=1')), undefined)
    assert.equal(requestToken(request('/x')), undefined)
  })
})
