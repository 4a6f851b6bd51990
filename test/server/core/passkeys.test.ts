import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { ERRORS } from '../../../src/errors.js'
import { EVENT_COMPLETED, EVENT_NONE, EVENT_STARTED, EVENT_STOPPED } from '../../../src/protocol/common/types.js'
import { Passkeys, isValidPasskey } from '../../../src/server/core/passkeys.js'

const KEY = 'a'.repeat(16)
const IH = 'i'.repeat(20)
const PEER = '\x7f\x00\x00\x01\x1a\xe1'

describe('Passkeys: validation and lookups', () => {
  it('accepts 16–64 characters of [A-Za-z0-9] and nothing else', () => {
    assert.equal(isValidPasskey('A'.repeat(15)), false)
    assert.equal(isValidPasskey('A'.repeat(16)), true)
    assert.equal(isValidPasskey('Az09'.repeat(16)), true)
    assert.equal(isValidPasskey('A'.repeat(65)), false)
    for (const bad of ['a'.repeat(15) + '-', 'a'.repeat(15) + '/', 'a'.repeat(15) + '%', 'a'.repeat(15) + 'é', 'a'.repeat(15) + ' ']) {
      assert.equal(isValidPasskey(bad), false, bad)
    }
  })

  it('check: missing → PASSKEY_REQUIRED, unknown → UNKNOWN_PASSKEY, known → null', () => {
    const p = new Passkeys()
    p.add(KEY, 'file')
    assert.equal(p.check(undefined)?.code, 'PASSKEY_REQUIRED')
    assert.equal(p.check('')?.message, ERRORS.PASSKEY_REQUIRED)
    assert.equal(p.check('b'.repeat(16))?.code, 'UNKNOWN_PASSKEY')
    assert.equal(p.check('b'.repeat(16))?.clientMessage, 'unknown passkey')
    assert.equal(p.check(KEY), null)
    p.delete(KEY)
    assert.equal(p.check(KEY)?.code, 'UNKNOWN_PASSKEY')
  })

  it('generates 32-hex-character keys when none is given, and refuses malformed ones', () => {
    const p = new Passkeys()
    const a = p.add(undefined, 'api')
    assert.match(a.key, /^[0-9a-f]{32}$/)
    assert.notEqual(p.add(undefined, 'api').key, a.key)
    assert.throws(() => p.add('short', 'api'), /invalid passkey/)
    assert.equal(p.size, 2)
  })
})

describe('Passkeys: accounting of deltas', () => {
  it('adds growth between reports of the same peer, per key', () => {
    const p = new Passkeys()
    p.add(KEY, 'file')
    p.account(KEY, IH, PEER, EVENT_STARTED, 0, 0, 1)
    p.account(KEY, IH, PEER, EVENT_NONE, 1000, 300, 2)
    p.account(KEY, IH, PEER, EVENT_NONE, 1500, 300, 3)
    p.account(KEY, IH, PEER, EVENT_COMPLETED, 1600, 900, 4)
    assert.deepEqual({ ...p.get(KEY) }, { key: KEY, source: 'file', uploaded: 1600, downloaded: 900 })
  })

  it('a counter that goes backwards (client restart) is a fresh start, never negative', () => {
    const p = new Passkeys()
    p.add(KEY, 'file')
    p.account(KEY, IH, PEER, EVENT_NONE, 5000, 4000, 1)
    p.account(KEY, IH, PEER, EVENT_NONE, 200, 100, 2) // restarted without `started`
    p.account(KEY, IH, PEER, EVENT_NONE, 250, 100, 3)
    assert.equal(p.get(KEY)!.uploaded, 5000 + 200 + 50)
    assert.equal(p.get(KEY)!.downloaded, 4000 + 100)
  })

  it('`started` starts over: its totals count whole; `stopped` counts and forgets the peer', () => {
    const p = new Passkeys()
    p.add(KEY, 'file')
    p.account(KEY, IH, PEER, EVENT_NONE, 100, 10, 1)
    p.account(KEY, IH, PEER, EVENT_STARTED, 150, 20, 2) // a new session: 150 is all new
    assert.equal(p.get(KEY)!.uploaded, 250)
    assert.equal(p.tracked, 1)
    p.account(KEY, IH, PEER, EVENT_STOPPED, 170, 20, 3)
    assert.equal(p.get(KEY)!.uploaded, 270)
    assert.equal(p.tracked, 0)
  })

  it('keeps peers, torrents and keys apart; ignores a key that is gone and non-finite totals', () => {
    const p = new Passkeys()
    const k2 = 'b'.repeat(16)
    p.add(KEY, 'file')
    p.add(k2, 'api')
    p.account(KEY, IH, PEER, EVENT_NONE, 100, 0, 1)
    p.account(KEY, 'j'.repeat(20), PEER, EVENT_NONE, 100, 0, 1)
    p.account(KEY, IH, 'other!', EVENT_NONE, 100, 0, 1)
    p.account(k2, IH, PEER, EVENT_NONE, 7, 0, 1)
    p.account('c'.repeat(16), IH, PEER, EVENT_NONE, 1e6, 0, 1)
    p.account(k2, IH, PEER, EVENT_NONE, Infinity, NaN, 2)
    assert.equal(p.get(KEY)!.uploaded, 300)
    assert.equal(p.get(k2)!.uploaded, 7)
    assert.equal(p.tracked, 4)
  })

  it('remembered reports expire oldest first, and are capped', () => {
    const p = new Passkeys(3)
    p.add(KEY, 'file')
    for (let i = 0; i < 5; i++) p.account(KEY, IH, `peer${i}`, EVENT_NONE, 10, 0, 100 + i)
    assert.equal(p.tracked, 3) // peer0 and peer1 evicted by the cap
    // peer2 reports again: it becomes the newest
    p.account(KEY, IH, 'peer2', EVENT_NONE, 15, 0, 200)
    assert.equal(p.expire(104), 1) // peer3 (seen 103) goes; peer4 (104) and peer2 (200) stay
    assert.deepEqual(Array.from(p.reports(), ([id, r]) => [id.slice(-5), r.seen]), [['peer4', 104], ['peer2', 200]])
    // an evicted peer's next report counts its total again (a fresh start)
    p.account(KEY, IH, 'peer0', EVENT_NONE, 10, 0, 201)
    assert.equal(p.get(KEY)!.uploaded, 5 * 10 + 5 + 10)
  })
})
