/** Parsing of the TLS and abuse-control options (the seed's flags are covered by cli.test.ts). */
import { it } from 'node:test'
import assert from 'node:assert/strict'
import { HELP } from '../../src/cli/args.js'
import { ConfigError, loadConfig } from '../../src/config/load.js'
import { parseRateLimit } from '../../src/config/options.js'
import { CLI_INTERVAL_JITTER, CLI_RATE_LIMIT_HTTP, CLI_RATE_LIMIT_UDP, CLI_RATE_LIMIT_WS, UDP_BAD_ID_MAX } from '../../src/constants.js'

const text = (l: readonly [number, number]): string => `${l[0]}/s:${l[1]}`

it('defaults: rate limits and bad-id bans on, ±10% jitter, full scrape off, no TLS', () => {
  const o = loadConfig([]).config
  assert.deepEqual([o.rateLimit, o.rateLimitHttp, o.rateLimitUdp, o.rateLimitWs], [true, text(CLI_RATE_LIMIT_HTTP), text(CLI_RATE_LIMIT_UDP), text(CLI_RATE_LIMIT_WS)])
  assert.deepEqual(parseRateLimit(o.rateLimitHttp), { rate: CLI_RATE_LIMIT_HTTP[0], burst: CLI_RATE_LIMIT_HTTP[1] })
  assert.equal(o.udpBadIdLimit, UDP_BAD_ID_MAX)
  assert.equal(o.intervalJitter, CLI_INTERVAL_JITTER * 100)
  assert.equal(o.fullScrape, false)
  assert.equal(o.cert, undefined)
  assert.deepEqual(o.trustProxyFrom, [])
})

it('every new flag', () => {
  const o = loadConfig([
    '--cert', 'c.pem', '--key=k.pem', '--rate-limit-http', '5/s', '--rate-limit-udp', '2.5/s:7', '--rate-limit-ws', 'off',
    '--udp-bad-id-limit', '0', '--interval-jitter', '25', '--full-scrape', '--trust-proxy-from', '127.0.0.1/32, ::1'
  ]).config
  assert.match(o.cert!, /\/c\.pem$/)
  assert.match(o.key!, /\/k\.pem$/)
  assert.deepEqual([o.rateLimitHttp, o.rateLimitUdp, o.rateLimitWs].map(parseRateLimit), [{ rate: 5, burst: 50 }, { rate: 2.5, burst: 7 }, false])
  assert.equal(o.udpBadIdLimit, 0)
  assert.equal(o.intervalJitter, 25)
  assert.equal(o.fullScrape, true)
  assert.deepEqual(o.trustProxyFrom, ['127.0.0.1/32', '::1'])
  assert.equal(loadConfig(['--no-rate-limit']).config.rateLimit, false)
})

it('malformed values are refused with the option named', () => {
  const bad: Array<[string[], string]> = [
    [['--rate-limit-http', '5'], 'invalid rate-limit-http (N/s, N/s:BURST or off): 5'],
    [['--rate-limit-ws', '5/m'], 'invalid rate-limit-ws (N/s, N/s:BURST or off): 5/m'],
    [['--rate-limit-udp', '5/s:0'], 'invalid rate-limit-udp (N/s, N/s:BURST or off): 5/s:0'],
    [['--udp-bad-id-limit', '-1'], 'invalid --udp-bad-id-limit (a count, 0 for none): -1'],
    [['--interval-jitter', '51'], 'invalid --interval-jitter (percent, 0 to 50): 51'],
    [['--key', 'k.pem'], '--cert and --key go together']
  ]
  for (const [argv, error] of bad) {
    assert.throws(() => loadConfig(argv), (err: unknown) => err instanceof ConfigError && err.message === error, argv.join(' '))
  }
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
    assert.match(HELP, new RegExp(`^\\s+(-\\w, )?${flag} `, 'm'), flag)
  }
})
