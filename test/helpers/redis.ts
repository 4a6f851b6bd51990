// A real redis-server (Debian's /usr/bin/redis-server) on loopback, started per test file and
// ended by its PID. Restartable on the same port and data directory (fault tests).
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const START_TIMEOUT_MS = 10_000

export interface RedisServerOptions {
  /** Append-only file with fsync on every write (acknowledged writes survive a kill). */
  persist?: boolean
}

export class RedisServer {
  proc: ChildProcess | null = null
  private exited: Promise<void> = Promise.resolve()
  log = ''

  private constructor (readonly port: number, readonly dir: string, readonly persist: boolean) {}

  get url (): string { return `redis://127.0.0.1:${this.port}` }

  static async start (opts: RedisServerOptions = {}): Promise<RedisServer> {
    const dir = mkdtempSync(join(tmpdir(), 'bt-redis-'))
    let lastErr: unknown
    for (let attempt = 0; attempt < 5; attempt++) {
      const r = new RedisServer(await freePort(), dir, opts.persist === true)
      try { await r.launch(); return r } catch (err) { lastErr = err; await r.kill() }
    }
    throw lastErr instanceof Error ? lastErr : new Error(String(lastErr))
  }

  /** Starts (again) on the same port and directory; resolves once it accepts connections. */
  async launch (): Promise<void> {
    const args = ['--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir, '--save', '',
      '--protected-mode', 'yes', '--loglevel', 'notice']
    if (this.persist) args.push('--appendonly', 'yes', '--appendfsync', 'always')
    else args.push('--appendonly', 'no')
    const proc = spawn('/usr/bin/redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] })
    this.proc = proc
    this.exited = new Promise(resolve => proc.once('exit', () => resolve()))
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => done(new Error(`redis-server did not start in ${START_TIMEOUT_MS} ms: ${this.log}`)), START_TIMEOUT_MS)
      const onData = (c: Buffer): void => {
        this.log += c.toString()
        if (this.log.includes('Ready to accept connections')) done()
      }
      const onExit = (): void => done(new Error(`redis-server exited: ${this.log}`))
      const done = (err?: Error): void => {
        clearTimeout(timer)
        proc.stdout!.off('data', onData)
        proc.off('exit', onExit)
        if (err !== undefined) reject(err); else resolve()
      }
      proc.stdout!.on('data', onData)
      proc.stderr!.on('data', (c: Buffer) => { this.log += c.toString() })
      proc.once('exit', onExit)
    })
    proc.stdout!.resume()
  }

  /** SIGKILL by PID (no shutdown save): what Redis had fsynced is all that survives. */
  async kill (): Promise<void> {
    const proc = this.proc
    if (proc === null) return
    this.proc = null
    if (proc.exitCode === null && proc.signalCode === null && proc.pid !== undefined) {
      try { process.kill(proc.pid, 'SIGKILL') } catch { /* already gone */ }
    }
    await this.exited
  }

  async stop (): Promise<void> {
    await this.kill()
    rmSync(this.dir, { recursive: true, force: true })
  }
}

function freePort (): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port
      s.close(() => resolve(port))
    })
  })
}
