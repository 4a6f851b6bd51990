import { createHash, timingSafeEqual } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { ADMIN_MAX_BODY } from '../../constants.js'
import { isValidPasskey } from '../core/passkeys.js'
import type { Account, Passkeys } from '../core/passkeys.js'

/**
 * The passkey admin API, on the tracker's HTTP port, for private mode:
 *
 *   GET    /admin/keys          → 200 { keys: [{ key, source, uploaded, downloaded }] }
 *   GET    /admin/keys/<key>    → 200 { key, source, uploaded, downloaded } | 404
 *   POST   /admin/keys          body {} or { "key": "<key>" } → 201 the new account | 409 exists
 *   DELETE /admin/keys/<key>    → 200 the removed account (with its final accounting) | 404
 *
 * Every request needs `Authorization: Bearer <token>` (else 401). Errors are JSON
 * `{ error: "<reason>" }` with a 4xx status. Bodies are at most ADMIN_MAX_BODY bytes.
 */
export class AdminApi {
  private readonly tokenDigest: Buffer

  constructor (private readonly passkeys: Passkeys, token: string, private readonly changed: () => void) {
    this.tokenDigest = digest(token)
  }

  /** Handles `/admin/keys…`; returns false for any other path. */
  handle (req: IncomingMessage, res: ServerResponse): boolean {
    const url = req.url ?? ''
    const q = url.indexOf('?')
    const path = q === -1 ? url : url.slice(0, q)
    if (path !== '/admin/keys' && !path.startsWith('/admin/keys/')) return false
    if (!this.authorized(req)) {
      reply(res, 401, { error: 'missing or wrong bearer token' }, { 'WWW-Authenticate': 'Bearer' })
      return true
    }
    const key = path.length > 12 ? path.slice(12) : undefined
    const method = req.method ?? 'GET'
    if (key === undefined) {
      if (method === 'GET') reply(res, 200, { keys: Array.from(this.passkeys.list(), view) })
      else if (method === 'POST') this.create(req, res)
      else reply(res, 405, { error: `method ${method} not allowed here` }, { Allow: 'GET, POST' })
      return true
    }
    if (method === 'GET') {
      const a = this.passkeys.get(key)
      if (a === undefined) reply(res, 404, { error: 'unknown passkey' })
      else reply(res, 200, view(a))
    } else if (method === 'DELETE') {
      const a = this.passkeys.delete(key)
      if (a === undefined) reply(res, 404, { error: 'unknown passkey' })
      else { this.changed(); reply(res, 200, view(a)) }
    } else {
      reply(res, 405, { error: `method ${method} not allowed here` }, { Allow: 'GET, DELETE' })
    }
    return true
  }

  private authorized (req: IncomingMessage): boolean {
    const h = req.headers.authorization
    if (typeof h !== 'string' || !h.startsWith('Bearer ')) return false
    // Equal-length digests, compared in constant time: the token's length leaks nothing either.
    return timingSafeEqual(digest(h.slice(7)), this.tokenDigest)
  }

  private create (req: IncomingMessage, res: ServerResponse): void {
    const declared = Number(req.headers['content-length'] ?? 0)
    if (declared > ADMIN_MAX_BODY) return tooLarge(req, res)
    const chunks: Buffer[] = []
    let size = 0
    // A slow body is bounded by the HTTP server's requestTimeout (HTTP_REQUEST_TIMEOUT_MS).
    let done = false
    req.on('data', (c: Buffer) => {
      if (done) return
      size += c.length
      if (size > ADMIN_MAX_BODY) { done = true; tooLarge(req, res); return }
      chunks.push(c)
    })
    // A client that vanishes mid-body: nothing to answer, nothing added.
    const gone = (): void => { done = true }
    req.on('error', gone)
    req.on('end', () => {
      if (done) return
      done = true
      const r = parseCreate(Buffer.concat(chunks))
      if (!r.ok) return reply(res, 400, { error: r.error })
      if (r.key !== undefined && this.passkeys.has(r.key)) return reply(res, 409, { error: 'passkey exists' })
      const a = this.passkeys.add(r.key, 'api')
      this.changed()
      reply(res, 201, view(a))
    })
  }
}

/** `{}` or `{ "key": "<passkey>" }` (an empty body counts as `{}`); anything else is refused. */
export function parseCreate (body: Buffer): { ok: true, key: string | undefined } | { ok: false, error: string } {
  const text = body.toString('utf8').trim()
  if (text === '') return { ok: true, key: undefined }
  let v: unknown
  try { v = JSON.parse(text) } catch { return { ok: false, error: 'body is not valid JSON' } }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return { ok: false, error: 'body must be a JSON object' }
  const o = v as Record<string, unknown>
  for (const k of Object.keys(o)) if (k !== 'key') return { ok: false, error: `unknown field: ${k.slice(0, 40)}` }
  if (o.key === undefined) return { ok: true, key: undefined }
  if (typeof o.key !== 'string' || !isValidPasskey(o.key)) {
    return { ok: false, error: 'key must be 16 to 64 characters of A-Z, a-z, 0-9' }
  }
  return { ok: true, key: o.key }
}

function view (a: Account): { key: string, source: string, uploaded: number, downloaded: number } {
  return { key: a.key, source: a.source, uploaded: a.uploaded, downloaded: a.downloaded }
}

function digest (s: string): Buffer {
  return createHash('sha256').update(s).digest()
}

function tooLarge (req: IncomingMessage, res: ServerResponse): void {
  reply(res, 413, { error: `body larger than ${ADMIN_MAX_BODY} bytes` }, { Connection: 'close' })
  // Stop reading what the client still sends; the connection closes after the answer.
  req.pause()
}

function reply (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent || res.destroyed) return
  res.writeHead(status, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store', ...headers })
  res.end(JSON.stringify(body))
}
