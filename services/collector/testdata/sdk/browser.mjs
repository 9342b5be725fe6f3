// Opens FP_PAGE_URL in headless Chromium (Debian's, FP_CHROMIUM) with
// playwright-core and waits until the page's analytics-next has had
// FP_EXPECT_EVENTS events accepted by the collector at FP_COLLECTOR_URL.
// Exits 1 on any failed or non-2xx collector request, any request to a host
// other than 127.0.0.1 (the test is offline), or a page error.
import { chromium } from 'playwright-core'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { env, fail, withTimeout } from './scenario.mjs'

const sdk = '@segment/analytics-next (Chromium)'
const pageURL = env('FP_PAGE_URL')
const collector = new URL(env('FP_COLLECTOR_URL')).origin
const expected = Number(env('FP_EXPECT_EVENTS'))
const errors = []
const profile = mkdtempSync(join(tmpdir(), 'fp-chromium-'))

let context
let summary
try {
  context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.FP_CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--no-proxy-server',
    ],
  })
  const page = context.pages()[0] ?? (await context.newPage())
  let delivered = 0
  let resolveDone
  const done = new Promise((resolve) => (resolveDone = resolve))

  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(new Error(`console: ${m.text()}`))
  })
  page.on('pageerror', (e) => errors.push(e))
  page.on('request', (r) => {
    const u = new URL(r.url())
    if (u.protocol !== 'data:' && u.hostname !== '127.0.0.1') errors.push(new Error(`request to ${r.url()}: the test must stay offline`))
  })
  page.on('requestfailed', (r) => errors.push(new Error(`${r.method()} ${r.url()} failed: ${r.failure()?.errorText}`)))
  page.on('response', async (res) => {
    const req = res.request()
    if (res.status() >= 400) errors.push(new Error(`${req.method()} ${req.url()} answered ${res.status()}`))
    if (!req.url().startsWith(collector) || req.method() !== 'POST') return
    if (res.status() !== 200) {
      errors.push(new Error(`${req.url()} answered ${res.status()} ${await res.text().catch(() => '')}`))
      resolveDone()
      return
    }
    const body = JSON.parse(req.postData() ?? '{}')
    delivered += Array.isArray(body.batch) ? body.batch.length : 1
    if (delivered >= expected) resolveDone()
  })

  await page.goto(pageURL)
  await withTimeout(
    Promise.race([
      done,
      page.waitForFunction(() => window.fpError).then(async () => {
        errors.push(new Error(await page.evaluate(() => window.fpError)))
      }),
    ]),
    30000,
    `waiting for ${expected} events to be accepted`,
  )
  summary = { sdk, delivered, userAgent: await page.evaluate(() => navigator.userAgent) }
} catch (e) {
  errors.unshift(e)
} finally {
  await context?.close().catch(() => {})
  rmSync(profile, { recursive: true, force: true })
}
if (errors.length) fail(sdk, errors)
console.log(JSON.stringify(summary))
