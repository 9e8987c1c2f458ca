// Parsers of node command output: LVM, udev and gluster --xml.
import t from 'tap'
import {
  parseCliStatus,
  parseHealInfoXml,
  parseSnapshotXml,
  parseVolumeInfoXml,
} from '../executors/commands/gluster-xml.ts'
import {
  isLvmNotFound,
  parseLvmIdentityReport,
  parseThinCount,
  parseUdevSymlinks,
  parseVgdisplay,
} from '../executors/commands/parse.ts'
import { parseXml, textAt } from '../executors/commands/xml.ts'

const VGDISPLAY_SAMPLE =
  '  vg_9f8e:r/w:772:-1:0:0:0:-1:0:1:1:524156928:4096:127968:25728:102240:AbCdEf-1234-5678\n'

t.test('vgdisplay -c: fields 13/15/14 × field 12', async (t) => {
  t.same(parseVgdisplay(VGDISPLAY_SAMPLE), {
    totalKiB: 127968 * 4096,
    usedKiB: 25728 * 4096,
    freeKiB: 102240 * 4096,
    extentSizeKiB: 4096,
  })
  t.throws(() => parseVgdisplay('a:b:c'), /vgdisplay returned an invalid string/)
  t.throws(
    () => parseVgdisplay(VGDISPLAY_SAMPLE.replace(':4096:', ':x:')),
    /vgdisplay returned an invalid string/,
  )
})

t.test('pvs/vgs JSON identity', async (t) => {
  const pvs = `  {
      "report": [
          {
              "pv": [
                  {"pv_name":"/dev/sdb", "pv_uuid":"AbCd-Ef12", "vg_name":"vg_x"}
              ]
          }
      ]
  }`
  t.same(parseLvmIdentityReport(pvs, 'pv'), { pvName: '/dev/sdb', pvUuid: 'AbCd-Ef12', vgName: 'vg_x' })
  const vgs = '{"report":[{"vg":[{"pv_name":"/dev/sdb","pv_uuid":"U-1","vg_name":"vg_x"}]}]}'
  t.equal(parseLvmIdentityReport(vgs, 'vg').pvUuid, 'U-1')
  t.throws(() => parseLvmIdentityReport(vgs, 'pv'), /exactly one pv entry/)
  t.throws(() => parseLvmIdentityReport('{"report":[]}', 'pv'), /exactly one LVM report/)
  t.throws(
    () => parseLvmIdentityReport('{"report":[{"pv":[{"pv_uuid":"a"},{"pv_uuid":"b"}]}]}', 'pv'),
    /got 2/,
  )
  t.throws(() => parseLvmIdentityReport('not json', 'pv'), /unable to parse LVM report/)
})

t.test('udevadm symlinks', async (t) => {
  const out = 'disk/by-id/wwn-0x5000 disk/by-path/pci-0000:00:1f.2-ata-2 disk/by-id/lvm-pv-uuid-AbCd\n'
  t.same(parseUdevSymlinks(out, '/dev/sdb'), [
    '/dev/disk/by-id/wwn-0x5000',
    '/dev/disk/by-path/pci-0000:00:1f.2-ata-2',
    '/dev/sdb',
  ])
  t.same(parseUdevSymlinks('', '/dev/sdb'), ['/dev/sdb'])
  t.same(parseUdevSymlinks('sdb disk/x', '/dev/sdb'), ['/dev/sdb', '/dev/disk/x'])
})

t.test('thin count and not-found wording', async (t) => {
  t.equal(parseThinCount('  1\n'), 1)
  t.equal(parseThinCount('0'), 0)
  t.throws(() => parseThinCount(''), /invalid syntax/)
  t.throws(() => parseThinCount('one'), /invalid syntax/)
  t.ok(isLvmNotFound('  Failed to find logical volume "vg_x/tp_y"'))
  t.ok(isLvmNotFound('Volume group "vg_x" not found'))
  t.notOk(isLvmNotFound('Logical volume vg_x/brick_y contains a filesystem in use.'))
})

const VOLUME_INFO_XML = `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<cliOutput>
  <opRet>0</opRet>
  <opErrno>0</opErrno>
  <opErrstr/>
  <volInfo>
    <volumes>
      <volume>
        <name>vol_1</name>
        <id>6f0ae5f6-7a3c-4d6e-9a8e-0e3fb1c2d3e4</id>
        <status>1</status>
        <statusStr>Started</statusStr>
        <brickCount>3</brickCount>
        <replicaCount>3</replicaCount>
        <arbiterCount>1</arbiterCount>
        <typeStr>Replicate</typeStr>
        <bricks>
          <brick uuid="u1">10.0.0.11:/b1/brick<name>10.0.0.11:/b1/brick</name><hostUuid>u1</hostUuid><isArbiter>0</isArbiter></brick>
          <brick uuid="u2">10.0.0.12:/b2/brick<name>10.0.0.12:/b2/brick</name><hostUuid>u2</hostUuid><isArbiter>0</isArbiter></brick>
          <brick uuid="u3">10.0.0.13:/b3/brick<name>10.0.0.13:/b3/brick</name><hostUuid>u3</hostUuid><isArbiter>1</isArbiter></brick>
        </bricks>
        <optCount>2</optCount>
        <options>
          <option><name>user.heketi.id</name><value>abc</value></option>
          <option><name>auth.allow</name><value>10.0.0.*&amp;x</value></option>
        </options>
      </volume>
      <count>1</count>
    </volumes>
  </volInfo>
</cliOutput>`

t.test('volume info XML', async (t) => {
  const info = parseVolumeInfoXml(VOLUME_INFO_XML)
  t.equal(info.opRet, 0)
  t.equal(info.opErrstr, '')
  t.equal(info.volumes.length, 1)
  t.same(info.volumes[0], {
    name: 'vol_1',
    id: '6f0ae5f6-7a3c-4d6e-9a8e-0e3fb1c2d3e4',
    status: 1,
    bricks: [
      { name: '10.0.0.11:/b1/brick', hostUuid: 'u1', isArbiter: false },
      { name: '10.0.0.12:/b2/brick', hostUuid: 'u2', isArbiter: false },
      { name: '10.0.0.13:/b3/brick', hostUuid: 'u3', isArbiter: true },
    ],
    options: { 'user.heketi.id': 'abc', 'auth.allow': '10.0.0.*&x' },
  })
  const missing =
    '<cliOutput><opRet>-1</opRet><opErrno>30800</opErrno><opErrstr>Volume nope does not exist</opErrstr><volInfo/></cliOutput>'
  t.same(parseVolumeInfoXml(missing), {
    opRet: -1,
    opErrno: 30800,
    opErrstr: 'Volume nope does not exist',
    volumes: [],
  })
  t.throws(() => parseVolumeInfoXml('Connection failed. Please check if gluster daemon is operational.'))
  t.throws(() => parseVolumeInfoXml('<other/>'), /unexpected XML root/)
})

t.test('heal info XML', async (t) => {
  const xml = `<?xml version="1.0"?><cliOutput><healInfo><bricks>
    <brick hostUuid="u1"><name>10.0.0.11:/b1/brick</name><status>Connected</status><numberOfEntries>0</numberOfEntries></brick>
    <brick hostUuid="-"><name>information not available</name><status>Transport endpoint is not connected</status><numberOfEntries>-</numberOfEntries></brick>
  </bricks></healInfo><opRet>0</opRet><opErrno>0</opErrno><opErrstr/></cliOutput>`
  t.same(parseHealInfoXml(xml).bricks, [
    { name: '10.0.0.11:/b1/brick', status: 'Connected', numberOfEntries: '0' },
    {
      name: 'information not available',
      status: 'Transport endpoint is not connected',
      numberOfEntries: '-',
    },
  ])
})

t.test('snapshot XML', async (t) => {
  const create =
    '<cliOutput><opRet>0</opRet><opErrno>0</opErrno><opErrstr/><snapCreate><snapshot><name>tmpsnap_1</name><uuid>s-1</uuid></snapshot></snapCreate></cliOutput>'
  t.match(parseSnapshotXml(create), { opRet: 0, name: 'tmpsnap_1', uuid: 's-1' })
  const clone =
    '<cliOutput><opRet>0</opRet><opErrno>0</opErrno><opErrstr/><CloneCreate><volume><name>clone_1</name><uuid>c-1</uuid></volume></CloneCreate></cliOutput>'
  t.match(parseSnapshotXml(clone), { name: 'clone_1', uuid: 'c-1' })
  const failed =
    '<cliOutput><opRet>-1</opRet><opErrno>0</opErrno><opErrstr>Snapshot tmpsnap_1 already exists</opErrstr></cliOutput>'
  t.same(parseCliStatus(failed), { opRet: -1, opErrno: 0, opErrstr: 'Snapshot tmpsnap_1 already exists' })
})

t.test('XML reader', async (t) => {
  const doc = parseXml(
    `<?xml version="1.0"?><!-- c --><a x='1' y="&lt;2&gt;"><b>t&#65;&#x42;<![CDATA[<raw>]]></b><c/></a>`,
  )
  t.equal(doc.name, 'a')
  t.same(doc.attributes, { x: '1', y: '<2>' })
  t.equal(textAt(doc, 'b'), 'tAB<raw>')
  t.equal(doc.children[1].name, 'c')
  for (const bad of [
    '',
    '<a>',
    '<a></b>',
    '<a/><b/>',
    'text<a/>',
    '<a>&bogus;</a>',
    '<!DOCTYPE a><a/>',
    '<a x=1/>',
  ]) {
    t.throws(() => parseXml(bad), { name: 'XmlParseError' }, JSON.stringify(bad))
  }
})
