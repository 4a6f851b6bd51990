// The configuration layers (defaults < file < environment < flags), read through the one table.
import { after, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { availableParallelism, tmpdir } from 'node:os'
import { join } from 'node:path'
import { parse as parseToml } from 'smol-toml'
import { ConfigError, formatConfig, loadConfig, parseArgv, parseEnv, readConfigFile, resolveWorkers } from '../../src/config/load.js'
import { ALL, envName, OPTIONS } from '../../src/config/options.js'

const dir = mkdtempSync(join(tmpdir(), 'bt-config-'))
after(() => rmSync(dir, { recursive: true, force: true }))

let n = 0
function file (ext: string, text: string): string {
  const p = join(dir, `c${n++}${ext}`)
  writeFileSync(p, text)
  return p
}

/** The ConfigError message thrown by `fn` (fails if it does not throw one). */
function configError (fn: () => unknown): ConfigError {
  try {
    fn()
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err))
    return err
  }
  assert.fail('no ConfigError thrown')
}

const DEFAULTS = Object.fromEntries(ALL.map(o => [o.key, o.default]))

describe('options table', () => {
  it('keys, flags and environment names are unique', () => {
    const keys = ALL.map(o => o.key)
    assert.equal(new Set(keys).size, keys.length)
    const flags = ALL.flatMap(o => [...o.flags, ...(o.negation !== undefined ? [o.negation] : []), ...Object.keys(o.presets ?? {})])
    assert.equal(new Set(flags).size, flags.length)
    const envs = ALL.map(o => envName(o.key))
    assert.equal(new Set(envs).size, envs.length)
  })

  it('environment names follow the one rule', () => {
    assert.equal(envName('port'), 'BITTORRENT_TRACKER_PORT')
    assert.equal(envName('httpHostname'), 'BITTORRENT_TRACKER_HTTP_HOSTNAME')
    assert.equal(envName('udp6Hostname'), 'BITTORRENT_TRACKER_UDP6_HOSTNAME')
    assert.equal(envName('fullScrapeLimit'), 'BITTORRENT_TRACKER_FULL_SCRAPE_LIMIT')
  })

  it('every default passes its own checks', () => {
    for (const o of ALL) {
      if (o.default === undefined) continue
      assert.deepEqual(o.fromValue(o.default), o.default, o.key)
    }
  })

  it('is typed: the Config type has a field per entry', () => {
    const c = loadConfig([]).config
    const port: number = c.port
    const level: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent' = c.logLevel
    const prefixes: string[] = c.clientAllow
    assert.deepEqual([port, level, prefixes], [8000, 'info', []])
    assert.equal(OPTIONS.length, ALL.length)
  })
})

describe('defaults and the seed flags', () => {
  it('no flags: the seed defaults, every transport on', () => {
    assert.deepEqual(loadConfig([]), { config: DEFAULTS, file: undefined })
    assert.deepEqual({ port: DEFAULTS.port, http: DEFAULTS.http, udp: DEFAULTS.udp, ws: DEFAULTS.ws, stats: DEFAULTS.stats, interval: DEFAULTS.interval },
      { port: 8000, http: true, udp: true, ws: true, stats: true, interval: 600000 })
  })

  it('seed flags map as before', () => {
    const c = loadConfig(['-p', '9', '--http', '--no-stats', '--trust-proxy', '--interval', '5000', '-q']).config
    assert.deepEqual([c.port, c.http, c.udp, c.ws, c.stats, c.trustProxy, c.interval, c.logLevel], [9, true, false, false, false, true, 5000, 'error'])
    assert.equal(loadConfig(['-s']).config.logLevel, 'silent')
    assert.equal(loadConfig(['--silent']).config.logLevel, 'silent')
    assert.equal(loadConfig(['--quiet']).config.logLevel, 'error')
    assert.equal(loadConfig(['--port=7']).config.port, 7)
    assert.deepEqual(loadConfig(['--udp', '--ws']).config.http, false)
  })

  it('new flags', () => {
    const c = loadConfig(['--max-numwant', '30', '--full-scrape-limit=0', '--ws-max-offers', '5', '--ws-max-swarms', '7',
      '--udp-secret', 'AB'.repeat(16), '--client-allow', '-qB,-TR', '--client-allow', '-DE', '--client-deny', '-XL',
      '--accept-client-ip', '--log-level', 'debug']).config
    assert.deepEqual([c.maxNumwant, c.fullScrapeLimit, c.wsMaxOffers, c.wsMaxSwarms, c.udpSecret, c.clientAllow, c.clientDeny, c.acceptClientIp, c.logLevel],
      [30, 0, 5, 7, 'ab'.repeat(16), ['-qB', '-TR', '-DE'], ['-XL'], true, 'debug'])
    assert.equal(loadConfig(['--print-config']).config.printConfig, 'toml')
    assert.equal(loadConfig(['--print-config=json']).config.printConfig, 'json')
  })

  const bad: Array<[string[], string]> = [
    [['--bogus'], 'unknown option: --bogus'],
    [['-p', 'abc'], 'invalid port: abc'],
    [['-p', '-1'], 'invalid port: -1'],
    [['--port'], '--port needs a value'],
    [['--interval', '999'], 'invalid interval (ms, at least 1000): 999'],
    [['--http=yes'], 'unknown option: --http=yes'],
    [['-q=1'], 'unknown option: -q=1'],
    [['--log-level', 'loud'], 'invalid log-level (one of trace, debug, info, warn, error, fatal, silent): loud'],
    [['--max-numwant', '0'], 'invalid max-numwant (an integer, at least 1): 0'],
    [['--max-numwant', '1.5'], 'invalid max-numwant (an integer, at least 1): 1.5'],
    [['--udp-secret', 'abcd'], 'invalid udp-secret (hex, at least 16 bytes (32 characters)): abcd'],
    [['--client-deny', '-XL,'], 'invalid client-deny (a list of strings of 1 to 20 characters): -XL,'],
    [['--print-config=yaml'], 'invalid print-config (one of none, toml, json): yaml']
  ]
  for (const [argv, message] of bad) {
    it(`${argv.join(' ')} → "${message}" (with usage)`, () => {
      const e = configError(() => parseArgv(argv))
      assert.equal(e.message, message)
      assert.equal(e.usage, true)
    })
  }

  it('--help and --version read nothing else (a broken environment does not matter)', () => {
    assert.equal(loadConfig(['-h'], { BITTORRENT_TRACKER_NOPE: '1' }).config.help, true)
    assert.equal(loadConfig(['--version'], { BITTORRENT_TRACKER_CONFIG: '/nonexistent.toml' }).config.version, true)
  })
})

describe('environment', () => {
  it('reads BITTORRENT_TRACKER_* by the naming rule and ignores other variables', () => {
    assert.deepEqual(parseEnv({
      PATH: '/bin', BITTORRENT_TRACKER_PORT: '6969', BITTORRENT_TRACKER_HTTP_HOSTNAME: '127.0.0.1', BITTORRENT_TRACKER_WS: 'false',
      BITTORRENT_TRACKER_TRUST_PROXY: 'yes', BITTORRENT_TRACKER_CLIENT_DENY: '-XL, -SD', BITTORRENT_TRACKER_LOG_LEVEL: 'warn'
    }), { port: 6969, httpHostname: '127.0.0.1', ws: false, trustProxy: true, clientDeny: ['-XL', '-SD'], logLevel: 'warn' })
  })

  it('an unknown variable or a bad value is an error naming the variable', () => {
    assert.equal(configError(() => parseEnv({ BITTORRENT_TRACKER_PROT: '1' })).message, 'unknown environment variable BITTORRENT_TRACKER_PROT')
    assert.equal(configError(() => parseEnv({ BITTORRENT_TRACKER_PORT: '70000' })).message,
      'environment variable BITTORRENT_TRACKER_PORT: invalid port: expected an integer from 0 to 65535, got "70000"')
    assert.equal(configError(() => parseEnv({ BITTORRENT_TRACKER_STATS: 'maybe' })).message,
      'environment variable BITTORRENT_TRACKER_STATS: invalid stats: expected true or false, got "maybe"')
    // Command-line-only options have no variable.
    assert.equal(configError(() => parseEnv({ BITTORRENT_TRACKER_HELP: '1' })).message, 'unknown environment variable BITTORRENT_TRACKER_HELP')
  })
})

describe('config file', () => {
  it('TOML: every file option', () => {
    const f = file('.toml', `# a comment
port = 6969
httpHostname = "127.0.0.1"
udpHostname = "127.0.0.1"
udp6Hostname = "::1"
trustProxy = true
interval = 900_000
http = true
udp = true
ws = false
stats = false
acceptClientIp = true
maxNumwant = 80
fullScrapeLimit = 0
wsMaxOffers = 3
wsMaxSwarms = 4
udpSecret = "${'0f'.repeat(16)}"
denylist = "sub/deny.txt"
clientAllow = ["-qB", "-TR"]
clientDeny = []
logLevel = "warn"
`)
    assert.deepEqual(readConfigFile(f), {
      port: 6969, httpHostname: '127.0.0.1', udpHostname: '127.0.0.1', udp6Hostname: '::1', trustProxy: true, interval: 900000,
      http: true, udp: true, ws: false, stats: false, acceptClientIp: true, maxNumwant: 80, fullScrapeLimit: 0, wsMaxOffers: 3,
      wsMaxSwarms: 4, udpSecret: '0f'.repeat(16), denylist: join(dir, 'sub/deny.txt'), clientAllow: ['-qB', '-TR'], clientDeny: [], logLevel: 'warn'
    })
  })

  it('JSON: the same keys', () => {
    const f = file('.json', JSON.stringify({ port: 1, allowlist: '/abs/list.txt', clientDeny: ['-XL'], stats: false }))
    assert.deepEqual(readConfigFile(f), { port: 1, allowlist: '/abs/list.txt', clientDeny: ['-XL'], stats: false })
  })

  const badFiles: Array<[string, string, (f: string) => string]> = [
    ['.toml', 'prot = 1\n', f => `config file ${f}: unknown key "prot"`],
    ['.toml', 'port = "8000"\n', f => `config file ${f}: invalid port: expected an integer from 0 to 65535, got "8000"`],
    ['.toml', 'port = 65536\n', f => `config file ${f}: invalid port: expected an integer from 0 to 65535, got 65536`],
    ['.toml', 'port = 1.5\n', f => `config file ${f}: invalid port: expected an integer from 0 to 65535, got 1.5`],
    ['.toml', 'interval = 10\n', f => `config file ${f}: invalid interval: expected an integer, at least 1000, got 10`],
    ['.toml', 'stats = "no"\n', f => `config file ${f}: invalid stats: expected true or false, got "no"`],
    ['.toml', 'logLevel = "verbose"\n', f => `config file ${f}: invalid logLevel: expected one of trace, debug, info, warn, error, fatal, silent, got "verbose"`],
    ['.toml', 'clientAllow = "-qB"\n', f => `config file ${f}: invalid clientAllow: expected a list of strings of 1 to 20 characters, got "-qB"`],
    ['.toml', 'clientAllow = ["-qB", 3]\n', f => `config file ${f}: invalid clientAllow: expected a list of strings of 1 to 20 characters, got an array ["-qB",3]`],
    ['.toml', '[server]\nport = 1\n', f => `config file ${f}: unknown key "server"`],
    ['.toml', 'help = true\n', f => `config file ${f}: unknown key "help"`],
    ['.toml', 'config = "x.toml"\n', f => `config file ${f}: unknown key "config"`],
    ['.toml', 'udpSecret = "xyz"\n', f => `config file ${f}: invalid udpSecret: expected hex, at least 16 bytes (32 characters), got "xyz"`],
    ['.toml', 'port = 1\n\nhttp = tru\n', f => `config file ${f}, line 3, column 8: Invalid TOML document: invalid value`],
    ['.toml', 'port = 1\nport = 2\n', f => `config file ${f}, line 2, column 1: Invalid TOML document: trying to redefine an already defined table or value`],
    ['.json', '{\n  "port": 1,\n  \n', f => `config file ${f}, line 4: invalid JSON: Expected double-quoted property name in JSON at position 18`],
    // Where V8 gives no position, no line.
    ['.json', '{"http": tru}', f => `config file ${f}: invalid JSON: Unexpected token '}', "{"http": tru}" is not valid JSON`],
    ['.json', '[1]', f => `config file ${f}: the top level must be a table (object) of options`],
    ['.json', '{"port": null}', f => `config file ${f}: invalid port: expected an integer from 0 to 65535, got null`],
    ['.yaml', 'port: 1\n', f => `config file ${f}: unknown extension ".yaml" (use .toml or .json)`]
  ]
  for (const [ext, text, message] of badFiles) {
    it(`${ext} ${JSON.stringify(text)} → ${message('F')}`, () => {
      const f = file(ext, text)
      assert.equal(configError(() => readConfigFile(f)).message, message(f))
    })
  }

  it('a missing or unreadable file names it', () => {
    const missing = join(dir, 'missing.toml')
    assert.equal(configError(() => readConfigFile(missing)).message, `config file ${missing}: ENOENT: no such file or directory, open '${missing}'`)
    if (process.getuid?.() !== 0) {
      const f = file('.toml', 'port = 1\n')
      chmodSync(f, 0)
      assert.match(configError(() => readConfigFile(f)).message, /EACCES/)
    }
  })
})

describe('layers', () => {
  it('file < environment < flags', () => {
    const f = file('.toml', 'port = 1\ninterval = 2000\nmaxNumwant = 3\nlogLevel = "debug"\n')
    const r = loadConfig(['--config', f, '-p', '5'], { BITTORRENT_TRACKER_PORT: '4', BITTORRENT_TRACKER_INTERVAL: '3000' })
    assert.equal(r.file, f)
    assert.deepEqual([r.config.port, r.config.interval, r.config.maxNumwant, r.config.logLevel], [5, 3000, 3, 'debug'])
    // -q on the command line beats the file's level.
    assert.equal(loadConfig(['--config', f, '-q']).config.logLevel, 'error')
  })

  it('BITTORRENT_TRACKER_CONFIG names the file; --config wins over it', () => {
    const a = file('.toml', 'port = 11\n')
    const b = file('.json', '{"port": 12}')
    assert.equal(loadConfig([], { BITTORRENT_TRACKER_CONFIG: a }).config.port, 11)
    assert.equal(loadConfig(['--config', b], { BITTORRENT_TRACKER_CONFIG: a }).config.port, 12)
  })

  it('naming a transport on the command line starts only those, whatever the file says', () => {
    const f = file('.toml', 'http = true\nudp = true\nws = true\n')
    const c = loadConfig(['--config', f, '--udp']).config
    assert.deepEqual([c.http, c.udp, c.ws], [false, true, false])
    const g = file('.toml', 'ws = false\n')
    const d = loadConfig(['--config', g]).config
    assert.deepEqual([d.http, d.udp, d.ws], [true, true, false])
  })

  it('relative list paths: from the file\'s directory in a file, from the working directory elsewhere', () => {
    const f = file('.toml', 'allowlist = "lists/allow.txt"\n')
    assert.equal(loadConfig(['--config', f]).config.allowlist, join(dir, 'lists/allow.txt'))
    assert.equal(loadConfig(['--allowlist', 'x.txt']).config.allowlist, join(process.cwd(), 'x.txt'))
    assert.equal(loadConfig([], { BITTORRENT_TRACKER_DENYLIST: 'y.txt' }).config.denylist, join(process.cwd(), 'y.txt'))
  })

  it('allowlist with denylist, or no transport, is an error', () => {
    const f = file('.toml', 'allowlist = "a.txt"\n')
    assert.equal(configError(() => loadConfig(['--config', f, '--denylist', 'b.txt'])).message, 'allowlist and denylist are mutually exclusive')
    const g = file('.json', '{"http": false, "udp": false, "ws": false}')
    assert.equal(configError(() => loadConfig(['--config', g])).message, 'no transport enabled: at least one of http, udp, ws must be true')
  })

  it('--print-config output reads back as the same configuration (TOML and JSON), the secret redacted', () => {
    const c = loadConfig(['-p', '77', '--client-deny', '-XL', '--udp-secret', 'cd'.repeat(16), '--allowlist', '/l.txt']).config
    const toml = parseToml(formatConfig(c, 'toml'))
    const json = JSON.parse(formatConfig(c, 'json')) as Record<string, unknown>
    for (const printed of [toml, json]) {
      assert.equal(printed.udpSecret, '(redacted)')
      delete printed.udpSecret
      const f = file('.json', JSON.stringify(printed))
      const again = loadConfig(['--config', f]).config
      assert.deepEqual({ ...again, udpSecret: 'cd'.repeat(16), config: undefined }, { ...c, printConfig: 'none' })
    }
    assert.deepEqual(Object.keys(json), ALL.filter(o => o.scope === 'file' && o.key !== 'udpSecret' && c[o.key] !== undefined).map(o => o.key))
  })
})

describe('workers', () => {
  it('a number, "auto", or 0 (taken as "auto"), from flags, the environment and files', () => {
    assert.equal(loadConfig(['--workers', '3']).config.workers, 3)
    assert.equal(loadConfig(['--workers', 'auto']).config.workers, 'auto')
    assert.equal(loadConfig(['--workers=0']).config.workers, 'auto')
    assert.equal(loadConfig([], { BITTORRENT_TRACKER_WORKERS: 'auto' }).config.workers, 'auto')
    assert.equal(loadConfig(['--config', file('.toml', 'workers = "auto"\n')]).config.workers, 'auto')
    assert.equal(loadConfig(['--config', file('.json', '{"workers": 4}')]).config.workers, 4)
    assert.equal(configError(() => loadConfig(['--config', file('.json', '{"workers": "four"}')])).message.includes('workers'), true)
    assert.equal(configError(() => loadConfig(['--workers', '1025'])).message, 'invalid workers (1 to 1024, or auto): 1025')
  })

  it('auto is one per core, or 1 with the reason when an option needs one process', () => {
    assert.deepEqual(resolveWorkers(loadConfig(['--workers', 'auto']).config), { count: availableParallelism() })
    assert.deepEqual(resolveWorkers(loadConfig([]).config), { count: 1 })
    assert.deepEqual(resolveWorkers(loadConfig(['--workers', '3']).config), { count: 3 })
    assert.deepEqual(resolveWorkers(loadConfig(['--workers', 'auto', '--state-file', '/s']).config), { count: 1, reason: 'stateFile needs one process' })
    assert.deepEqual(resolveWorkers(loadConfig(['--workers', 'auto', '--redis', 'redis://127.0.0.1:1', '--private']).config),
      { count: 1, reason: 'redis, private need one process' })
    // Access lists do not: the main thread hands every worker the same list.
    assert.deepEqual(resolveWorkers(loadConfig(['--workers', 'auto', '--denylist', '/d', '--client-deny', '-XX']).config), { count: availableParallelism() })
  })

  it('an explicit count above 1 with an option that needs one process is refused; 1 is fine', () => {
    assert.equal(configError(() => loadConfig(['--workers', '2', '--state-file', '/s'])).message, 'stateFile needs a single worker (--workers 1)')
    assert.equal(configError(() => loadConfig(['--workers', '2', '--redis', 'redis://127.0.0.1:1'])).message, 'redis needs a single worker (--workers 1)')
    assert.equal(loadConfig(['--workers', '1', '--private']).config.workers, 1)
    assert.equal(loadConfig(['--workers', '2', '--allowlist', '/a', '--client-allow', '-qB']).config.workers, 2)
  })
})
