// Sends scenario.json through RudderStack's official Node SDK
// (@rudderstack/rudder-sdk-node) to FP_COLLECTOR_URL with write key
// FP_WRITE_KEY, then flushes until every call's callback has fired. Exits 1 if
// the SDK reports any error.
import Analytics from '@rudderstack/rudder-sdk-node'
import { calls, env, fail, withTimeout } from './scenario.mjs'

const sdk = '@rudderstack/rudder-sdk-node'
const errors = []
const client = new Analytics(env('FP_WRITE_KEY'), {
  dataPlaneUrl: env('FP_COLLECTOR_URL'), // e.g. http://127.0.0.1:PORT
  path: '/v1/batch', // the SDK's default, spelled out
  flushAt: 4,
  flushInterval: 10000,
  retryCount: 2,
  logLevel: 'error',
  // gzip is on by default (Content-Encoding: gzip): left as users run it.
  errorHandler: (err) => errors.push(new Error(`delivery failed: ${err.response ? `${err.response.status} ${JSON.stringify(err.response.data)}` : err.message}`)),
})

const delivered = []
for (const { method, args } of calls(env('FP_RUN_ID'))) {
  delivered.push(
    new Promise((resolve) => {
      client[method](args, (err) => {
        if (err) errors.push(new Error(`${method}: ${err.message ?? err}`))
        resolve()
      })
    }),
  )
}
try {
  // flush() sends at most flushAt events; call it until the queue is empty,
  // then wait for every call's callback (fired after the HTTP answer).
  const drain = (async () => {
    while (client.queue.length > 0) await client.flush()
    await client.flush()
    await Promise.all(delivered)
  })()
  await withTimeout(drain, 35000, 'flush')
  if (errors.length) fail(sdk, errors)
  console.log(JSON.stringify({ sdk, events: delivered.length }))
} catch (e) {
  fail(sdk, [e, ...errors])
}
