// A node:test reporter that writes only the failures (file, test path, error), so the end of a
// long run can repeat them: CI shows only the tail of the output.
import { inspect } from 'node:util'

export default async function * failures (source) {
  const path = []
  for await (const event of source) {
    if (event.type === 'test:start') {
      path[event.data.nesting] = event.data.name
    } else if (event.type === 'test:fail') {
      const { name, nesting, file, details } = event.data
      path[nesting] = name
      // A suite fails when a test inside it did; the inner failure is already listed.
      if (details?.error?.failureType === 'subtestsFailed') continue
      const err = details?.error?.cause ?? details?.error
      const where = path.slice(0, nesting + 1).join(' > ')
      yield `not ok: ${file ?? '?'}\n  ${where}\n  ${inspect(err, { depth: 4 }).split('\n').join('\n  ')}\n\n`
    }
  }
}
