/**
 * TLS test material made by the real openssl (a self-signed P-256 certificate for 127.0.0.1 and
 * localhost), and a TLS probe of the certificate served (HTTPS GETs: httpGet with `{ ca }`).
 */
import { execFileSync } from 'node:child_process'
import { X509Certificate } from 'node:crypto'
import { readFileSync } from 'node:fs'
import tls from 'node:tls'
import { join } from 'node:path'
import { REPLY_TIMEOUT_MS, withTimeout } from './tracker-clients.js'

export interface TestCert {
  certFile: string
  keyFile: string
  /** PEM text. */
  cert: string
  key: string
  /** SHA-256 fingerprint as Node prints it (`AB:CD:…`). */
  fingerprint256: string
}

/** A new key and self-signed certificate in `dir` as `<name>.crt` / `<name>.key`. */
export function makeCert (dir: string, name: string): TestCert {
  const certFile = join(dir, `${name}.crt`)
  const keyFile = join(dir, `${name}.key`)
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2',
    '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
    '-keyout', keyFile, '-out', certFile
  ], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 15_000 })
  const cert = readFileSync(certFile, 'utf8')
  return { certFile, keyFile, cert, key: readFileSync(keyFile, 'utf8'), fingerprint256: new X509Certificate(cert).fingerprint256 }
}

/** The fingerprint of the certificate a TLS server on 127.0.0.1:port presents to a new connection. */
export function servedFingerprint (port: number): Promise<string> {
  return withTimeout(new Promise<string>((resolve, reject) => {
    // Not verified here on purpose: the point is to see which certificate is served.
    const s = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', rejectUnauthorized: false }, () => {
      const fp = s.getPeerCertificate().fingerprint256
      s.destroy()
      resolve(fp)
    })
    s.on('error', reject)
  }), REPLY_TIMEOUT_MS, `TLS handshake with port ${port}`)
}

