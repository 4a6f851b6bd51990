/** Parsing of the TLS and abuse-control flags (the seed's flags are covered by cli.test.ts). */
import { it } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { HELP, parseArgs, parseRateLimit } from '../../src/cli/args.js'
import { CLI_INTERVAL_JITTER, CLI_RATE_LIMIT_HTTP, CLI_RATE_LIMIT_UDP, CLI_RATE_LIMIT_WS, UDP_BAD_ID_MAX } from '../../src/constants.js'

const ok = (argv: string[]): ReturnType<typeof parseArgs> & { ok: true } => {
  const r = parseArgs(argv)
  assert.ok(r.ok, r.ok ? '' : r.error)
  return r
}

it('defaults: rate limits and bad-id bans on, ±10% jitter, full scrape off, no TLS', () => {
  const o = ok([]).options
  assert.deepEqual(o.rateLimit, {
    http: { rate: CLI_RATE_LIMIT_HTTP[0], burst: CLI_RATE_LIMIT_HTTP[1] },
    udp: { rate: CLI_RATE_LIMIT_UDP[0], burst: CLI_RATE_LIMIT_UDP[1] },
    ws: { rate: CLI_RATE_LIMIT_WS[0], burst: CLI_RATE_LIMIT_WS[1] }
  })
  assert.equal(o.udpBadIdLimit, UDP_BAD_ID_MAX)
  assert.equal(o.intervalJitter, CLI_INTERVAL_JITTER)
  assert.equal(o.fullScrape, false)
  assert.equal(o.certFile, undefined)
  assert.equal(o.trustProxyFrom, undefined)
})

it('every new flag', () => {
  const o = ok([
    '--cert', 'c.pem', '--key=k.pem', '--rate-limit-http', '5/s', '--rate-limit-udp', '2.5/s:7', '--rate-limit-ws', 'off',
    '--udp-bad-id-limit', '0', '--interval-jitter', '25', '--full-scrape', '--trust-proxy-from', '127.0.0.1/32, ::1'
  ]).options
  assert.equal(o.certFile, 'c.pem')
  assert.equal(o.keyFile, 'k.pem')
  assert.deepEqual(o.rateLimit, { http: { rate: 5, burst: 50 }, udp: { rate: 2.5, burst: 7 }, ws: false })
  assert.equal(o.udpBadIdLimit, 0)
  assert.equal(o.intervalJitter, 0.25)
  assert.equal(o.fullScrape, true)
  assert.deepEqual(o.trustProxyFrom, ['127.0.0.1/32', '::1'])
  assert.deepEqual(ok(['--no-rate-limit']).options.rateLimit, { http: false, udp: false, ws: false })
  assert.equal(ok(['--no-rate-limit']).options.udpBadIdLimit, 0)
})

it('malformed values are refused with the flag named', () => {
  const bad: Array<[string[], string]> = [
    [['--rate-limit-http', '5'], 'invalid --rate-limit-http (N/s, N/s:BURST or off): 5'],
    [['--rate-limit-ws', '5/m'], 'invalid --rate-limit-ws (N/s, N/s:BURST or off): 5/m'],
    [['--rate-limit-udp', '5/s:0'], 'invalid --rate-limit-udp (N/s, N/s:BURST or off): 5/s:0'],
    [['--udp-bad-id-limit', '-1'], 'invalid --udp-bad-id-limit (a count, 0 for none): -1'],
    [['--interval-jitter', '51'], 'invalid --interval-jitter (percent, 0 to 50): 51'],
    [['--interval-jitter', ''], 'invalid --interval-jitter (percent, 0 to 50): '],
    [['--trust-proxy-from', ','], '--trust-proxy-from needs addresses: ,'],
    [['--key', 'k.pem'], '--cert and --key go together'],
    [['--cert'], '--cert needs a value'],
    [['--full-scrape=1'], 'unknown option: --full-scrape=1']
  ]
  for (const [argv, error] of bad) assert.deepEqual(parseArgs(argv), { ok: false, error }, argv.join(' '))
})

it('parseRateLimit', () => {
  assert.deepEqual(parseRateLimit('0.5/s'), { rate: 0.5, burst: 5 })
  assert.deepEqual(parseRateLimit('0.01/s'), { rate: 0.01, burst: 1 })
  assert.equal(parseRateLimit('0'), false)
  assert.equal(parseRateLimit('0/s'), undefined)
  assert.equal(parseRateLimit('-1/s'), undefined)
})

it('the help text names every new flag', () => {
  for (const flag of ['--cert', '--key', '--trust-proxy-from', '--rate-limit-http', '--rate-limit-udp', '--rate-limit-ws', '--no-rate-limit', '--udp-bad-id-limit', '--interval-jitter', '--full-scrape']) {
    assert.match(HELP, new RegExp(`^\\s+${flag} `, 'm'), flag)
  }
  assert.match(HELP, /--rate-limit-http \[rate\] +per-address HTTP request rate, N\/s or N\/s:BURST, or off\n +\[default: 50\/s:500\]/)
})

it('the README\'s --help block is the real help text (up to the bug-report line)', () => {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8')
  const start = readme.indexOf('$ bittorrent-tracker --help\n')
  assert.ok(start >= 0)
  const block = readme.slice(start, readme.indexOf('```', start)).split('\n').slice(1).join('\n')
  assert.equal(block, HELP.slice(0, HELP.indexOf('\n\n  Please report bugs!') + 1))
})
