/**
 * TLS material for the HTTPS/WSS listener: loaded and checked in one place, for `new Server()`,
 * `server.reloadTls()` and a WorkerPool's reload (which checks once, then hands every worker
 * the same PEM).
 */
import { X509Certificate, createPrivateKey } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createSecureContext } from 'node:tls'
import { OptionError } from '../errors.js'

/** TLS material: PEM text or bytes, or file paths (read at start and by `reloadTls()`). */
export interface TlsOptions {
  cert?: string | Uint8Array
  key?: string | Uint8Array
  certFile?: string
  keyFile?: string
}

/**
 * Reads and checks TLS material, naming what is wrong: an unreadable file, a certificate or key
 * that does not parse, or a key that does not belong to the certificate.
 */
export function loadTls (t: TlsOptions): { cert: string | Buffer, key: string | Buffer } {
  const read = (data: string | Uint8Array | undefined, file: string | undefined, what: string): string | Buffer => {
    if (data !== undefined) return typeof data === 'string' ? data : Buffer.from(data)
    if (file === undefined) throw new OptionError(`TLS: no ${what} given`)
    try {
      return readFileSync(file)
    } catch (err) {
      throw new OptionError(`TLS: cannot read ${what} file ${file}: ${(err as Error).message}`)
    }
  }
  const cert = read(t.cert, t.certFile, 'certificate')
  const key = read(t.key, t.keyFile, 'private key')
  const where = (file: string | undefined): string => file === undefined ? '' : ` (${file})`
  try { new X509Certificate(cert) } catch (err) {
    throw new OptionError(`TLS: the certificate${where(t.certFile)} is not a valid PEM certificate: ${(err as Error).message}`)
  }
  try { createPrivateKey(key) } catch (err) {
    throw new OptionError(`TLS: the private key${where(t.keyFile)} is not a valid PEM key: ${(err as Error).message}`)
  }
  try { createSecureContext({ cert, key }) } catch (err) {
    throw new OptionError(`TLS: the private key does not match the certificate: ${(err as Error).message}`)
  }
  return { cert, key }
}
