// /volumes
import { isVolumeListed } from '../../src/clusters.ts'
import { volumeNameProblems, volumeOptionProblems } from '../../src/command-values.ts'
import { Errors } from '../../src/errors.ts'
import {
  cloneVolume,
  createVolume,
  deleteVolume,
  expandVolume,
  getReadableVolume,
  setBlockRestriction,
} from '../../src/volumes.ts'
import { decodeBody, goJson, sendJsonText, Validation } from '../http.ts'
import { type Api, addRoute } from '../server.ts'
import { addProblems, checkAtLeastOne } from '../validate.ts'
import { volumeView } from '../views.ts'

const DISPERSE_COMBINATIONS = new Set(['2+1', '4+2', '8+3', '8+4'])

const createSchema = {
  size: 'int',
  name: 'string',
  clusters: { array: 'string' },
  durability: {
    object: {
      type: 'string',
      replicate: { object: { replica: 'int' } },
      disperse: { object: { data: 'int', redundancy: 'int' } },
    },
  },
  gid: 'int',
  glustervolumeoptions: { array: 'string' },
  block: 'bool',
  snapshot: { object: { enable: 'bool', factor: 'float' } },
} as const

export function registerVolumeRoutes(api: Api): void {
  const { ctx } = api

  addRoute(api, {
    method: 'POST',
    path: '/volumes',
    handler: async (req, reply) => {
      const body = decodeBody(req, createSchema)
      const v = new Validation()
      checkAtLeastOne(v, 'size', body.size)
      addProblems(v, volumeNameProblems(body.name))
      addProblems(v, volumeOptionProblems(body.glustervolumeoptions))
      v.throwIfAny()
      if (body.gid < 0) throw Errors.badGidLow()
      if (body.gid >= 2147483647) throw Errors.badGidHigh()
      const d = body.durability
      if (!['', 'none', 'replicate', 'disperse'].includes(d.type)) throw Errors.unknownDurability()
      if (body.size < 1) throw Errors.invalidVolumeSize()
      if (body.snapshot.enable && (body.snapshot.factor < 1 || body.snapshot.factor > 100)) {
        throw Errors.invalidSnapshotFactor()
      }
      if (d.type === 'replicate' && d.replicate.replica > 3) throw Errors.invalidReplica()
      if (
        d.type === 'disperse' &&
        !DISPERSE_COMBINATIONS.has(`${d.disperse.data}+${d.disperse.redundancy}`)
      ) {
        throw Errors.invalidDisperse(d.disperse.data, d.disperse.redundancy)
      }
      return api.startJob(reply, () =>
        createVolume(ctx, {
          ...body,
          durability: { ...d, type: d.type as 'none' | 'replicate' | 'disperse' | '' },
        }),
      )
    },
  })

  // the two hot reads: bodies kept until the next commit (BodyCache), and
  // answered before fastify when the request is an ordinary one (api/hot-reads.ts)
  const listBody = () =>
    api.bodies.get('/volumes', () =>
      goJson({
        volumes: ctx.store.read((tx) =>
          tx
            .values('volume')
            .filter((v) => isVolumeListed(tx, v))
            .map((v) => v.id),
        ),
      }),
    )
  const infoBody = (id: string) =>
    // keyed by the bare id (no key built per request); other keys start with `/`
    api.bodies.get(id, () => {
      const volume = getReadableVolume(ctx, id)
      return goJson(ctx.store.read((tx) => volumeView(tx, volume)))
    })
  api.hot.setBodies(listBody, infoBody)

  addRoute(api, {
    method: 'GET',
    path: '/volumes',
    // synchronous: answered when it returns, no promise per request
    handler: (_req, reply) => {
      sendJsonText(reply, 200, listBody())
      return undefined
    },
  })

  addRoute(api, {
    method: 'GET',
    path: '/volumes/{id}',
    handler: (req, reply) => {
      sendJsonText(reply, 200, infoBody(req.params.id))
      return undefined
    },
  })

  addRoute(api, {
    method: 'DELETE',
    path: '/volumes/{id}',
    handler: async (req, reply) => api.startJob(reply, () => deleteVolume(ctx, req.params.id)),
  })

  addRoute(api, {
    method: 'POST',
    path: '/volumes/{id}/expand',
    handler: async (req, reply) => {
      const body = decodeBody(req, { expand_size: 'int' })
      const v = new Validation()
      checkAtLeastOne(v, 'expand_size', body.expand_size)
      v.throwIfAny()
      return api.startJob(reply, () => expandVolume(ctx, req.params.id, body.expand_size))
    },
  })

  addRoute(api, {
    method: 'POST',
    path: '/volumes/{id}/clone',
    handler: async (req, reply) => {
      const body = decodeBody(req, { name: 'string' })
      const v = new Validation()
      addProblems(v, volumeNameProblems(body.name))
      v.throwIfAny()
      return api.startJob(reply, () => cloneVolume(ctx, req.params.id, body.name))
    },
  })

  addRoute(api, {
    method: 'POST',
    path: '/volumes/{id}/block-restriction',
    handler: async (req, reply) => {
      const body = decodeBody(req, { restriction: 'string' })
      const v = new Validation()
      if (body.restriction !== '' && body.restriction !== 'locked')
        v.add('restriction', 'must be a valid value')
      v.throwIfAny()
      return api.startJob(reply, () =>
        setBlockRestriction(ctx, req.params.id, body.restriction as '' | 'locked'),
      )
    },
  })
}
