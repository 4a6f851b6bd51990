/** Command-line flags of the seed's `bittorrent-tracker --help`, plus hostnames and `--no-stats`. */

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
        --private                 private tracker: announce/scrape need a passkey in the URL
                                  (http://host/announce/KEY, udp://host/announce/KEY, ws://host/KEY)
        --keys-file [path]        passkeys, one per line (16-64 chars A-Z a-z 0-9; needs --private)
        --admin-token [string]    enable the admin API (/admin/keys) with this bearer token
                                  (needs --private)
        --state-file [path]       keep swarms, download counts and accounting in this file
                                  across restarts (saved periodically and on shutdown)
        --state-interval [ms]     how often the state file is saved [default: 60000]
    -q, --quiet                   only show error output
    -s, --silent                  show no output
    -v, --version                 print the current version
    -h, --help                    show this help

  Please report bugs!  https://github.com/feross/bittorrent-tracker/issues
`

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
  private: boolean
  keysFile?: string
  adminToken?: string
  stateFile?: string
  stateInterval?: number
  quiet: boolean
  silent: boolean
  version: boolean
  help: boolean
}

export type ParseResult = { ok: true, options: CliOptions } | { ok: false, error: string }

const BOOLEANS: Record<string, keyof CliOptions> = {
  '--trust-proxy': 'trustProxy',
  '--http': 'http',
  '--udp': 'udp',
  '--ws': 'ws',
  '--stats': 'stats',
  '--private': 'private',
  '-q': 'quiet',
  '--quiet': 'quiet',
  '-s': 'silent',
  '--silent': 'silent',
  '-v': 'version',
  '--version': 'version',
  '-h': 'help',
  '--help': 'help'
}

const VALUES = new Set([
  '-p', '--port', '--interval', '--http-hostname', '--udp-hostname', '--udp6-hostname',
  '--keys-file', '--admin-token', '--state-file', '--state-interval'
])

export function parseArgs (argv: readonly string[]): ParseResult {
  const o: CliOptions = {
    port: 8000, trustProxy: false, http: false, udp: false, ws: false, stats: true, private: false,
    quiet: false, silent: false, version: false, help: false
  }
  for (let i = 0; i < argv.length; i++) {
    let arg = argv[i]
    let value: string | undefined
    const eq = arg.indexOf('=')
    if (arg.startsWith('--') && eq !== -1) { value = arg.slice(eq + 1); arg = arg.slice(0, eq) }
    if (arg === '--no-stats') { o.stats = false; continue }
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
    } else if (arg === '--state-interval') {
      const ms = Number(value)
      if (!Number.isInteger(ms) || ms < 100) return { ok: false, error: `invalid state interval (ms, at least 100): ${value}` }
      o.stateInterval = ms
    } else if (arg === '--keys-file' || arg === '--admin-token' || arg === '--state-file') {
      if (value === '') return { ok: false, error: `${arg} needs a value` }
      if (arg === '--keys-file') o.keysFile = value
      else if (arg === '--admin-token') o.adminToken = value
      else o.stateFile = value
    } else if (arg === '--http-hostname') o.httpHostname = value
    else if (arg === '--udp-hostname') o.udpHostname = value
    else o.udp6Hostname = value
  }
  if (!o.private && o.keysFile !== undefined) return { ok: false, error: '--keys-file needs --private' }
  if (!o.private && o.adminToken !== undefined) return { ok: false, error: '--admin-token needs --private' }
  if (o.silent) o.quiet = true
  if (!o.http && !o.udp && !o.ws) o.http = o.udp = o.ws = true
  return { ok: true, options: o }
}
