/** The built `bittorrent-tracker` command as a child process: output waits, signals, kill by PID. */
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { withTimeout } from './tracker-clients.js'

export const BIN = fileURLToPath(new URL('../../dist/cli/bin.js', import.meta.url))
/** Node startup plus binding, on a busy machine. */
export const CLI_START_MS = 15_000

export interface CliExit { code: number | null, signal: NodeJS.Signals | null }

export class CliProcess {
  readonly child: ChildProcess
  stdout = ''
  stderr = ''
  readonly exited: Promise<CliExit>
  private readonly changed = new Set<() => void>()

  constructor (args: string[]) {
    this.child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    this.child.stdout!.setEncoding('utf8').on('data', (s: string) => { this.stdout += s; this.notify() })
    this.child.stderr!.setEncoding('utf8').on('data', (s: string) => { this.stderr += s; this.notify() })
    this.exited = new Promise(resolve => this.child.once('exit', (code, signal) => { this.notify(); resolve({ code, signal }) }))
  }

  private notify (): void { for (const f of this.changed) f() }

  /** Waits until `stream` matches `re` (rejects on exit or after `ms`). */
  waitFor (stream: 'stdout' | 'stderr', re: RegExp, ms = CLI_START_MS): Promise<RegExpExecArray> {
    return withTimeout(new Promise<RegExpExecArray>((resolve, reject) => {
      const check = (): void => {
        const m = re.exec(this[stream])
        if (m !== null) { this.changed.delete(check); resolve(m) } else if (this.child.exitCode !== null || this.child.signalCode !== null) {
          this.changed.delete(check)
          reject(new Error(`exited (${String(this.child.exitCode)}); stdout ${JSON.stringify(this.stdout)} stderr ${JSON.stringify(this.stderr)}`))
        }
      }
      this.changed.add(check)
      check()
    }), ms, `${stream} matching ${String(re)}; stdout ${JSON.stringify(this.stdout)} stderr ${JSON.stringify(this.stderr)}`)
  }

  /** The port of the first "<kind> server listening on PORT" line. */
  async port (kind = 'https?'): Promise<number> {
    return Number((await this.waitFor('stdout', new RegExp(`"msg":"(?:${kind}) server listening on (\\d+)"`)))[1])
  }

  signal (sig: NodeJS.Signals): void { this.child.kill(sig) }

  async stop (sig: NodeJS.Signals = 'SIGTERM'): Promise<CliExit> {
    this.child.kill(sig)
    return withTimeout(this.exited, 8000, `exit after ${sig}`)
  }

  /** Ends the process by its PID if it is still running. */
  kill (): void {
    if (this.child.exitCode === null && this.child.signalCode === null && this.child.pid !== undefined) {
      try { process.kill(this.child.pid, 'SIGKILL') } catch { /* already gone */ }
    }
  }
}

/** Runs the command to its end (bad flags, bad files) and returns its output. */
export async function runCli (args: string[]): Promise<CliExit & { stdout: string, stderr: string }> {
  const c = new CliProcess(args)
  try {
    const e = await withTimeout(c.exited, CLI_START_MS, `bittorrent-tracker ${args.join(' ')}`)
    return { ...e, stdout: c.stdout, stderr: c.stderr }
  } finally { c.kill() }
}
