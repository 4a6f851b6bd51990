/** Command-line flags of the seed's `bittorrent-tracker --help`, plus hostnames, `--no-stats`, TLS and abuse controls. */
import {
  CLI_INTERVAL_JITTER, CLI_RATE_LIMIT_HTTP, CLI_RATE_LIMIT_UDP, CLI_RATE_LIMIT_WS, MAX_INTERVAL_JITTER, UDP_BAD_ID_MAX
} from '../constants.js'

export const HELP = `  bittorrent-tracker - Start a bittorrent tracker server

  Usage:
    bittorrent-tracker [OPTIONS]

  If no --http, --udp, or --ws option is supplied, all tracker types will be started.

  Options:
    -p, --port [number]           change the port [default: 8000]
        --http-hostname [string]  change the http server hostname [default: '::']
        --udp-hostname [string]   change the udp hostname [default: '0.0.0.0']
        --udp6-hostname [string]  change the udp6 hostname [default: '::']
        --trust-proxy             trust 'x-forwarded-for' header from reverse proxy
        --interval                client announce interval (ms) [default: 600000]
        --http                    enable http server
        --udp                     enable udp server
        --ws                      enable websocket server
        --stats                   enable web-based statistics [default: true]
        --no-stats                disable web-based statistics
        --cert [file]             serve HTTPS and WSS with this PEM certificate (chain);
                                  SIGHUP reloads it and the key
        --key [file]              the certificate's PEM private key
        --trust-proxy-from [list] trust 'x-forwarded-for' only from these proxies
                                  (comma-separated addresses or CIDR ranges)
        --rate-limit-http [rate]  per-address HTTP request rate, N/s or N/s:BURST, or off
                                  [default: ${limitText(CLI_RATE_LIMIT_HTTP)}]
        --rate-limit-udp [rate]   per-address UDP packet rate [default: ${limitText(CLI_RATE_LIMIT_UDP)}]
        --rate-limit-ws [rate]    per-address WebSocket message rate [default: ${limitText(CLI_RATE_LIMIT_WS)}]
        --no-rate-limit           no rate limits and no UDP bad-id bans
        --udp-bad-id-limit [n]    ignore a UDP address for a while after n bad connection
                                  ids in a minute; 0: never [default: ${UDP_BAD_ID_MAX}]
        --interval-jitter [pct]   random spread of the announce interval, percent
                                  [default: ${CLI_INTERVAL_JITTER * 100}]
        --full-scrape             answer scrapes without info_hash (all torrents)
    -q, --quiet                   only show error output
    -s, --silent                  show no output
    -v, --version                 print the current version
    -h, --help                    show this help

  Please report bugs!  https://github.com/feross/bittorrent-tracker/issues
`

/** `{ rate, burst }` as the Server's `rateLimit` takes it, or false for no limit. */
export type CliRateLimit = { rate: number, burst: number } | false

export interface CliOptions {
  port: number
  httpHostname?: string
  udpHostname?: string
  udp6Hostname?: string
  trustProxy: boolean
  interval?: number
  http: boolean
  udp: boolean
  ws: boolean
  stats: boolean
  quiet: boolean
  silent: boolean
  version: boolean
  help: boolean
  certFile?: string
  keyFile?: string
  /** Proxies trusted for X-Forwarded-For (implies trustProxy). */
  trustProxyFrom?: string[]
  rateLimit: { http: CliRateLimit, udp: CliRateLimit, ws: CliRateLimit }
  /** Bad UDP connection ids per minute before a ban; 0: no bans. */
  udpBadIdLimit: number
  /** Fraction (0.1 = ±10%). */
  intervalJitter: number
  fullScrape: boolean
}

export type ParseResult = { ok: true, options: CliOptions } | { ok: false, error: string }

const BOOLEANS: Record<string, keyof CliOptions> = {
  '--trust-proxy': 'trustProxy',
  '--http': 'http',
  '--udp': 'udp',
  '--ws': 'ws',
  '--stats': 'stats',
  '-q': 'quiet',
  '--quiet': 'quiet',
  '-s': 'silent',
  '--silent': 'silent',
  '-v': 'version',
  '--version': 'version',
  '-h': 'help',
  '--help': 'help',
  '--full-scrape': 'fullScrape'
}

const VALUES = new Set([
  '-p', '--port', '--interval', '--http-hostname', '--udp-hostname', '--udp6-hostname', '--cert', '--key',
  '--trust-proxy-from', '--rate-limit-http', '--rate-limit-udp', '--rate-limit-ws', '--udp-bad-id-limit', '--interval-jitter'
])

function limitText (l: readonly [number, number]): string {
  return `${l[0]}/s:${l[1]}`
}

/** `N/s` (burst: 10 × N), `N/s:BURST`, or `off`/`0`. undefined when malformed. */
export function parseRateLimit (text: string): CliRateLimit | undefined {
  if (text === 'off' || text === '0') return false
  const m = /^(\d+(?:\.\d+)?)\/s(?::(\d+))?$/.exec(text)
  if (m === null) return undefined
  const rate = Number(m[1])
  const burst = m[2] === undefined ? Math.max(1, Math.ceil(rate * 10)) : Number(m[2])
  if (!(rate > 0) || !(burst >= 1) || !Number.isFinite(rate)) return undefined
  return { rate, burst }
}

export function parseArgs (argv: readonly string[]): ParseResult {
  const o: CliOptions = {
    port: 8000, trustProxy: false, http: false, udp: false, ws: false, stats: true,
    quiet: false, silent: false, version: false, help: false,
    rateLimit: {
      http: { rate: CLI_RATE_LIMIT_HTTP[0], burst: CLI_RATE_LIMIT_HTTP[1] },
      udp: { rate: CLI_RATE_LIMIT_UDP[0], burst: CLI_RATE_LIMIT_UDP[1] },
      ws: { rate: CLI_RATE_LIMIT_WS[0], burst: CLI_RATE_LIMIT_WS[1] }
    },
    udpBadIdLimit: UDP_BAD_ID_MAX,
    intervalJitter: CLI_INTERVAL_JITTER,
    fullScrape: false
  }
  for (let i = 0; i < argv.length; i++) {
    let arg = argv[i]
    let value: string | undefined
    const eq = arg.indexOf('=')
    if (arg.startsWith('--') && eq !== -1) { value = arg.slice(eq + 1); arg = arg.slice(0, eq) }
    if (arg === '--no-stats') { o.stats = false; continue }
    if (arg === '--no-rate-limit' && value === undefined) {
      o.rateLimit = { http: false, udp: false, ws: false }
      o.udpBadIdLimit = 0
      continue
    }
    const flag = BOOLEANS[arg]
    if (flag !== undefined && value === undefined) { (o as unknown as Record<string, unknown>)[flag] = true; continue }
    if (!VALUES.has(arg)) return { ok: false, error: `unknown option: ${argv[i]}` }
    if (value === undefined) {
      value = argv[++i]
      if (value === undefined) return { ok: false, error: `${arg} needs a value` }
    }
    if (arg === '-p' || arg === '--port') {
      const port = Number(value)
      if (!Number.isInteger(port) || port < 0 || port > 65535) return { ok: false, error: `invalid port: ${value}` }
      o.port = port
    } else if (arg === '--interval') {
      const ms = Number(value)
      if (!Number.isInteger(ms) || ms < 1000) return { ok: false, error: `invalid interval (ms, at least 1000): ${value}` }
      o.interval = ms
    } else if (arg === '--cert') o.certFile = value
    else if (arg === '--key') o.keyFile = value
    else if (arg === '--trust-proxy-from') {
      const list = value.split(',').map(x => x.trim()).filter(x => x !== '')
      if (list.length === 0) return { ok: false, error: `--trust-proxy-from needs addresses: ${value}` }
      o.trustProxyFrom = list
    } else if (arg.startsWith('--rate-limit-')) {
      const l = parseRateLimit(value)
      if (l === undefined) return { ok: false, error: `invalid ${arg} (N/s, N/s:BURST or off): ${value}` }
      o.rateLimit[arg.slice('--rate-limit-'.length) as 'http' | 'udp' | 'ws'] = l
    } else if (arg === '--udp-bad-id-limit') {
      const n = Number(value)
      if (!Number.isInteger(n) || n < 0) return { ok: false, error: `invalid --udp-bad-id-limit (a count, 0 for none): ${value}` }
      o.udpBadIdLimit = n
    } else if (arg === '--interval-jitter') {
      const pct = Number(value)
      if (value.trim() === '' || !(pct >= 0 && pct <= MAX_INTERVAL_JITTER * 100)) {
        return { ok: false, error: `invalid --interval-jitter (percent, 0 to ${MAX_INTERVAL_JITTER * 100}): ${value}` }
      }
      o.intervalJitter = pct / 100
    } else if (arg === '--http-hostname') o.httpHostname = value
    else if (arg === '--udp-hostname') o.udpHostname = value
    else o.udp6Hostname = value
  }
  if ((o.certFile === undefined) !== (o.keyFile === undefined)) return { ok: false, error: '--cert and --key go together' }
  if (o.silent) o.quiet = true
  if (!o.http && !o.udp && !o.ws) o.http = o.udp = o.ws = true
  return { ok: true, options: o }
}
