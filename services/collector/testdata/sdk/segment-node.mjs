// Sends scenario.json through Segment's official Node SDK
// (@segment/analytics-node) to FP_COLLECTOR_URL with write key FP_WRITE_KEY,
// then closes and flushes. Exits 1 if the SDK reports any error.
import { Analytics } from '@segment/analytics-node'
import { calls, env, fail, withTimeout } from './scenario.mjs'

const sdk = '@segment/analytics-node'
const errors = []
const analytics = new Analytics({
  writeKey: env('FP_WRITE_KEY'),
  host: env('FP_COLLECTOR_URL'), // e.g. http://127.0.0.1:PORT
  path: '/v1/batch', // the SDK's default, spelled out
  flushAt: 4, // several events per request, several requests
  flushInterval: 10000, // no timer flush during the run: closeAndFlush sends the rest
  maxRetries: 2,
  httpRequestTimeout: 10000,
})
analytics.on('error', (err) => errors.push(new Error(`${err.code}: ${err.reason?.message ?? err.reason}`)))

const delivered = []
for (const { method, args } of calls(env('FP_RUN_ID'))) {
  delivered.push(
    new Promise((resolve) => {
      analytics[method](args, (err, ctx) => {
        if (err) errors.push(new Error(`${method}: ${err.message ?? err}`))
        resolve(ctx?.event?.messageId)
      })
    }),
  )
}
try {
  await withTimeout(analytics.closeAndFlush({ timeout: 30000 }), 35000, 'closeAndFlush')
  const ids = await withTimeout(Promise.all(delivered), 5000, 'callbacks')
  if (errors.length) fail(sdk, errors)
  console.log(JSON.stringify({ sdk, events: ids.length, messageIds: ids }))
} catch (e) {
  fail(sdk, [e, ...errors])
}
