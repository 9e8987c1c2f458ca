// prefixEnd (db/etcd-keys.ts): the end of an etcd key range, as etcd's clientv3.GetPrefixRangeEnd.
import t from 'tap'
import { prefixEnd } from '../db/etcd-keys.ts'

t.test('the range end of a prefix', async (t) => {
  t.equal(prefixEnd(Buffer.from('heqet/_meta/election/')).toString(), 'heqet/_meta/election0')
  t.same([...prefixEnd(Buffer.from([0x61, 0xff, 0xff]))], [0x62], 'trailing 0xff bytes are dropped')
  t.same([...prefixEnd(Buffer.from([0xff, 0xff]))], [0], 'all 0xff: every key from the prefix on')
  const start = Buffer.from('ab')
  prefixEnd(start)
  t.equal(start.toString(), 'ab', 'the prefix itself is not changed')
})
