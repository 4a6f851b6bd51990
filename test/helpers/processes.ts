// Child processes for interop tests: bounded waits, kill by PID, and a script that speaks one
// JSON object per stdout line and takes commands on stdin (lt_swarm.py, lt_seed.py).
import { spawn } from 'node:child_process'
import type { ChildProcess, ChildProcessWithoutNullStreams } from 'node:child_process'
import assert from 'node:assert/strict'
import { basename } from 'node:path'

export interface Exit { code: number | null, signal: NodeJS.Signals | null, error?: string }

export function withTimeout<T> (p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const t = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms)
  })
  return Promise.race([p, t]).finally(() => clearTimeout(timer))
}

/** Ends a process we started, by its PID, unless it already exited. */
export function killByPid (proc: ChildProcess, exited: boolean): void {
  if (!exited && proc.pid !== undefined) {
    try { process.kill(proc.pid, 'SIGKILL') } catch { /* already gone */ }
  }
}

/**
 * A script run as `command script ...args` whose stdout is a sequence of JSON messages with a
 * `phase`. The script bounds its own run to `runS` seconds; it is killed by PID a little after.
 */
export class JsonLineScript {
  readonly proc: ChildProcessWithoutNullStreams
  readonly name: string
  stderr = ''
  exit: Exit | null = null
  private readonly queue: Array<Record<string, unknown>> = []
  private waiter: (() => void) | null = null
  private buf = ''
  private readonly exited: Promise<void>
  private readonly killer: NodeJS.Timeout

  constructor (command: string, script: string, args: string[], private readonly runS: number, private readonly stepMs: number) {
    this.name = basename(script)
    this.proc = spawn(command, [script, ...args], { stdio: ['pipe', 'pipe', 'pipe'] })
    this.proc.stdout.on('data', (c: Buffer) => {
      this.buf += c.toString()
      let nl: number
      while ((nl = this.buf.indexOf('\n')) >= 0) {
        const line = this.buf.slice(0, nl)
        this.buf = this.buf.slice(nl + 1)
        try {
          this.queue.push(JSON.parse(line) as Record<string, unknown>)
        } catch {
          this.queue.push({ phase: 'unparsable', line })
        }
        this.waiter?.()
      }
    })
    this.proc.stderr.on('data', (c: Buffer) => { this.stderr += c.toString() })
    this.proc.stdin.on('error', () => { /* the script died; its exit says why */ })
    this.exited = new Promise(resolve => {
      this.proc.on('error', err => { this.exit ??= { code: null, signal: null, error: err.message }; this.waiter?.(); resolve() })
      this.proc.on('close', (code, signal) => { this.exit ??= { code, signal }; this.waiter?.(); resolve() })
    })
    this.killer = setTimeout(() => this.kill(), (runS + 15) * 1000)
  }

  /** The next message, which must be `phase`. */
  async expect (phase: string): Promise<Record<string, unknown>> {
    const msg = await withTimeout(new Promise<Record<string, unknown> | null>(resolve => {
      const check = (): void => {
        const m = this.queue.shift()
        if (m !== undefined) { this.waiter = null; resolve(m) } else if (this.exit !== null) { this.waiter = null; resolve(null) }
      }
      this.waiter = check
      check()
    }), (this.runS + 5) * 1000, `${this.name} phase '${phase}'`)
    assert.ok(msg !== null, `${this.name} exited (${JSON.stringify(this.exit)}) before phase '${phase}'\n${this.stderr}`)
    assert.equal(msg.phase, phase, `${this.name}: expected phase '${phase}', got ${JSON.stringify(msg)}\n${this.stderr}`)
    return msg
  }

  /** One command line on the script's stdin. */
  send (command: string): void { this.proc.stdin.write(command + '\n') }

  async waitExit (): Promise<Exit> {
    await withTimeout(this.exited, (this.runS + 5) * 1000, `${this.name} to exit`)
    clearTimeout(this.killer)
    return this.exit!
  }

  kill (): void { killByPid(this.proc, this.exit !== null) }

  async dispose (): Promise<void> {
    clearTimeout(this.killer)
    this.kill()
    await withTimeout(this.exited, this.stepMs, `${this.name} to go away`).catch(() => {})
  }
}
