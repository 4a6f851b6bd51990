import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import {
  announceToScrapeUrl, decodeScrapeQuery, decodeScrapeResponse, encodeScrapeQuery, encodeScrapeResponse
} from '../../../src/protocol/http/index.js'
import { percentEncodeBytes } from '../../../src/protocol/http/query.js'
import { bencode } from '../../../src/protocol/common/bencode.js'
import type { ScrapeEntry } from '../../../src/protocol/common/types.js'
import { MAX_QUERY_PARAMS, MAX_SCRAPE_HASHES } from '../../../src/constants.js'

const latin1 = (u8: Uint8Array): string => Buffer.from(u8).toString('latin1')
const bytes = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'latin1'))

/** Hashes with bytes ≥ 0x80 and 0x00 (a UTF-8 key mapping would mangle both). */
const H1 = '\x00\x80\xff\xc3\x28' + 'a'.repeat(15) // \xc3\x28 is invalid UTF-8
const H2 = '\xff'.repeat(20)
const H3 = '\x7f' + '\x00'.repeat(19)

function hashN (i: number): string {
  return String.fromCharCode(0x80 + (i >> 8), i & 0xff) + 'h'.repeat(18)
}

describe('decodeScrapeQuery', () => {
  it('collects info_hash params as raw bytes, ignoring others', () => {
    const r = decodeScrapeQuery(`info_hash=${percentEncodeBytes(H1)}&passkey=x&info_hash=${percentEncodeBytes(H2)}`)
    assert.deepEqual(r, { ok: true, value: { infoHashes: [H1, H2] } })
  })
  it('no info_hash means a full scrape (empty list)', () => {
    assert.deepEqual(decodeScrapeQuery(''), { ok: true, value: { infoHashes: [] } })
    assert.deepEqual(decodeScrapeQuery('?passkey=1'), { ok: true, value: { infoHashes: [] } })
  })
  it('folds duplicates, keeping first-seen order', () => {
    const q = [H2, H1, H2, H3, H1].map((h) => `info_hash=${percentEncodeBytes(h)}`).join('&')
    assert.deepEqual(decodeScrapeQuery(q), { ok: true, value: { infoHashes: [H2, H1, H3] } })
  })
  it('accepts MAX_SCRAPE_HASHES distinct hashes, plus any number of repeats', () => {
    const hashes = Array.from({ length: MAX_SCRAPE_HASHES }, (_, i) => hashN(i))
    const q = [...hashes, ...hashes.slice(0, 10)].map((h) => `info_hash=${percentEncodeBytes(h)}`).join('&')
    const r = decodeScrapeQuery(q)
    assert.equal(r.ok, true)
    if (r.ok) assert.deepEqual(r.value.infoHashes, hashes)
  })
  it('TOO_MANY_HASHES beyond MAX_SCRAPE_HASHES', () => {
    const q = Array.from({ length: MAX_SCRAPE_HASHES + 1 }, (_, i) => `info_hash=${percentEncodeBytes(hashN(i))}`).join('&')
    const r = decodeScrapeQuery(q)
    assert.equal(r.ok, false)
    if (!r.ok) {
      assert.equal(r.error.code, 'TOO_MANY_HASHES')
      assert.equal(r.error.message, `too many info_hash values in scrape: more than ${MAX_SCRAPE_HASHES}`)
    }
    const r2 = decodeScrapeQuery(`info_hash=${percentEncodeBytes(H1)}&info_hash=${percentEncodeBytes(H2)}`, 1)
    assert.equal(r2.ok, false)
    if (!r2.ok) assert.equal(r2.error.code, 'TOO_MANY_HASHES')
  })
  it('INVALID_INFO_HASH for a hash that is not 20 bytes', () => {
    for (const h of ['', 'abc', H1 + '\x00', encodeURIComponent('é'.repeat(20))]) {
      const r = decodeScrapeQuery(`info_hash=${percentEncodeBytes(H1)}&info_hash=${h.startsWith('%') ? h : percentEncodeBytes(h)}`)
      assert.equal(r.ok, false, h)
      if (!r.ok) assert.equal(r.error.code, 'INVALID_INFO_HASH')
    }
  })
  it('INVALID_QUERY and TOO_MANY_PARAMS pass through', () => {
    const r = decodeScrapeQuery('info_hash=%G1')
    assert.equal(r.ok, false)
    if (!r.ok) assert.equal(r.error.code, 'INVALID_QUERY')
    const r2 = decodeScrapeQuery(Array.from({ length: MAX_QUERY_PARAMS + 1 }, () => 'x=1').join('&'))
    assert.equal(r2.ok, false)
    if (!r2.ok) assert.equal(r2.error.code, 'TOO_MANY_PARAMS')
  })
})

describe('encodeScrapeResponse', () => {
  it('golden bytes: files keyed by raw hash, sorted by bytes, then flags', () => {
    const out = encodeScrapeResponse([
      { infoHash: H2, complete: 5, incomplete: 6, downloaded: 7 },
      { infoHash: H1, complete: 1, incomplete: 2, downloaded: 3 }
    ], { minRequestInterval: 900 })
    assert.equal(latin1(out),
      'd' +
      '5:files' + 'd' +
        `20:${H1}` + 'd' + '8:completei1e' + '10:downloadedi3e' + '10:incompletei2e' + 'e' + // \x00… sorts first
        `20:${H2}` + 'd' + '8:completei5e' + '10:downloadedi7e' + '10:incompletei6e' + 'e' +
      'e' +
      '5:flags' + 'd' + '20:min_request_interval' + 'i900e' + 'e' +
      'e')
    // The raw key bytes are on the wire one for one (not UTF-8: 0x80 is not c2 80).
    assert.deepEqual(Array.from(out.subarray(12, 17)), [0x00, 0x80, 0xff, 0xc3, 0x28])
  })
  it('empty, and a repeated hash written once', () => {
    assert.equal(latin1(encodeScrapeResponse([])), 'd5:filesdee')
    const e: ScrapeEntry = { infoHash: H3, complete: 0, incomplete: 0, downloaded: 0 }
    assert.equal(latin1(encodeScrapeResponse([e, { ...e, complete: 9 }])), `d5:filesd20:${H3}d8:completei0e10:downloadedi0e10:incompletei0eeee`)
  })
  it('matches the generic bencode of the same structure', () => {
    fc.assert(fc.property(fc.uniqueArray(entryArb, { selector: (e) => e.infoHash, maxLength: 10 }), fc.option(fc.nat(), { nil: undefined }), (entries, mri) => {
      const files: Record<string, { complete: number, downloaded: number, incomplete: number }> = {}
      for (const e of entries) files[e.infoHash] = { complete: e.complete, downloaded: e.downloaded, incomplete: e.incomplete }
      const generic = bencode({ files, flags: mri === undefined ? undefined : { min_request_interval: mri } })
      assert.deepEqual(encodeScrapeResponse(entries, { minRequestInterval: mri }), generic)
    }), { numRuns: 300 })
  })
  it('throws TypeError on bad entries (server bugs)', () => {
    assert.throws(() => encodeScrapeResponse([{ infoHash: 'short', complete: 0, incomplete: 0, downloaded: 0 }]), TypeError)
    assert.throws(() => encodeScrapeResponse([{ infoHash: 'é'.repeat(19) + '\u0100', complete: 0, incomplete: 0, downloaded: 0 }]), TypeError)
    assert.throws(() => encodeScrapeResponse([{ infoHash: H1, complete: -1, incomplete: 0, downloaded: 0 }]), TypeError)
    assert.throws(() => encodeScrapeResponse([], { minRequestInterval: 0.5 }), TypeError)
  })
})

describe('encodeScrapeQuery', () => {
  it('repeats info_hash, percent-encoding every non-unreserved byte', () => {
    assert.equal(encodeScrapeQuery([H1, H3]),
      'info_hash=%00%80%FF%C3%28' + 'a'.repeat(15) + '&info_hash=%7F' + '%00'.repeat(19))
    assert.equal(encodeScrapeQuery([]), '')
  })
})

describe('decodeScrapeResponse', () => {
  function decoded (s: string) {
    const r = decodeScrapeResponse(bytes(s))
    if (!r.ok) assert.fail(`expected ok, got ${r.error.code}: ${r.error.message}`)
    return r.value
  }
  it('reads raw-hash keys and counts', () => {
    assert.deepEqual(decoded(`d5:filesd20:${H1}d8:completei1e10:downloadedi3e10:incompletei2eeee`),
      { files: [{ infoHash: H1, complete: 1, incomplete: 2, downloaded: 3 }] })
  })
  it('missing or invalid counts read as 0; bad keys and values are skipped', () => {
    const body = 'd5:filesd' +
      `20:${H1}de` + // all missing
      `20:${H2}d8:completei-1e10:incomplete1:x10:downloadedi4ee` + // negative, wrong type
      '3:abcd8:completei1ee' + // key not 20 bytes
      `20:${H3}i5e` + // value not a dict
      'ee'
    assert.deepEqual(decoded(body), {
      files: [
        { infoHash: H1, complete: 0, incomplete: 0, downloaded: 0 },
        { infoHash: H2, complete: 0, incomplete: 0, downloaded: 4 }
      ]
    })
  })
  it('a tracker may omit hashes (BEP 48); files may be absent', () => {
    assert.deepEqual(decoded('d5:filesdee'), { files: [] })
    assert.deepEqual(decoded('de'), { files: [] })
    assert.deepEqual(decoded('d5:filesi1ee'), { files: [] })
  })
  it('reads flags.min_request_interval', () => {
    assert.deepEqual(decoded('d5:filesde5:flagsd20:min_request_intervali60eee'), { files: [], minRequestInterval: 60 })
    assert.deepEqual(decoded('d5:flagsi1ee'), { files: [] })
  })
  it('a failure reason short-circuits', () => {
    assert.deepEqual(decoded(`d14:failure reason6:denied5:filesd20:${H1}deee`), { failure: 'denied', files: [] })
  })
  it('INVALID_PACKET for non-dicts and bad bencode', () => {
    for (const s of ['le', 'i1e', '', 'd5:files', '<html>', 'd14:failure reasoni1e5:filesdee']) {
      const r = decodeScrapeResponse(bytes(s))
      assert.equal(r.ok, false, s)
      if (!r.ok) assert.equal(r.error.code, 'INVALID_PACKET')
    }
  })
})

const entryArb: fc.Arbitrary<ScrapeEntry> = fc.record({
  infoHash: fc.uint8Array({ minLength: 20, maxLength: 20 }).map(latin1),
  complete: fc.nat(),
  incomplete: fc.nat(),
  downloaded: fc.nat()
}).map((e) => ({ ...e })) // fc.record builds null-prototype objects; decoders return plain ones

describe('round trips', () => {
  it('client query encoder → server query decoder', () => {
    fc.assert(fc.property(fc.array(entryArb.map((e) => e.infoHash), { maxLength: MAX_SCRAPE_HASHES }), (hashes) => {
      const r = decodeScrapeQuery(encodeScrapeQuery(hashes))
      assert.deepEqual(r, { ok: true, value: { infoHashes: [...new Set(hashes)] } })
    }), { numRuns: 300 })
  })
  it('server response encoder → client response decoder', () => {
    fc.assert(fc.property(fc.uniqueArray(entryArb, { selector: (e) => e.infoHash, maxLength: 20 }), (entries) => {
      const r = decodeScrapeResponse(encodeScrapeResponse(entries))
      assert.equal(r.ok, true)
      if (!r.ok) return
      const byHash = (a: ScrapeEntry, b: ScrapeEntry) => a.infoHash < b.infoHash ? -1 : a.infoHash > b.infoHash ? 1 : 0
      assert.deepEqual(r.value.files.slice().sort(byHash), entries.slice().sort(byHash))
    }), { numRuns: 500 })
  })
})

describe('never throws', () => {
  it('decodeScrapeQuery on random strings', () => {
    const chars = fc.constantFrom('info_hash=', '%00', '%FF', '%', '&', '=', 'a', '\u0100', '+')
    fc.assert(fc.property(fc.oneof(fc.string({ unit: chars, maxLength: 40 }), fc.string({ unit: 'binary', maxLength: 60 })), (q) => {
      const r = decodeScrapeQuery(q)
      if (r.ok) for (const h of r.value.infoHashes) assert.equal(h.length, 20)
      else assert.ok(['INVALID_INFO_HASH', 'INVALID_QUERY', 'TOO_MANY_PARAMS', 'TOO_MANY_HASHES'].includes(r.error.code))
    }), { numRuns: 5000 })
  })
  it('decodeScrapeResponse on random and mutated bodies', () => {
    const mutated = fc.tuple(fc.array(entryArb, { maxLength: 4 }), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 3 }))
      .map(([entries, edits]) => {
        const b = encodeScrapeResponse(entries, { minRequestInterval: 5 })
        for (const [at, byte] of edits) b[at % b.length] = byte
        return b
      })
    fc.assert(fc.property(fc.oneof(mutated, fc.uint8Array({ maxLength: 100 })), (b) => {
      const r = decodeScrapeResponse(b)
      if (r.ok) for (const f of r.value.files) assert.equal(f.infoHash.length, 20)
      else assert.equal(r.error.code, 'INVALID_PACKET')
    }), { numRuns: 5000 })
  })
})

describe('announceToScrapeUrl (BEP 48)', () => {
  const table: Array<[string, string | undefined]> = [
    ['http://example.com/announce', 'http://example.com/scrape'],
    ['http://example.com/x/announce', 'http://example.com/x/scrape'],
    ['http://example.com/announce.php', 'http://example.com/scrape.php'],
    ['http://example.com/announce?x2%0644', 'http://example.com/scrape?x2%0644'],
    ['https://example.com:8443/p/announce?passkey=a/announce#frag', 'https://example.com:8443/p/scrape?passkey=a/announce#frag'],
    ['http://example.com/announce#x/announce', 'http://example.com/scrape#x/announce'],
    ['udp://tracker.example:80/announce', 'udp://tracker.example:80/scrape'],
    ['http://example.com/a', undefined],
    ['http://example.com/announce/', undefined],
    ['http://example.com/x%064announce', undefined],
    ['http://example.com/announc', undefined],
    ['http://example.com/Announce', undefined],
    ['http://announce', undefined],
    ['http://announce/', undefined],
    ['http://example.com', undefined],
    ['http://example.com?u=/announce', undefined],
    ['http://example.com/?u=http://x/announce', undefined],
    ['/announce', '/scrape'],
    ['', undefined]
  ]
  for (const [input, expected] of table) {
    it(`${input || '(empty)'} → ${expected}`, () => assert.equal(announceToScrapeUrl(input), expected))
  }
  it('rejects non-strings without throwing', () => {
    assert.equal(announceToScrapeUrl(undefined as unknown as string), undefined)
  })
})
