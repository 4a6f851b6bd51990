/**
 * The effective configuration: defaults < config file < environment < command line, each layer
 * read and checked against the one table of src/config/options.ts.
 */
import { readFileSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { dirname, extname, resolve } from 'node:path'
import { parse as parseToml, stringify as stringifyToml, TomlError } from 'smol-toml'
import { ALL, ENV_PREFIX, envName } from './options.js'
import type { Config, OptionKey, OptionSpec } from './options.js'

/** A configuration that cannot be used; the CLI prints `message` and exits 2. */
export class ConfigError extends Error {
  /** Whether the usage text should follow (a bad command-line flag). */
  readonly usage: boolean
  constructor (message: string, usage = false) {
    super(message)
    this.name = 'ConfigError'
    this.usage = usage
  }
}

type Values = Partial<Record<OptionKey, unknown>>

const BY_FLAG = new Map<string, OptionSpec<OptionKey, unknown>>()
for (const o of ALL) for (const f of [...o.flags, ...(o.negation !== undefined ? [o.negation] : []), ...Object.keys(o.presets ?? {})]) BY_FLAG.set(f, o)
const BY_ENV = new Map(ALL.filter(o => o.scope !== 'cli').map(o => [envName(o.key), o]))
const FILE_KEYS = new Map(ALL.filter(o => o.scope === 'file').map(o => [o.key as string, o]))

function longFlag (o: OptionSpec): string {
  return o.flags.find(f => f.startsWith('--')) ?? o.flags[0] ?? o.key
}

/** Command-line flags → values (only the options named), or a ConfigError with usage. */
export function parseArgv (argv: readonly string[]): Values {
  const out: Values = {}
  for (let i = 0; i < argv.length; i++) {
    let arg = argv[i]
    let value: string | undefined
    const eq = arg.indexOf('=')
    if (arg.startsWith('--') && eq !== -1) { value = arg.slice(eq + 1); arg = arg.slice(0, eq) }
    const o = BY_FLAG.get(arg)
    if (o === undefined) throw new ConfigError(`unknown option: ${argv[i]}`, true)
    if (o.presets !== undefined && Object.hasOwn(o.presets, arg)) {
      if (value !== undefined) throw new ConfigError(`unknown option: ${argv[i]}`, true)
      out[o.key] = o.presets[arg]
      continue
    }
    if (o.kind === 'boolean') {
      // `--http=yes` is not a seed form: booleans are switches.
      if (value !== undefined) throw new ConfigError(`unknown option: ${argv[i]}`, true)
      out[o.key] = arg !== o.negation
      continue
    }
    if (value === undefined && o.bareValue !== undefined) { out[o.key] = o.bareValue; continue }
    if (value === undefined) {
      value = argv[++i]
      if (value === undefined) throw new ConfigError(`${arg} needs a value`, true)
    }
    const v = o.fromText(value)
    if (v === undefined) throw new ConfigError(`invalid ${o.label ?? `${longFlag(o).slice(2)} (${o.expects})`}: ${value}`, true)
    // A list flag given twice adds to the list.
    out[o.key] = o.kind === 'list' && Array.isArray(out[o.key]) ? [...out[o.key] as string[], ...v as string[]] : v
  }
  return out
}

/**
 * Variables with the prefix that are not options: `BITTORRENT_TRACKER_NATIVE=0` turns the UDP
 * addon off where it is loaded (src/server/native/loader.ts), for the library as for the CLI.
 */
const NOT_OPTIONS = new Set([`${ENV_PREFIX}NATIVE`])

/** `BITTORRENT_TRACKER_*` variables → values. An unknown one is an error (a typo must not pass silently). */
export function parseEnv (env: Readonly<Record<string, string | undefined>>): Values {
  const out: Values = {}
  for (const [name, text] of Object.entries(env)) {
    if (!name.startsWith(ENV_PREFIX) || text === undefined || NOT_OPTIONS.has(name)) continue
    const o = BY_ENV.get(name)
    if (o === undefined) throw new ConfigError(`unknown environment variable ${name}`)
    const v = o.fromText(text)
    if (v === undefined) throw new ConfigError(`environment variable ${name}: invalid ${o.key}: expected ${o.expects}, got ${JSON.stringify(text)}`)
    out[o.key] = v
  }
  return out
}

/** Reads and checks a config file (TOML or JSON by extension). */
export function readConfigFile (file: string): Values {
  const ext = extname(file).toLowerCase()
  if (ext !== '.toml' && ext !== '.json') throw new ConfigError(`config file ${file}: unknown extension ${JSON.stringify(ext)} (use .toml or .json)`)
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    throw new ConfigError(`config file ${file}: ${(err as Error).message}`)
  }
  let doc: unknown
  if (ext === '.toml') {
    try {
      doc = parseToml(text)
    } catch (err) {
      if (err instanceof TomlError) throw new ConfigError(`config file ${file}, line ${err.line}, column ${err.column}: ${firstLine(err.message)}`)
      throw new ConfigError(`config file ${file}: ${(err as Error).message}`)
    }
  } else {
    try {
      doc = JSON.parse(text)
    } catch (err) {
      const pos = /position (\d+)/.exec((err as Error).message)
      const where = pos === null ? '' : `, line ${text.slice(0, Number(pos[1])).split('\n').length}`
      throw new ConfigError(`config file ${file}${where}: invalid JSON: ${(err as Error).message}`)
    }
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new ConfigError(`config file ${file}: the top level must be a table (object) of options`)
  const out: Values = {}
  for (const [key, raw] of Object.entries(doc)) {
    const o = FILE_KEYS.get(key)
    if (o === undefined) throw new ConfigError(`config file ${file}: unknown key ${JSON.stringify(key)}`)
    const v = o.fromValue(raw)
    if (v === undefined) throw new ConfigError(`config file ${file}: invalid ${key}: expected ${o.expects}, got ${describe(raw)}`)
    out[o.key] = o.kind === 'path' ? resolve(dirname(file), v as string) : v
  }
  return out
}

export interface LoadResult {
  config: Config
  /** Absolute path of the config file read, if any. */
  file: string | undefined
}

/**
 * The effective configuration from argv, the environment and the file they name (`--config`,
 * else `BITTORRENT_TRACKER_CONFIG`). `--help` and `--version` short-circuit: nothing else is read.
 */
export function loadConfig (argv: readonly string[], env: Readonly<Record<string, string | undefined>> = {}): LoadResult {
  const cli = parseArgv(argv)
  const defaults = Object.fromEntries(ALL.map(o => [o.key, o.default])) as Values
  if (cli.help === true || cli.version === true) return { config: { ...defaults, ...cli } as Config, file: undefined }
  const fromEnv = parseEnv(env)
  const named = (cli.config ?? fromEnv.config) as string | undefined
  const file = named === undefined ? undefined : resolve(named)
  const fromFile = file === undefined ? {} : readConfigFile(file)
  const v: Values = { ...defaults, ...fromFile, ...fromEnv, ...cli }
  for (const o of ALL) if (o.kind === 'path' && typeof v[o.key] === 'string' && (o.key in cli || o.key in fromEnv)) v[o.key] = resolve(v[o.key] as string)
  // The seed's rule: naming any of --http/--udp/--ws on the command line starts only those.
  const group = ALL.filter(o => o.group === 'transport')
  if (group.some(o => o.key in cli)) for (const o of group) v[o.key] = cli[o.key] === true
  const c = v as Config
  if (!c.http && !c.udp && !c.ws) throw new ConfigError('no transport enabled: at least one of http, udp, ws must be true')
  if (c.allowlist !== undefined && c.denylist !== undefined) throw new ConfigError('allowlist and denylist are mutually exclusive')
  if ((c.cert === undefined) !== (c.key === undefined)) throw new ConfigError('--cert and --key go together')
  if (c.workers !== 'auto' && c.workers > 1) {
    const single = singleProcessOptions(c)
    if (single.length > 0) throw new ConfigError(`${single[0]} needs a single worker (--workers 1)`)
  }
  if (!c.private && c.keysFile !== undefined) throw new ConfigError('--keys-file needs --private')
  if (!c.private && c.adminToken !== undefined) throw new ConfigError('--admin-token needs --private')
  return { config: c, file }
}

/** Options set in `c` that hold process-wide state sharded worker threads would each hold a diverging copy of. */
function singleProcessOptions (c: Config): string[] {
  const single: Array<[boolean, string]> = [
    [c.redis !== undefined, 'redis'], [c.private, 'private'], [c.stateFile !== undefined, 'stateFile']
  ]
  return single.filter(([used]) => used).map(([, name]) => name)
}

/**
 * How many worker threads `c.workers` means here: `auto` is one per core
 * (`os.availableParallelism()`), or 1, with the reason, when an option needs one process.
 */
export function resolveWorkers (c: Config): { count: number, reason?: string } {
  if (c.workers !== 'auto') return { count: c.workers }
  const single = singleProcessOptions(c)
  if (single.length > 0) return { count: 1, reason: `${single.join(', ')} ${single.length > 1 ? 'need' : 'needs'} one process` }
  return { count: availableParallelism() }
}

/** The options a file may hold, with their effective values (secrets redacted, unset omitted). */
export function printable (c: Config): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const o of ALL) {
    if (o.scope !== 'file') continue
    const v = c[o.key]
    if (v === undefined) continue
    out[o.key] = o.secret === true ? '(redacted)' : v
  }
  return out
}

export function formatConfig (c: Config, format: 'toml' | 'json'): string {
  const p = printable(c)
  return format === 'json' ? JSON.stringify(p, null, 2) + '\n' : stringifyToml(p).replace(/\n*$/, '\n')
}

function firstLine (s: string): string {
  return s.split('\n', 1)[0]
}

function describe (v: unknown): string {
  if (v === null) return 'null'
  if (Array.isArray(v)) return `an array ${JSON.stringify(v)}`
  if (typeof v === 'object') return v instanceof Date ? `a date ${v.toISOString()}` : 'a table'
  if (typeof v === 'bigint') return v.toString()
  return JSON.stringify(v)
}
