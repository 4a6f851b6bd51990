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
        --udp-backend [string]    udp I/O: auto, native (batched recvmmsg/sendmmsg
                                  addon) or dgram (node:dgram) [default: auto]
        --trust-proxy             trust 'x-forwarded-for' header from reverse proxy
        --interval                client announce interval (ms) [default: 600000]
        --http                    enable http server
        --udp                     enable udp server
        --ws                      enable websocket server
        --stats                   enable web-based statistics [default: true]
        --no-stats                disable web-based statistics
        --workers [number]        worker threads sharing the port; 0: one per core [default: 0]
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
  udpBackend: 'auto' | 'native' | 'dgram'
  trustProxy: boolean
  interval?: number
  http: boolean
  udp: boolean
  ws: boolean
  stats: boolean
  /** Worker threads; undefined or 0: one per core, 1: the single-threaded server. */
  workers?: number
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
  '-q': 'quiet',
  '--quiet': 'quiet',
  '-s': 'silent',
  '--silent': 'silent',
  '-v': 'version',
  '--version': 'version',
  '-h': 'help',
  '--help': 'help'
}

/** Beyond this many threads a typo is likelier than a machine that size. */
const MAX_WORKERS = 1024

const VALUES = new Set(['-p', '--port', '--interval', '--http-hostname', '--udp-hostname', '--udp6-hostname', '--udp-backend', '--workers'])

export function parseArgs (argv: readonly string[]): ParseResult {
  const o: CliOptions = {
    port: 8000, udpBackend: 'auto', trustProxy: false, http: false, udp: false, ws: false, stats: true,
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
    } else if (arg === '--workers') {
      const n = Number(value)
      if (value.trim() === '' || !Number.isInteger(n) || n < 0 || n > MAX_WORKERS) return { ok: false, error: `invalid workers (0 to ${MAX_WORKERS}): ${value}` }
      o.workers = n
    } else if (arg === '--http-hostname') o.httpHostname = value
    else if (arg === '--udp-hostname') o.udpHostname = value
    else if (arg === '--udp-backend') {
      if (value !== 'auto' && value !== 'native' && value !== 'dgram') return { ok: false, error: `invalid udp backend (auto, native or dgram): ${value}` }
      o.udpBackend = value
    }
    else o.udp6Hostname = value
  }
  if (o.silent) o.quiet = true
  if (!o.http && !o.udp && !o.ws) o.http = o.udp = o.ws = true
  return { ok: true, options: o }
}
