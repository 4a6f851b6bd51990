// Starts a real opentracker (Debian package `opentracker`, binary /usr/bin/opentracker) on
// loopback for interop tests, and stops it by PID.
//
// Facts about the Debian build that shape this helper:
// - It is built with a WHITELIST (README.Debian): only info hashes listed in the access list may
//   announce, so the caller names them up front. Scrape answers for other hashes are left out.
// - It is built IPv4-only ("V4 Tracker is V4 only!" for an IPv6 listen address).
// - It chroots to `tracker.rootdir` and, when started as root, drops to user "nobody", so the
//   directory and the whitelist must be world-readable. The whitelist path is relative to it.
// - `listen.tcp_udp ip:port` binds HTTP and UDP on the same port.
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import net from 'node:net'
import dgram from 'node:dgram'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { AddressInfo } from 'node:net'

export const OPENTRACKER_BIN = '/usr/bin/opentracker'

export function haveOpentracker (): boolean {
  return existsSync(OPENTRACKER_BIN)
}

export interface Opentracker {
  host: string
  port: number
  pid: number
  /** `http://host:port/announce` */
  httpUrl: string
  /** `udp://host:port` */
  udpUrl: string
  /** Output so far (for failure messages). */
  output: () => string
  stop: () => Promise<void>
}

/** A port free for both TCP and UDP on `host` (checked, then released). */
async function freePort (host: string): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const s = net.createServer()
    s.listen(0, host)
    await once(s, 'listening')
    const port = (s.address() as AddressInfo).port
    await new Promise(resolve => s.close(resolve))
    const u = dgram.createSocket('udp4')
    const free = await new Promise<boolean>(resolve => {
      u.once('error', () => resolve(false))
      u.bind(port, host, () => resolve(true))
    })
    await new Promise<void>(resolve => { try { u.close(() => resolve()) } catch { resolve() } })
    if (free) return port
  }
  throw new Error('no free port for opentracker')
}

/** Resolves when a TCP connection to host:port succeeds; bounded by `deadline`. */
async function waitForTcp (host: string, port: number, child: ChildProcess, deadline: number): Promise<void> {
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`opentracker exited (${child.exitCode ?? child.signalCode})`)
    const up = await new Promise<boolean>(resolve => {
      const sock = net.connect(port, host)
      sock.once('connect', () => { sock.destroy(); resolve(true) })
      sock.once('error', () => resolve(false))
    })
    if (up) return
    await new Promise(resolve => setTimeout(resolve, 25))
  }
  throw new Error('opentracker did not start listening within the deadline')
}

/**
 * Start opentracker on 127.0.0.1 with `whitelist` (hex info hashes) as its access list, in a
 * fresh temporary directory holding a minimal config. Call `stop()` to end it (SIGTERM, then
 * SIGKILL after a second) and remove the directory.
 */
export async function startOpentracker (whitelist: string[], host = '127.0.0.1'): Promise<Opentracker> {
  const dir = await mkdtemp(join(tmpdir(), 'opentracker-'))
  await chmod(dir, 0o755)
  const port = await freePort(host)
  await writeFile(join(dir, 'whitelist.txt'), whitelist.map(h => h.toLowerCase() + '\n').join(''), { mode: 0o644 })
  await writeFile(join(dir, 'opentracker.conf'), [
    `listen.tcp_udp ${host}:${port}`,
    `tracker.rootdir ${dir}`,
    'access.whitelist ./whitelist.txt',
    ''
  ].join('\n'), { mode: 0o644 })

  const child = spawn(OPENTRACKER_BIN, ['-f', join(dir, 'opentracker.conf')], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout!.on('data', (d: Buffer) => { out += d.toString() })
  child.stderr!.on('data', (d: Buffer) => { out += d.toString() })
  const exited = once(child, 'exit')
  const pid = child.pid
  if (pid === undefined) throw new Error('opentracker did not start')

  let stopped = false
  const stop = async (): Promise<void> => {
    if (stopped) return
    stopped = true
    if (child.exitCode === null && child.signalCode === null) {
      process.kill(pid, 'SIGTERM')
      const killer = setTimeout(() => { try { process.kill(pid, 'SIGKILL') } catch {} }, 1000)
      await exited
      clearTimeout(killer)
    }
    await rm(dir, { recursive: true, force: true })
  }

  try {
    await waitForTcp(host, port, child, Date.now() + 5000)
  } catch (err) {
    await stop()
    throw new Error(`${(err as Error).message}\n${out}`)
  }
  return {
    host,
    port,
    pid,
    httpUrl: `http://${host}:${port}/announce`,
    udpUrl: `udp://${host}:${port}`,
    output: () => out,
    stop
  }
}
