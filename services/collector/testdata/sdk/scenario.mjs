// Shared by the SDK scripts: reads the environment and scenario.json.
import { readFileSync } from 'node:fs'

/** env returns a required environment variable or exits with a message. */
export function env(name) {
  const v = process.env[name]
  if (!v) {
    console.error(`${name} is not set`)
    process.exit(2)
  }
  return v
}

/** calls returns scenario.json's calls for this run: "{run}" replaced,
 *  "timestamp" strings turned into Date objects (what an app passes). */
export function calls(runId) {
  const text = readFileSync(new URL('./scenario.json', import.meta.url), 'utf8')
  const { calls } = JSON.parse(text.replaceAll('{run}', runId))
  for (const c of calls) {
    if (typeof c.args.timestamp === 'string') c.args.timestamp = new Date(c.args.timestamp)
  }
  return calls
}

/** withTimeout rejects when p has not settled within ms. */
export function withTimeout(p, ms, what) {
  let timer
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms)
    }),
  ])
}

/** fail prints the errors and exits non-zero. */
export function fail(sdk, errors) {
  const seen = new Set()
  for (const e of errors) {
    const msg = `${sdk}: ${e?.message ?? e}`
    if (!seen.has(msg)) console.error(msg)
    seen.add(msg)
  }
  process.exit(1)
}
