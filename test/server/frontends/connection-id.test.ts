import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'

import { UDP_CONNECTION_ID_WINDOW_MS } from '../../../src/constants.js'
import { ConnectionIds, sipHash24 } from '../../../src/server/frontends/connection-id.js'

const W = UDP_CONNECTION_ID_WINDOW_MS
/** Start of some window, well away from 0. */
const T0 = 1_700_000_040_000 - (1_700_000_040_000 % W)
const SECRET = Uint8Array.from({ length: 32 }, (_, i) => i * 3 + 1)

describe('ConnectionIds', () => {
  it('issues 8-byte ids that verify for the same address', () => {
    const ids = new ConnectionIds()
    const id = ids.issue('192.0.2.1', T0)
    assert.ok(id instanceof Uint8Array)
    assert.equal(id.length, 8)
    assert.equal(ids.verify(id, '192.0.2.1', T0), true)
    assert.equal(ids.verify(id, '192.0.2.1', T0 + W - 1), true)
  })

  it('is deterministic within a window and changes between windows', () => {
    const ids = new ConnectionIds({ secret: SECRET })
    assert.deepEqual(ids.issue('192.0.2.1', T0), ids.issue('192.0.2.1', T0 + W - 1))
    assert.notDeepEqual(ids.issue('192.0.2.1', T0), ids.issue('192.0.2.1', T0 + W))
  })

  it('accepts the previous window, rejects two windows back', () => {
    const ids = new ConnectionIds()
    const id = ids.issue('192.0.2.1', T0)
    assert.equal(ids.verify(id, '192.0.2.1', T0 + W), true)
    assert.equal(ids.verify(id, '192.0.2.1', T0 + 2 * W - 1), true)
    assert.equal(ids.verify(id, '192.0.2.1', T0 + 2 * W), false)
    assert.equal(ids.verify(id, '192.0.2.1', T0 + 10 * W), false)
  })

  it('an id lives at least one full window whenever it was issued', () => {
    const ids = new ConnectionIds()
    const late = ids.issue('192.0.2.1', T0 + W - 1)
    assert.equal(ids.verify(late, '192.0.2.1', T0 + 2 * W - 2), true)
    assert.equal(ids.verify(late, '192.0.2.1', T0 + 2 * W), false)
  })

  it('rejects an id from a future window', () => {
    const ids = new ConnectionIds()
    assert.equal(ids.verify(ids.issue('192.0.2.1', T0 + W), '192.0.2.1', T0), false)
  })

  it('rejects a different address', () => {
    const ids = new ConnectionIds()
    const id = ids.issue('192.0.2.1', T0)
    assert.equal(ids.verify(id, '192.0.2.2', T0), false)
    assert.equal(ids.verify(id, '192.0.2.10', T0), false)
    const id6 = ids.issue('2001:db8::1', T0)
    assert.equal(ids.verify(id6, '2001:db8::1', T0), true)
    assert.equal(ids.verify(id6, '2001:db8::2', T0), false)
    assert.equal(ids.verify(id6, '::ffff:192.0.2.1', T0), false)
  })

  it('rejects every single-bit change of an id, and ids of the wrong length', () => {
    const ids = new ConnectionIds()
    const id = ids.issue('198.51.100.7', T0)
    for (let bit = 0; bit < 64; bit++) {
      const t = id.slice()
      t[bit >> 3] ^= 1 << (bit & 7)
      assert.equal(ids.verify(t, '198.51.100.7', T0), false)
    }
    assert.equal(ids.verify(id.subarray(0, 7), '198.51.100.7', T0), false)
    assert.equal(ids.verify(new Uint8Array(9), '198.51.100.7', T0), false)
    assert.equal(ids.verify(new Uint8Array(8), '198.51.100.7', T0), false)
  })

  it('different secrets disagree; the same secret agrees across instances', () => {
    const a = new ConnectionIds({ secret: SECRET })
    const b = new ConnectionIds({ secret: SECRET })
    const other = new ConnectionIds({ secret: SECRET.map(x => x ^ 1) })
    const id = a.issue('192.0.2.1', T0)
    assert.deepEqual(b.issue('192.0.2.1', T0), id)
    assert.equal(b.verify(id, '192.0.2.1', T0 + W), true)
    assert.equal(other.verify(id, '192.0.2.1', T0), false)
    // Without a secret each instance draws its own random key.
    assert.equal(new ConnectionIds().verify(new ConnectionIds().issue('192.0.2.1', T0), '192.0.2.1', T0), false)
  })

  it('honours windowMs', () => {
    const ids = new ConnectionIds({ windowMs: 1000 })
    assert.equal(ids.windowMs, 1000)
    const id = ids.issue('192.0.2.1', 5000)
    assert.equal(ids.verify(id, '192.0.2.1', 6999), true)
    assert.equal(ids.verify(id, '192.0.2.1', 7000), false)
    assert.equal(new ConnectionIds().windowMs, UDP_CONNECTION_ID_WINDOW_MS)
  })

  it('handles long and non-ASCII address strings without collisions', () => {
    const ids = new ConnectionIds()
    const long = 'fe80::1%' + 'x'.repeat(200)
    assert.equal(ids.verify(ids.issue(long, T0), long, T0), true)
    assert.equal(ids.verify(ids.issue(long, T0), long + 'y', T0), false)
    const odd = '\u0080\u0100'
    assert.equal(ids.verify(ids.issue(odd, T0), odd, T0), true)
    assert.equal(ids.verify(ids.issue(odd, T0), '\u0080\u0001\u0000', T0), false)
  })

  it('rejects bad options', () => {
    assert.throws(() => new ConnectionIds({ secret: new Uint8Array(15) }), RangeError)
    assert.throws(() => new ConnectionIds({ windowMs: 0 }), RangeError)
    assert.throws(() => new ConnectionIds({ windowMs: NaN }), RangeError)
  })

  it('verifyAt checks the id at an offset; issueInto writes the id issue gives', () => {
    const ids = new ConnectionIds({ secret: SECRET })
    const id = ids.issue('192.0.2.1', T0)
    const packet = new Uint8Array(40).fill(0xee)
    packet.set(id, 13)
    assert.equal(ids.verifyAt(packet, 13, '192.0.2.1', T0 + W), true)
    assert.equal(ids.verifyAt(packet, 12, '192.0.2.1', T0), false)
    assert.equal(ids.verifyAt(packet, 13, '192.0.2.2', T0), false)
    assert.equal(ids.verifyAt(packet, 13, '192.0.2.1', T0 + 2 * W), false)
    const out = new Uint8Array(12).fill(0xee)
    ids.issueInto('192.0.2.1', T0 + 5, out, 2)
    assert.deepEqual([...out], [0xee, 0xee, ...id, 0xee, 0xee])
  })

  it('gives the same answers whatever the order of addresses and times (its cache of the last MACs is exact)', () => {
    // One instance answering an interleaved sequence must agree with fresh instances (no cache).
    const cached = new ConnectionIds({ secret: SECRET })
    const fresh = (): ConnectionIds => new ConnectionIds({ secret: SECRET })
    const addrs = ['192.0.2.1', '192.0.2.2', '2001:db8::1']
    const issued = addrs.flatMap(a => [0, 1, 2].map(w => ({ a, w, id: fresh().issue(a, T0 + w * W) })))
    const order = [0, 0, 1, 0, 2, 2, 1, 0, 1, 1, 2, 0, 3, 3, 0]
    for (const step of order) {
      const now = T0 + (step % 3) * W + step
      for (const { a, id } of issued) {
        for (const who of addrs) {
          assert.equal(cached.verify(id, who, now), fresh().verify(id, who, now), `${a}'s id, asked as ${who} at step ${step}`)
        }
        assert.deepEqual(cached.issue(a, now), fresh().issue(a, now))
      }
    }
    // a wrong id right after a right one from the same address, in both windows
    const id = cached.issue('192.0.2.1', T0)
    assert.equal(cached.verify(id, '192.0.2.1', T0 + W), true)
    const wrong = id.slice()
    wrong[7] ^= 1
    assert.equal(cached.verify(wrong, '192.0.2.1', T0 + W), false)
    assert.equal(cached.verify(wrong, '192.0.2.1', T0), false)
    assert.equal(cached.verify(id, '192.0.2.1', T0), true)
  })

  it('property: issued ids verify within the next window and fail elsewhere', () => {
    const ids = new ConnectionIds({ secret: SECRET })
    fc.assert(fc.property(
      fc.oneof(fc.ipV4(), fc.ipV6()),
      fc.integer({ min: 0, max: 2 ** 45 }),
      fc.integer({ min: 0, max: W - 1 }),
      (address, now, later) => {
        const id = ids.issue(address, now)
        assert.equal(ids.verify(id, address, now + later), true)
        assert.equal(ids.verify(id, address, now + 2 * W), false)
      }
    ))
  })
})

// SipHash-2-4 reference vectors (`vectors_sip64` of the SipHash authors' reference
// implementation): key 00 01 … 0f, message i = the i bytes 00 01 … (i-1), output bytes.
const SIPHASH_VECTORS = [
  '310e0edd47db6f72', 'fd67dc93c539f874', '5a4fa9d909806c0d', '2d7efbd796666785',
  'b7877127e09427cf', '8da699cd64557618', 'cee3fe586e46c9cb', '37d1018bf50002ab',
  '6224939a79f5f593', 'b0e4a90bdf82009e', 'f3b9dd94c5bb5d7a', 'a7ad6b22462fb3f4',
  'fbe50e86bc8f1e75', '903d84c02756ea14', 'eef27a8e90ca23f7', 'e545be4961ca29a1',
  'db9bc2577fcc2a3f', '9447be2cf5e99a69', '9cd38d96f0b3c14b', 'bd6179a71dc96dbb',
  '98eea21af25cd6be', 'c7673b2eb0cbf2d0', '883ea3e395675393', 'c8ce5ccd8c030ca8',
  '94af49f6c650adb8', 'eab8858ade92e1bc', 'f315bb5bb835d817', 'adcf6b0763612e2f',
  'a5c91da7acaa4dde', '716595876650a2a6', '28ef495c53a387ad', '42c341d8fa92d832',
  'ce7cf2722f512771', 'e37859f94623f3a7', '381205bb1ab0e012', 'ae97a10fd434e015',
  'b4a31508beff4d31', '81396229f0907902', '4d0cf49ee5d4dcca', '5c73336a76d8bf9a',
  'd0a704536ba93e0e', '925958fcd6420cad', 'a915c29bc8067318', '952b79f3bc0aa6d4',
  'f21df2e41d4535f9', '87577519048f53a9', '10a56cf5dfcd9adb', 'eb75095ccd986cd0',
  '51a9cb9ecba312e6', '96afadfc2ce666c7', '72fe52975a4364ee', '5a1645b276d592a1',
  'b274cb8ebf87870a', '6f9bb4203de7b381', 'eaecb2a30b22a87f', '9924a43cc1315724',
  'bd838d3aafbf8db7', '0b1a2a3265d51aea', '135079a3231ce660', '932b2846e4d70666',
  'e1915f5cb1eca46c', 'f325965ca16d629f', '575ff28e60381be5', '724506eb4c328a95'
]

describe('SipHash-2-4', () => {
  const key = Uint8Array.from({ length: 16 }, (_, i) => i)

  it('matches all 64 reference vectors (messages of 0..63 bytes)', () => {
    assert.equal(SIPHASH_VECTORS.length, 64)
    for (let i = 0; i < 64; i++) {
      const msg = Uint8Array.from({ length: i }, (_, j) => j)
      assert.equal(Buffer.from(sipHash24(key, msg)).toString('hex'), SIPHASH_VECTORS[i], `message length ${i}`)
    }
  })

  it("matches the paper's worked example (15-byte message → 0xa129ca6149be45e5)", () => {
    const msg = Uint8Array.from({ length: 15 }, (_, j) => j)
    assert.equal(Buffer.from(sipHash24(key, msg)).reverse().toString('hex'), 'a129ca6149be45e5')
  })

  it('needs a 16-byte key', () => {
    assert.throws(() => sipHash24(new Uint8Array(8), new Uint8Array(0)), RangeError)
  })
})
