// The cuttable TCP proxy of the HA chaos run (test/e2e/lib/tcp-proxy.ts):
// forwards both ways, black-holes open and new connections when cut, and
// resets what it held when healed.
import { connect, createServer, type Socket } from 'node:net'
import t from 'tap'
import { CuttableProxy } from './e2e/lib/tcp-proxy.ts'

const echo = createServer((s) => s.pipe(s))
await new Promise<void>((r) => echo.listen(0, '127.0.0.1', () => r()))
t.teardown(() => new Promise<void>((r) => echo.close(() => r())))
const echoPort = (echo.address() as { port: number }).port

const open = (port: number) =>
  new Promise<Socket>((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => resolve(s))
    s.once('error', reject)
  })
/** what comes back within `ms` after writing `text` */
const roundTrip = (s: Socket, text: string, ms: number) =>
  new Promise<string>((resolve) => {
    let got = ''
    const on = (d: Buffer) => {
      got += d.toString()
      if (got === text) done()
    }
    const timer = setTimeout(() => done(), ms)
    const done = () => {
      clearTimeout(timer)
      s.off('data', on)
      resolve(got)
    }
    s.on('data', on)
    s.write(text)
  })

t.test('forwards, black-holes when cut, resets held connections when healed', async (t) => {
  const proxy = new CuttableProxy('127.0.0.1', echoPort)
  const port = await proxy.start()
  t.teardown(() => proxy.close())
  const a = await open(port)
  t.equal(await roundTrip(a, 'hello', 2000), 'hello', 'forwarded both ways')
  proxy.cut()
  t.equal(await roundTrip(a, 'lost', 300), '', 'an open connection carries nothing while cut')
  const b = await open(port)
  t.equal(await roundTrip(b, 'new', 300), '', 'a new connection is accepted but goes nowhere')
  const aClosed = new Promise<boolean>((r) => a.once('close', () => r(true)))
  b.on('error', () => {})
  a.on('error', () => {})
  proxy.heal()
  t.ok(await aClosed, 'healing resets the held connection')
  b.destroy()
  const c = await open(port)
  t.equal(await roundTrip(c, 'again', 2000), 'again', 'new connections are forwarded again')
  c.destroy()
})
