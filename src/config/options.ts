/**
 * THE table of tracker options. The command-line parser, the environment reader, the config-file
 * validator, `--print-config`, the `--help` text and docs/configuration.md all derive from it.
 *
 * To add an option, add ONE entry to `OPTIONS` with a builder below (`bool`, `int`, `str`,
 * `optStr`, `path`, `hex`, `oneOf`, `list`), e.g.
 *
 *     int('rateLimit', { flags: ['--rate-limit'], arg: '[number]', min: 0, default: 0,
 *       help: 'announces per second per IP, 0 for none [default: 0]',
 *       doc: 'Most announces per second from one IP address; 0 turns the limit off.' }),
 *
 * then read `config.rateLimit` where the CLI builds the Server (src/cli/bin.ts) and run
 * `npm run docs:config` to regenerate docs/configuration.md (test/config/docs.test.ts fails
 * while it is stale). Nothing else: the flag, the variable, the file key, the checks, the
 * `--help` line and `--print-config` follow from the entry. If no builder fits (a nested value,
 * a duration with units), add one next to the others: it only needs `expects`, `fromValue`
 * (file values) and `fromText` (flag and environment text). Its file key is the entry's key (`rateLimit = 5` in TOML,
 * `"rateLimit": 5` in JSON), its environment variable is `BITTORRENT_TRACKER_` + the key in
 * UPPER_SNAKE_CASE (`BITTORRENT_TRACKER_RATE_LIMIT`), its flags are the ones listed.
 *
 * Entry fields: `key` (file key, camelCase), `flags` (CLI; the first `--long` one names it in
 * errors), `negation` (boolean: a flag that sets false), `presets` (flags that set a fixed
 * value, e.g. `-q` → logLevel `error`), `scope` (`file`: everywhere; `cli`: command line only;
 * `cli+env`: not in a file), `default`, `help` (one `--help` line), `doc` (docs table), `secret`
 * (redacted by --print-config), `group: 'transport'` (naming any of these flags on the command
 * line turns the others of the group off, as the seed's `--http`/`--udp`/`--ws` do), plus the
 * builder's checks (min/max, values, minBytes).
 */
import {
  CLI_INTERVAL_JITTER, CLI_RATE_LIMIT_HTTP, CLI_RATE_LIMIT_UDP, CLI_RATE_LIMIT_WS, ID_LENGTH, MAX_FULL_SCRAPE, MAX_INTERVAL_JITTER,
  MAX_NUMWANT, STATE_SAVE_INTERVAL_MS, UDP_BAD_ID_MAX, WS_MAX_OFFERS, WS_MAX_SWARMS_PER_SOCKET
} from '../constants.js'

export type Scope = 'file' | 'cli' | 'cli+env'

export interface OptionSpec<K extends string = string, T = unknown> {
  readonly key: K
  readonly kind: 'boolean' | 'integer' | 'string' | 'path' | 'hex' | 'enum' | 'list'
  readonly flags: readonly string[]
  readonly arg?: string
  readonly negation?: string
  readonly presets?: Readonly<Record<string, T>>
  /** Help lines of the presets / negation, in the order printed: [flags text, help]. */
  readonly extraHelp?: ReadonlyArray<readonly [string, string]>
  readonly scope: Scope
  readonly default: T
  readonly help: string
  readonly doc: string
  readonly secret?: boolean
  readonly group?: 'transport'
  /** `--flag` alone is allowed and means this value (only `--flag=value` then takes one). */
  readonly bareValue?: T
  /** Name of the value in a command-line error: "invalid <label>: <value>". */
  readonly label?: string
  /** What a valid value is, for error messages and the docs ("an integer from 0 to 65535"). */
  readonly expects: string
  /** A value from a file (already typed by TOML/JSON): the value, or undefined if invalid. */
  readonly fromValue: (v: unknown) => T | undefined
  /** A value from the command line or the environment (text), or undefined if invalid. */
  readonly fromText: (s: string) => T | undefined
}

interface Common<T> {
  flags?: readonly string[]
  arg?: string
  scope?: Scope
  help: string
  doc: string
  secret?: boolean
  label?: string
  extraHelp?: ReadonlyArray<readonly [string, string]>
  presets?: Readonly<Record<string, T>>
  bareValue?: T
}

function spec<K extends string, T> (key: K, kind: OptionSpec['kind'], c: Common<T>, rest: Pick<OptionSpec<K, T>, 'default' | 'expects' | 'fromValue' | 'fromText'> & Partial<OptionSpec<K, T>>): OptionSpec<K, T> {
  return { key, kind, flags: c.flags ?? [], scope: c.scope ?? 'file', ...c, ...rest }
}

export function bool<K extends string> (key: K, c: Common<boolean> & { default: boolean, negation?: string, group?: 'transport' }): OptionSpec<K, boolean> {
  const parse = (s: string): boolean | undefined => /^(true|1|yes|on)$/i.test(s) ? true : /^(false|0|no|off)$/i.test(s) ? false : undefined
  return spec(key, 'boolean', c, {
    default: c.default,
    negation: c.negation,
    group: c.group,
    expects: 'true or false',
    fromValue: v => typeof v === 'boolean' ? v : undefined,
    fromText: parse
  })
}

export function int<K extends string> (key: K, c: Common<number> & { default: number, min: number, max?: number }): OptionSpec<K, number> {
  const max = c.max ?? Number.MAX_SAFE_INTEGER
  const ok = (n: number): number | undefined => Number.isSafeInteger(n) && n >= c.min && n <= max ? n : undefined
  return spec(key, 'integer', c, {
    default: c.default,
    expects: c.max === undefined ? `an integer, at least ${c.min}` : `an integer from ${c.min} to ${max}`,
    // smol-toml gives integers beyond 2^53 as bigint: out of range anyway.
    fromValue: v => typeof v === 'number' ? ok(v) : undefined,
    fromText: s => /^\s*-?\d+\s*$/.test(s) ? ok(Number(s)) : undefined
  })
}

export function str<K extends string> (key: K, c: Common<string> & { default: string }): OptionSpec<K, string> {
  const ok = (v: unknown): string | undefined => typeof v === 'string' && v !== '' ? v : undefined
  return spec(key, 'string', c, { default: c.default, expects: 'a non-empty string', fromValue: ok, fromText: ok })
}

/** A string with no default (unset unless given). */
export function optStr<K extends string> (key: K, c: Common<string | undefined>): OptionSpec<K, string | undefined> {
  const ok = (v: unknown): string | undefined => typeof v === 'string' && v !== '' ? v : undefined
  return spec(key, 'string', c, { default: undefined, expects: 'a non-empty string', fromValue: ok, fromText: ok })
}

/** A file path; relative paths in a config file are taken from the file's directory. */
export function path<K extends string> (key: K, c: Common<string | undefined>): OptionSpec<K, string | undefined> {
  const ok = (v: unknown): string | undefined => typeof v === 'string' && v !== '' ? v : undefined
  return spec(key, 'path', c, { default: undefined, expects: 'a file path', fromValue: ok, fromText: ok })
}

export function hex<K extends string> (key: K, c: Common<string | undefined> & { minBytes: number }): OptionSpec<K, string | undefined> {
  const re = new RegExp(`^(?:[0-9a-fA-F]{2}){${c.minBytes},}$`)
  const ok = (v: unknown): string | undefined => typeof v === 'string' && re.test(v) ? v.toLowerCase() : undefined
  return spec(key, 'hex', c, { default: undefined, expects: `hex, at least ${c.minBytes} bytes (${2 * c.minBytes} characters)`, fromValue: ok, fromText: ok })
}

export function oneOf<K extends string, V extends string> (key: K, values: readonly V[], c: Common<V> & { default: V }): OptionSpec<K, V> {
  const ok = (v: unknown): V | undefined => typeof v === 'string' && (values as readonly string[]).includes(v) ? v as V : undefined
  return spec(key, 'enum', c, { default: c.default, expects: `one of ${values.join(', ')}`, fromValue: ok, fromText: ok })
}

/** A thread count: an integer from 1 to `max`, or `auto` (0 is taken as `auto`). */
export function threadCount<K extends string> (key: K, c: Common<number | 'auto'> & { default: number | 'auto', max: number }): OptionSpec<K, number | 'auto'> {
  const ok = (n: number): number | 'auto' | undefined => Number.isSafeInteger(n) && n >= 0 && n <= c.max ? (n === 0 ? 'auto' : n) : undefined
  return spec(key, 'integer', c, {
    default: c.default,
    expects: `an integer from 1 to ${c.max}, or "auto"`,
    fromValue: v => v === 'auto' ? 'auto' : typeof v === 'number' ? ok(v) : undefined,
    fromText: s => s.trim() === 'auto' ? 'auto' : /^\s*\d+\s*$/.test(s) ? ok(Number(s)) : undefined
  })
}

/** A list of strings: an array in a file, comma-separated (or the flag repeated) on the command line and in the environment. */
export function list<K extends string> (key: K, c: Common<string[]> & { maxLength: number }): OptionSpec<K, string[]> {
  const item = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= c.maxLength
  return spec(key, 'list', c, {
    default: [],
    expects: `a list of strings of 1 to ${c.maxLength} characters`,
    fromValue: v => Array.isArray(v) && v.every(item) ? [...v] as string[] : undefined,
    fromText: s => {
      const parts = s.split(',').map(p => p.trim())
      return parts.every(item) ? parts : undefined
    }
  })
}

/** `{ rate, burst }` as the Server's `rateLimit` takes it, or false for no limit. */
export type RateLimitValue = { rate: number, burst: number } | false

/** `N/s` (burst: 10 × N), `N/s:BURST`, or `off`/`0`. undefined when malformed. */
export function parseRateLimit (text: string): RateLimitValue | undefined {
  if (text === 'off' || text === '0') return false
  const m = /^(\d+(?:\.\d+)?)\/s(?::(\d+))?$/.exec(text)
  if (m === null) return undefined
  const rate = Number(m[1])
  const burst = m[2] === undefined ? Math.max(1, Math.ceil(rate * 10)) : Number(m[2])
  if (!(rate > 0) || !(burst >= 1) || !Number.isFinite(rate)) return undefined
  return { rate, burst }
}

/** A per-address rate, kept as its text (`N/s`, `N/s:BURST` or `off`); `parseRateLimit` reads it. */
export function rate<K extends string> (key: K, c: Common<string> & { default: string }): OptionSpec<K, string> {
  const ok = (v: unknown): string | undefined => typeof v === 'string' && parseRateLimit(v.trim()) !== undefined ? v.trim() : undefined
  return spec(key, 'string', c, { default: c.default, expects: 'N/s, N/s:BURST or off', fromValue: ok, fromText: ok })
}

/** A Redis URL (`redis://` or `rediss://`, host and optional port, db and credentials). */
export function redisUrl<K extends string> (key: K, c: Common<string | undefined>): OptionSpec<K, string | undefined> {
  const ok = (v: unknown): string | undefined => typeof v === 'string' && /^rediss?:\/\/\S+$/.test(v) ? v : undefined
  return spec(key, 'string', c, { default: undefined, expects: 'a redis:// URL', fromValue: ok, fromText: ok })
}

const rateText = (l: readonly [number, number]): string => `${l[0]}/s:${l[1]}`

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const
export type LogLevel = typeof LOG_LEVELS[number]

/** Every option, in `--help` order (the seed's options first, in the seed's order). */
export const OPTIONS = [
  int('port', {
    flags: ['-p', '--port'], arg: '[number]', min: 0, max: 65535, default: 8000, label: 'port',
    help: 'change the port [default: 8000]',
    doc: 'Port of every transport (HTTP, UDP, WebSocket); 0 picks a free one.'
  }),
  str('httpHostname', {
    flags: ['--http-hostname'], arg: '[string]', default: '::',
    help: "change the http server hostname [default: '::']",
    doc: 'Address the HTTP (and WebSocket) server binds.'
  }),
  str('udpHostname', {
    flags: ['--udp-hostname'], arg: '[string]', default: '0.0.0.0',
    help: "change the udp hostname [default: '0.0.0.0']",
    doc: 'Address the IPv4 UDP socket binds.'
  }),
  str('udp6Hostname', {
    flags: ['--udp6-hostname'], arg: '[string]', default: '::',
    help: "change the udp6 hostname [default: '::']",
    doc: 'Address the IPv6 UDP socket binds.'
  }),
  bool('trustProxy', {
    flags: ['--trust-proxy'], default: false,
    help: "trust 'x-forwarded-for' header from reverse proxy",
    doc: 'Take the client address from the last `X-Forwarded-For` entry (behind a reverse proxy only).'
  }),
  int('interval', {
    flags: ['--interval'], min: 1000, default: 600000, label: 'interval (ms, at least 1000)',
    help: 'client announce interval (ms) [default: 600000]',
    doc: 'Announce interval told to clients, in ms (WebSocket clients: a fifth of it).'
  }),
  bool('http', {
    flags: ['--http'], default: true, group: 'transport',
    help: 'enable http server',
    doc: 'Serve the HTTP tracker.'
  }),
  bool('udp', {
    flags: ['--udp'], default: true, group: 'transport',
    help: 'enable udp server',
    doc: 'Serve the UDP tracker (IPv4 and IPv6).'
  }),
  bool('ws', {
    flags: ['--ws'], default: true, group: 'transport',
    help: 'enable websocket server',
    doc: 'Serve the WebSocket (WebTorrent) tracker on the HTTP port.'
  }),
  bool('stats', {
    flags: ['--stats'], negation: '--no-stats', default: true,
    help: 'enable web-based statistics [default: true]',
    extraHelp: [['--no-stats', 'disable web-based statistics']],
    doc: 'Serve `/stats` and `/stats.json`.'
  }),
  bool('metrics', {
    flags: ['--metrics'], negation: '--no-metrics', default: true,
    help: 'serve Prometheus metrics at /metrics [default: true]',
    extraHelp: [['--no-metrics', 'disable /metrics']],
    doc: 'Serve Prometheus metrics at `/metrics` (requests by protocol, action and result, latency, swarm gauges, event-loop lag).'
  }),
  optStr('statsToken', {
    flags: ['--stats-token'], arg: '[string]', secret: true,
    help: 'require this token for /stats, /stats.json and /metrics (Bearer or ?token=)',
    doc: 'Token required for `/stats`, `/stats.json` and `/metrics` (`Authorization: Bearer TOKEN` or `?token=TOKEN`).'
  }),
  list('statsAllow', {
    flags: ['--stats-allow'], arg: '[cidr,...]', maxLength: 64,
    help: 'serve /stats, /stats.json and /metrics only to these address ranges (IPv4/IPv6 CIDR)',
    doc: 'Address ranges (IPv4/IPv6 CIDR) allowed to read `/stats`, `/stats.json` and `/metrics`; empty: everyone.'
  }),
  list('trustProxyFrom', {
    flags: ['--trust-proxy-from'], arg: '[list]', maxLength: 64,
    help: "trust 'x-forwarded-for' only from these proxies (addresses or CIDR ranges)",
    doc: 'Proxies (addresses or CIDR ranges) whose `X-Forwarded-For` is believed; implies `trustProxy`, limited to them.'
  }),
  path('cert', {
    flags: ['--cert'], arg: '[file]',
    help: 'serve HTTPS and WSS with this PEM certificate (chain); SIGHUP reloads it and the key',
    doc: 'PEM certificate (chain) file: the HTTP port serves HTTPS and WSS. Needs `key`. Re-read on SIGHUP.'
  }),
  path('key', {
    flags: ['--key'], arg: '[file]',
    help: "the certificate's PEM private key",
    doc: 'PEM private key file of `cert`.'
  }),
  rate('rateLimitHttp', {
    flags: ['--rate-limit-http'], arg: '[rate]', default: rateText(CLI_RATE_LIMIT_HTTP),
    help: `per-address HTTP request rate, N/s or N/s:BURST, or off [default: ${rateText(CLI_RATE_LIMIT_HTTP)}]`,
    doc: 'Per-address HTTP request rate (`N/s`, `N/s:BURST` or `off`); over it a client gets the failure reason `rate limited`. IPv6 counts per /64.'
  }),
  rate('rateLimitUdp', {
    flags: ['--rate-limit-udp'], arg: '[rate]', default: rateText(CLI_RATE_LIMIT_UDP),
    help: `per-address UDP packet rate [default: ${rateText(CLI_RATE_LIMIT_UDP)}]`,
    doc: 'Per-address UDP packet rate; over it packets are dropped without an answer (no amplification).'
  }),
  rate('rateLimitWs', {
    flags: ['--rate-limit-ws'], arg: '[rate]', default: rateText(CLI_RATE_LIMIT_WS),
    help: `per-address WebSocket message rate [default: ${rateText(CLI_RATE_LIMIT_WS)}]`,
    doc: 'Per-address WebSocket message (and upgrade) rate; over it a message gets the failure reason `rate limited`, an upgrade 429.'
  }),
  bool('rateLimit', {
    flags: ['--rate-limit'], negation: '--no-rate-limit', default: true,
    help: 'apply the rate limits and UDP bad-id bans [default: true]',
    extraHelp: [['--no-rate-limit', 'no rate limits and no UDP bad-id bans']],
    doc: 'Apply the per-address rate limits and UDP bad-connection-id bans; false turns all of them off.'
  }),
  int('udpBadIdLimit', {
    flags: ['--udp-bad-id-limit'], arg: '[n]', min: 0, default: UDP_BAD_ID_MAX, label: '--udp-bad-id-limit (a count, 0 for none)',
    help: `ignore a UDP address for a while after n bad connection ids in a minute; 0: never [default: ${UDP_BAD_ID_MAX}]`,
    doc: 'Bad UDP connection ids from one address within a minute before it is ignored for 10 minutes; 0 never bans.'
  }),
  int('intervalJitter', {
    flags: ['--interval-jitter'], arg: '[pct]', min: 0, max: MAX_INTERVAL_JITTER * 100, default: CLI_INTERVAL_JITTER * 100, label: '--interval-jitter (percent, 0 to 50)',
    help: `random spread of the announce interval, percent [default: ${CLI_INTERVAL_JITTER * 100}]`,
    doc: 'Random spread of the announce interval told to clients, in percent (spreads re-announces after a restart).'
  }),
  bool('fullScrape', {
    flags: ['--full-scrape'], default: false,
    help: 'answer scrapes without info_hash (all torrents, up to --full-scrape-limit)',
    doc: 'Answer a scrape without `info_hash` (lists every torrent, up to `fullScrapeLimit`). Off in the CLI: it is costly and lists what the tracker serves.'
  }),
  threadCount('workers', {
    flags: ['--workers'], arg: '[n|auto]', max: 1024, default: 1, label: 'workers (1 to 1024, or auto)',
    help: 'worker threads sharing the port, swarms sharded across them; auto: one per core [default: 1]',
    doc: 'Worker threads, each serving every transport on the same port, swarms sharded by info hash across them (SharedArrayBuffer rings; the kernel steers UDP by info hash). `auto` (or 0): one per core, but 1 when `redis`, `private` or `stateFile` is set (they need one process; the log says so); 1: the single-threaded server. An explicit number above 1 with those options is refused. Default 1: on 2 cores two workers still cost more CPU per HTTP/WebSocket response than one (see README).'
  }),
  oneOf('udpBackend', ['auto', 'native', 'dgram'] as const, {
    flags: ['--udp-backend'], arg: '[name]', default: 'auto',
    help: "UDP I/O: native (recvmmsg/sendmmsg addon), dgram, or auto [default: auto]",
    doc: 'UDP I/O: `native` batches datagrams with recvmmsg/sendmmsg through the addon built at install (Linux), `dgram` uses node:dgram, `auto` the addon when it is built. The start-up log says which runs.'
  }),
  bool('acceptClientIp', {
    flags: ['--accept-client-ip'], default: false,
    help: "honour the address a client claims (HTTP 'ip', UDP ip field)",
    doc: 'Use the address a client claims instead of the source address (lets anyone point a swarm at a third party).'
  }),
  int('maxNumwant', {
    flags: ['--max-numwant'], arg: '[number]', min: 1, default: MAX_NUMWANT,
    help: `most peers in one answer [default: ${MAX_NUMWANT}]`,
    doc: 'Most peers in one HTTP/WebSocket announce answer (UDP: at most 74 per family).'
  }),
  int('fullScrapeLimit', {
    flags: ['--full-scrape-limit'], arg: '[number]', min: 0, default: MAX_FULL_SCRAPE,
    help: `most torrents in a scrape without info_hash, 0 refuses [default: ${MAX_FULL_SCRAPE}]`,
    doc: 'Most torrents in a scrape without `info_hash`; 0 refuses such scrapes.'
  }),
  int('wsMaxOffers', {
    flags: ['--ws-max-offers'], arg: '[number]', min: 1, default: WS_MAX_OFFERS,
    help: `most offers relayed per WebSocket announce [default: ${WS_MAX_OFFERS}]`,
    doc: 'Most WebRTC offers relayed per WebSocket announce.'
  }),
  int('wsMaxSwarms', {
    flags: ['--ws-max-swarms'], arg: '[number]', min: 1, default: WS_MAX_SWARMS_PER_SOCKET,
    help: `most swarms one WebSocket may join [default: ${WS_MAX_SWARMS_PER_SOCKET}]`,
    doc: 'Most swarms one WebSocket connection may join.'
  }),
  hex('udpSecret', {
    flags: ['--udp-secret'], arg: '[hex]', minBytes: 16, secret: true,
    help: 'key of the UDP connection ids, to share between processes [default: random]',
    doc: 'Key of the UDP connection-id MAC; give several processes behind one address the same key. Unset: random per process.'
  }),
  redisUrl('redis', {
    flags: ['--redis'], arg: '[url]', secret: true,
    help: 'keep swarms in Redis, shared with other instances (redis://host:port)',
    doc: 'Redis URL: swarms live in Redis, shared by every instance pointed at it (give them the same `udpSecret`); WebSocket signals cross instances over Redis pub/sub.'
  }),
  path('allowlist', {
    flags: ['--allowlist'], arg: '[file]',
    help: 'serve only the info hashes listed in this file',
    doc: 'File of the only info hashes served (one per line, 40 hex or 32 base32 characters, `#` comments). Reloaded when it changes and on SIGHUP. Exclusive with `denylist`.'
  }),
  path('denylist', {
    flags: ['--denylist'], arg: '[file]',
    help: 'refuse the info hashes listed in this file',
    doc: 'File of info hashes refused (same format as `allowlist`). Reloaded when it changes and on SIGHUP.'
  }),
  list('clientAllow', {
    flags: ['--client-allow'], arg: '[prefixes]', maxLength: ID_LENGTH,
    help: 'serve only clients whose peer id starts with one of these (comma-separated)',
    doc: 'Peer id prefixes (e.g. `-qB`, `-TR`) of the only clients allowed to announce.'
  }),
  list('clientDeny', {
    flags: ['--client-deny'], arg: '[prefixes]', maxLength: ID_LENGTH,
    help: 'refuse clients whose peer id starts with one of these (comma-separated)',
    doc: 'Peer id prefixes of clients refused on announce.'
  }),
  bool('private', {
    flags: ['--private'], default: false,
    help: 'private tracker: announce/scrape need a passkey in the URL (/announce/KEY, ws://host/KEY)',
    doc: 'Private tracker mode: HTTP `/announce/<key>` and `/scrape/<key>`, UDP BEP 41 URL data `/announce/<key>`, WebSocket `ws://host/<key>`; unknown keys are refused. Per-key upload/download accounting.'
  }),
  path('keysFile', {
    flags: ['--keys-file'], arg: '[file]',
    help: 'passkeys, one per line (16-64 characters A-Z a-z 0-9; needs --private)',
    doc: 'File of passkeys, one per line (`#` comments). Needs `private`.'
  }),
  optStr('adminToken', {
    flags: ['--admin-token'], arg: '[string]', secret: true,
    help: 'enable the admin API (/admin/keys) with this bearer token (needs --private)',
    doc: 'Bearer token of the admin API (`/admin/keys`: add, remove, list passkeys and their accounting). Unset: the API is off. Needs `private`.'
  }),
  path('stateFile', {
    flags: ['--state-file'], arg: '[file]',
    help: 'keep swarms, download counts and accounting in this file across restarts',
    doc: 'State file: swarms, `downloaded` counts and private accounting, saved periodically and on shutdown (write, fsync, rename) and restored at start. WebSocket peers are not saved.'
  }),
  int('stateInterval', {
    flags: ['--state-interval'], arg: '[ms]', min: 100, default: STATE_SAVE_INTERVAL_MS, label: 'state interval (ms, at least 100)',
    help: `how often the state file is saved, ms [default: ${STATE_SAVE_INTERVAL_MS}]`,
    doc: 'How often the state file is written while running, in ms.'
  }),
  oneOf('logLevel', LOG_LEVELS, {
    flags: ['--log-level'], arg: '[level]', default: 'info',
    presets: { '-q': 'error', '--quiet': 'error', '-s': 'silent', '--silent': 'silent' },
    help: `log level: ${LOG_LEVELS.join(', ')} [default: info]`,
    extraHelp: [['-q, --quiet', 'only show error output'], ['-s, --silent', 'show no output']],
    doc: 'Least severe log line written (JSON lines; `-q` is `error`, `-s` is `silent`).'
  }),
  path('config', {
    flags: ['--config'], arg: '[file]', scope: 'cli+env',
    help: 'read options from this TOML (.toml) or JSON (.json) file',
    doc: 'Configuration file, TOML or JSON by its extension. Not a file key.'
  }),
  oneOf('printConfig', ['none', 'toml', 'json'] as const, {
    flags: ['--print-config'], scope: 'cli', default: 'none', bareValue: 'toml',
    help: 'print the effective configuration (--print-config=json: as JSON) and exit',
    doc: 'Print the effective configuration (TOML, or JSON with `--print-config=json`) and exit.'
  }),
  bool('version', {
    flags: ['-v', '--version'], scope: 'cli', default: false,
    help: 'print the current version',
    doc: 'Print the version and exit.'
  }),
  bool('help', {
    flags: ['-h', '--help'], scope: 'cli', default: false,
    help: 'show this help',
    doc: 'Print the help and exit.'
  })
] as const

type Entry = typeof OPTIONS[number]
/** The effective configuration: one field per entry of OPTIONS. */
export type Config = { -readonly [E in Entry as E['key']]: E extends OptionSpec<string, infer T> ? T : never }
export type OptionKey = keyof Config

/** `BITTORRENT_TRACKER_` + the key in UPPER_SNAKE_CASE. */
export const ENV_PREFIX = 'BITTORRENT_TRACKER_'
export function envName (key: string): string {
  return ENV_PREFIX + key.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase()
}

/** The table with the element types widened, for code that walks every entry. */
export const ALL: ReadonlyArray<OptionSpec<OptionKey, unknown>> = OPTIONS as unknown as ReadonlyArray<OptionSpec<OptionKey, unknown>>
