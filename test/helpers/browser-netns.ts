/**
 * Running a test file inside an isolated network namespace, for tests that use WebRTC (Node's
 * @roamhq/wrtc or Chromium): ICE gathers candidates on every interface, and inside a fresh
 * namespace with no link to the outside no packet can go anywhere else.
 *
 * Two set-ups:
 * - 'loopback': only `lo`. Enough for @roamhq/wrtc, which gathers 127.0.0.1 and ::1.
 * - 'veth': `lo` plus a veth pair whose BOTH ends stay in the namespace (10.200.0.1/24 and
 *   10.200.0.2/24, default route via the second), so still nothing leaves it. Chromium needs it:
 *   it never gathers on a loopback interface (not even with --allow-loopback-in-peer-connection)
 *   and finds its host address through the default route, so in an `lo`-only namespace it
 *   gathers no candidate at all.
 *
 * The test file re-runs itself: the outer run (as root, with `unshare`) calls
 * `runInIsolatedNamespace`, which starts `unshare --net sh -c 'ip link set lo up && exec node
 * --test FILE'` with `envName=1` set; the inner run sees `envName` and defines the real tests.
 * The outer test reports each inner test as a diagnostic line and fails with the inner output.
 */
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import type { TestContext } from 'node:test'

export type NamespaceKind = 'loopback' | 'veth'

const SETUP: Record<NamespaceKind, string> = {
  loopback: 'ip link set lo up',
  veth: 'ip link set lo up && ip link add btv0 type veth peer name btv1' +
    ' && ip addr add 10.200.0.1/24 dev btv0 && ip addr add 10.200.0.2/24 dev btv1' +
    ' && ip link set btv0 up && ip link set btv1 up && ip route add default via 10.200.0.2 dev btv0'
}

/** Whether such a namespace can be made here (Linux, root, unshare and ip present, veth if asked). */
export function canUseIsolatedNamespace (kind: NamespaceKind = 'loopback'): boolean {
  if (process.platform !== 'linux' || process.getuid?.() !== 0) return false
  const r = spawnSync('unshare', ['--net', 'sh', '-c', SETUP[kind]], { stdio: 'ignore', timeout: 5_000 })
  return r.status === 0
}

/**
 * Run `file` with node's test runner in a fresh isolated network namespace and assert that it
 * passed. Killed after `maxMs`.
 */
export async function runInIsolatedNamespace (t: TestContext, file: string, envName: string, cwd: string, maxMs: number, kind: NamespaceKind = 'loopback'): Promise<void> {
  const cmd = `${SETUP[kind]} && exec "${process.execPath}" --import tsx --test --test-reporter=spec "${file}"`
  const child = spawn('unshare', ['--net', 'sh', '-c', cmd], {
    cwd,
    // NODE_TEST_CONTEXT would make the inner runner talk the outer runner's child protocol.
    env: { ...process.env, [envName]: '1', NODE_TEST_CONTEXT: undefined },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let out = ''
  child.stdout.on('data', (d: Buffer) => { out += d.toString() })
  child.stderr.on('data', (d: Buffer) => { out += d.toString() })
  let killed = false
  const killer = setTimeout(() => { killed = true; child.kill('SIGKILL') }, maxMs)
  const code = await new Promise<number | null>(resolve => child.on('close', resolve))
  clearTimeout(killer)
  // eslint-disable-next-line no-control-regex
  for (const line of out.replace(/\x1b\[[0-9;]*m/g, '').split('\n')) {
    if (/^\s*[✔✖﹣]/.test(line)) t.diagnostic(line.trim())
  }
  assert.equal(code, 0, `${killed ? `killed after ${maxMs} ms; ` : ''}inner run exited with ${String(code)}:\n${out}`)
}
