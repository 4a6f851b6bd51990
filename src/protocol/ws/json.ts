/**
 * Where the SDPs of a client → tracker frame are in its text, so the tracker can forward an
 * offer or answer by splicing that text into the outgoing frame instead of encoding the decoded
 * SDP again (`JSON.stringify` of a 600-character SDP costs more than the rest of the frame).
 *
 * `JSON.parse` still reads and validates the whole frame; this pass only maps its values back to
 * their text, so it may assume the text is valid JSON. Pure and browser-safe.
 */

/** The JSON text (quotes included) of `offers[k].offer.sdp` and `answer.sdp`, where kept. */
export interface SdpLiterals {
  offers: Array<string | undefined>
  answer: string | undefined
}

// The keys on the two paths, as small numbers.
const K_OTHER = 0
const K_OFFERS = 1
const K_OFFER = 2
const K_SDP = 3
const K_ANSWER = 4

/** Containers deeper than this are not on either path: only their depth is counted. */
const MAX_DEPTH = 4
// Per depth (1 = the top-level object): an array?, its element index, the object's current key.
// Module-level: no allocation per frame (the scan never re-enters).
const IS_ARRAY = new Uint8Array(MAX_DEPTH + 1)
const INDEX = new Uint32Array(MAX_DEPTH + 1)
const KEY = new Uint8Array(MAX_DEPTH + 1)

const isWellFormed = (String.prototype as { isWellFormed?: (this: string) => boolean }).isWellFormed

/**
 * The text of the string literals at `offers[k].offer.sdp` and `answer.sdp` in `text`, a JSON
 * object that `JSON.parse` accepted. A literal is given only when it is exactly what
 * `JSON.stringify` makes of its value (its escapes are `\" \\ \b \f \n \r \t`, none `\u` or `\/`,
 * and the text has no lone surrogate), so a frame spliced from it is byte for byte the one built
 * from the decoded value; else that entry is undefined and the caller encodes the value. Duplicate
 * keys are resolved as `JSON.parse` does (the last one wins), keys written with escapes included.
 */
export function findSdpLiterals (text: string): SdpLiterals {
  const found: SdpLiterals = { offers: [], answer: undefined }
  // No SDP key spelled plainly, or lone surrogates (which stringify escapes): nothing to keep.
  // (An escaped "sdp" key without a plain one only loses the shortcut.)
  if (text.indexOf('sdp') === -1) return found
  if (isWellFormed === undefined || !isWellFormed.call(text)) return found
  const n = text.length
  let depth = 0
  let expectKey = false
  let p = 0
  while (p < n) {
    const c = text.charCodeAt(p)
    if (c === 0x22) {
      const e = closingQuote(text, p)
      if (expectKey) {
        if (depth <= MAX_DEPTH) KEY[depth] = keyCode(text, p + 1, e)
        expectKey = false
      } else if (depth <= MAX_DEPTH && IS_ARRAY[depth] === 0 && KEY[depth] === K_SDP) {
        if (depth === 2 && IS_ARRAY[1] === 0 && KEY[1] === K_ANSWER) {
          found.answer = keptLiteral(text, p, e)
        } else if (depth === 4 && KEY[3] === K_OFFER && IS_ARRAY[3] === 0 && IS_ARRAY[2] === 1 && KEY[1] === K_OFFERS && IS_ARRAY[1] === 0) {
          found.offers[INDEX[2]] = keptLiteral(text, p, e)
        }
      }
      p = e + 1
      continue
    }
    switch (c) {
      case 0x7b: // {
        if (++depth <= MAX_DEPTH) { IS_ARRAY[depth] = 0; KEY[depth] = K_OTHER }
        expectKey = true
        break
      case 0x5b: // [
        if (++depth <= MAX_DEPTH) { IS_ARRAY[depth] = 1; INDEX[depth] = 0 }
        break
      case 0x2c: // ,
        if (depth <= MAX_DEPTH) {
          if (IS_ARRAY[depth] === 1) INDEX[depth]++
          else expectKey = true
        }
        break
      case 0x7d: case 0x5d: // } ]
        depth--
        expectKey = false
        break
    }
    p++
  }
  return found
}

/** The closing quote of the string literal opening at `text[p]` (one not escaped by a backslash). */
function closingQuote (text: string, p: number): number {
  let e = text.indexOf('"', p + 1)
  while (e !== -1 && text.charCodeAt(e - 1) === 0x5c) {
    let b = e - 1
    while (text.charCodeAt(b - 1) === 0x5c) b--
    if (((e - b) & 1) === 0) break // an even run of backslashes escapes itself, not the quote
    e = text.indexOf('"', e + 1)
  }
  return e === -1 ? text.length : e
}

/** Which key of interest the key literal `text[s, e)` (without quotes) is. */
function keyCode (text: string, s: number, e: number): number {
  const b = text.indexOf('\\', s)
  const key = b !== -1 && b < e ? JSON.parse(text.slice(s - 1, e + 1)) as string : undefined
  if (key !== undefined) {
    return key === 'sdp' ? K_SDP : key === 'offer' ? K_OFFER : key === 'offers' ? K_OFFERS : key === 'answer' ? K_ANSWER : K_OTHER
  }
  switch (e - s) {
    case 3: return text.startsWith('sdp', s) ? K_SDP : K_OTHER
    case 5: return text.startsWith('offer', s) ? K_OFFER : K_OTHER
    case 6: return text.startsWith('offers', s) ? K_OFFERS : text.startsWith('answer', s) ? K_ANSWER : K_OTHER
    default: return K_OTHER
  }
}

const NOT_STRINGIFY_ESCAPE = /\\[u/]/g

/** The literal `text[q0, q1]` when `JSON.stringify` writes its value the same way, else undefined. */
function keptLiteral (text: string, q0: number, q1: number): string | undefined {
  // One pass over the literal for both escapes (an escaped backslash before `u` or `/` also
  // matches: such a literal is merely re-encoded).
  NOT_STRINGIFY_ESCAPE.lastIndex = q0
  if (NOT_STRINGIFY_ESCAPE.test(text) && NOT_STRINGIFY_ESCAPE.lastIndex <= q1) return undefined
  return text.slice(q0, q1 + 1)
}
