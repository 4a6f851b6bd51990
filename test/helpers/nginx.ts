/**
 * A real nginx in the foreground (`daemon off`, one process: `master_process off`) with its
 * config, pid, logs and temp files in a temporary directory; ended by its PID.
 */
import { spawn, spawnSync } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import { join } from 'node:path'
import { withTimeout } from './tracker-clients.js'

export const NGINX = '/usr/sbin/nginx'
const START_MS = 10_000

/** The main-context lines every test config needs: everything under `dir`, nothing in /var. */
export function nginxMain (dir: string): string {
  mkdirSync(join(dir, 'tmp'), { recursive: true })
  // As root, nginx would switch its workers to `nobody`, who cannot write our temp dir.
  const user = process.getuid?.() === 0 ? 'user root;\n' : ''
  return `${user}daemon off;
master_process off;
pid ${join(dir, 'nginx.pid')};
error_log ${join(dir, 'error.log')} warn;
events { worker_connections 128; }
`
}

/** http-context lines keeping temp files and logs in `dir`. */
export function nginxHttpBasics (dir: string): string {
  return `access_log off;
client_body_temp_path ${join(dir, 'tmp', 'body')};
proxy_temp_path ${join(dir, 'tmp', 'proxy')};
`
}

/** `nginx -t` on a config file: the exit status and what it printed. */
export function nginxTest (dir: string, conf: string): { status: number | null, output: string } {
  const r = spawnSync(NGINX, ['-t', '-p', dir, '-c', conf], { encoding: 'utf8', timeout: START_MS })
  return { status: r.status, output: `${r.stdout}${r.stderr}` }
}

/** A port that was free a moment ago on 127.0.0.1. */
export async function freeTcpPort (): Promise<number> {
  const s = net.createServer()
  await new Promise<void>((resolve, reject) => { s.once('error', reject); s.listen(0, '127.0.0.1', resolve) })
  const port = (s.address() as net.AddressInfo).port
  await new Promise(resolve => s.close(resolve))
  return port
}

export class Nginx {
  readonly proc: ChildProcess
  private output = ''
  private readonly exited: Promise<void>
  private done = false

  private constructor (readonly dir: string, conf: string) {
    this.proc = spawn(NGINX, ['-p', dir, '-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] })
    this.proc.stdout!.on('data', (c: Buffer) => { this.output += c.toString() })
    this.proc.stderr!.on('data', (c: Buffer) => { this.output += c.toString() })
    this.exited = new Promise(resolve => this.proc.once('exit', () => { this.done = true; resolve() }))
  }

  /** Starts nginx with `config` (written to dir/nginx.conf) and waits until `port` accepts. */
  static async start (dir: string, config: string, port: number): Promise<Nginx> {
    const conf = join(dir, 'nginx.conf')
    writeFileSync(conf, config)
    const n = new Nginx(dir, conf)
    const end = Date.now() + START_MS
    for (;;) {
      if (n.done) throw new Error(`nginx exited: ${n.output}${n.log()}`)
      if (await canConnect(port)) return n
      if (Date.now() > end) { await n.stop(); throw new Error(`nginx did not listen on ${port}: ${n.log()}`) }
      await new Promise(resolve => setTimeout(resolve, 50))
    }
  }

  log (): string {
    try { return readFileSync(join(this.dir, 'error.log'), 'utf8') } catch { return '' }
  }

  /** SIGTERM (nginx's fast shutdown) by PID, then SIGKILL if it lingers. */
  async stop (): Promise<void> {
    if (this.done || this.proc.pid === undefined) return
    process.kill(this.proc.pid, 'SIGTERM')
    try {
      await withTimeout(this.exited, 5000, 'nginx exit')
    } catch {
      try { process.kill(this.proc.pid, 'SIGKILL') } catch { /* gone */ }
      await this.exited
    }
  }
}

function canConnect (port: number): Promise<boolean> {
  return new Promise(resolve => {
    const s = net.connect({ host: '127.0.0.1', port })
    s.once('connect', () => { s.destroy(); resolve(true) })
    s.once('error', () => resolve(false))
  })
}
