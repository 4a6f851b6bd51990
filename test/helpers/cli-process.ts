/**
 * The built `bittorrent-tracker` command as a child process, the one helper every CLI test uses:
 * output waits, JSON log lines, signals, kill by PID. Every process started is remembered so a
 * test file's `after(killAllCli)` leaves none behind.
 */
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { withTimeout } from './tracker-clients.js'

export const BIN = fileURLToPath(new URL('../../dist/cli/bin.js', import.meta.url))
/** Node startup plus binding, on a busy machine. */
export const CLI_START_MS = 15_000
/** How long `stop` waits for the exit after its signal, by default. */
export const CLI_STOP_MS = 8000

export interface CliExit { code: number | null, signal: NodeJS.Signals | null }

/** A JSON log line (pino): `level` and `msg`, plus whatever fields the line carries. */
export interface CliLog { level: string, msg: string, [field: string]: unknown }

/** Every process started and not yet exited, for `killAllCli`. */
const live = new Set<CliProcess>()

/** Ends every still-running process of this test file by its PID (for `after`). */
export function killAllCli (): void {
  for (const c of live) c.kill()
}

export class CliProcess {
  readonly child: ChildProcess
  stdout = ''
  stderr = ''
  readonly exited: Promise<CliExit>
  private readonly changed = new Set<() => void>()

  /** `env` is the child's whole environment (default: this process's). */
  constructor (args: string[], env: NodeJS.ProcessEnv = process.env) {
    this.child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env })
    this.child.stdout!.setEncoding('utf8').on('data', (s: string) => { this.stdout += s; this.notify() })
    this.child.stderr!.setEncoding('utf8').on('data', (s: string) => { this.stderr += s; this.notify() })
    this.exited = new Promise(resolve => this.child.once('exit', (code, signal) => {
      live.delete(this)
      this.notify()
      resolve({ code, signal })
    }))
    live.add(this)
  }

  private notify (): void { for (const f of this.changed) f() }

  private get ended (): boolean { return this.child.exitCode !== null || this.child.signalCode !== null }

  /**
   * Resolves the first defined result of `probe`, tried now and at every output; rejects when the
   * process exits first or after `ms`.
   */
  waitUntil<T> (probe: () => T | undefined, what: string, ms = CLI_START_MS): Promise<T> {
    return withTimeout(new Promise<T>((resolve, reject) => {
      const check = (): void => {
        const r = probe()
        if (r !== undefined) { this.changed.delete(check); resolve(r) } else if (this.ended) {
          this.changed.delete(check)
          reject(new Error(`exited (${String(this.child.exitCode)}) waiting for ${what}; stdout ${JSON.stringify(this.stdout)} stderr ${JSON.stringify(this.stderr)}`))
        }
      }
      this.changed.add(check)
      check()
    }), ms, `${what}; stdout ${JSON.stringify(this.stdout)} stderr ${JSON.stringify(this.stderr)}`)
  }

  /** Waits until `stream` matches `re`. */
  waitFor (stream: 'stdout' | 'stderr', re: RegExp, ms = CLI_START_MS): Promise<RegExpExecArray> {
    return this.waitUntil(() => re.exec(this[stream]) ?? undefined, `${stream} matching ${String(re)}`, ms)
  }

  /** Waits until stdout holds `n` complete lines; resolves them. */
  rawLines (n: number, ms = CLI_START_MS): Promise<string[]> {
    return this.waitUntil(() => {
      const lines = this.stdout.split('\n')
      return lines.length > n ? lines.slice(0, n) : undefined
    }, `${n} lines of output`, ms)
  }

  /** Every complete line of `stream` so far, parsed as a JSON log line. */
  logs (stream: 'stdout' | 'stderr' = 'stdout'): CliLog[] {
    return parseLogs(this[stream])
  }

  /** Waits for a log line matching `pred` on either stream. */
  waitLog (pred: (l: CliLog) => boolean, what: string, ms = CLI_START_MS): Promise<CliLog> {
    return this.waitUntil(() => [...parseLogs(this.stdout), ...parseLogs(this.stderr)].find(pred), what, ms)
  }

  /** The port of the first "<kind> server listening on PORT" line. */
  async port (kind = 'https?'): Promise<number> {
    return Number((await this.waitFor('stdout', new RegExp(`"msg":"(?:${kind}) server listening on (\\d+)"`)))[1])
  }

  signal (sig: NodeJS.Signals): void { this.child.kill(sig) }

  /** Sends `sig` and resolves the exit. */
  async stop (sig: NodeJS.Signals = 'SIGTERM', ms = CLI_STOP_MS): Promise<CliExit> {
    const { code, signal } = await this.timedStop(sig, ms)
    return { code, signal }
  }

  /** `stop`, also resolving how long the exit took. */
  async timedStop (sig: NodeJS.Signals = 'SIGTERM', ms = CLI_STOP_MS): Promise<CliExit & { ms: number }> {
    const t0 = Date.now()
    this.child.kill(sig)
    const e = await withTimeout(this.exited, ms, `exit after ${sig}`)
    return { ...e, ms: Date.now() - t0 }
  }

  /** Ends the process by its PID if it is still running. */
  kill (): void {
    if (!this.ended && this.child.pid !== undefined) {
      try { process.kill(this.child.pid, 'SIGKILL') } catch { /* already gone */ }
    }
  }
}

function parseLogs (text: string): CliLog[] {
  return text.split('\n').slice(0, -1).map(l => JSON.parse(l) as CliLog)
}

/** Runs the command to its end (bad flags, bad files, --help) and returns its output. */
export async function runCli (args: string[], env?: NodeJS.ProcessEnv, ms = CLI_START_MS): Promise<CliExit & { stdout: string, stderr: string }> {
  const c = new CliProcess(args, env)
  try {
    const e = await withTimeout(c.exited, ms, `bittorrent-tracker ${args.join(' ')}`)
    return { ...e, stdout: c.stdout, stderr: c.stderr }
  } finally { c.kill() }
}
