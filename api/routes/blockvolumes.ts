// /blockvolumes
import {
  createBlockVolume,
  deleteBlockVolume,
  expandBlockVolume,
  getVisibleBlockVolume,
} from '../../src/blockvolumes.ts'
import { isBlockVolumeVisible } from '../../src/clusters.ts'
import { volumeNameProblems } from '../../src/command-values.ts'
import { Errors } from '../../src/errors.ts'
import { decodeBody, sendJson, Validation } from '../http.ts'
import { type Api, addRoute } from '../server.ts'
import { addProblems, checkAtLeastOne } from '../validate.ts'
import { blockVolumeView } from '../views.ts'

const createSchema = {
  size: 'int',
  clusters: { array: 'string' },
  name: 'string',
  hacount: 'int',
  auth: 'bool',
} as const

export function registerBlockVolumeRoutes(api: Api): void {
  const { ctx } = api

  addRoute(api, {
    method: 'POST',
    path: '/blockvolumes',
    handler: async (req, reply) => {
      const body = decodeBody(req, createSchema)
      const v = new Validation()
      checkAtLeastOne(v, 'size', body.size)
      addProblems(v, volumeNameProblems(body.name))
      if (body.hacount !== 0 && body.hacount < 1) v.add('hacount', 'must be no less than 1')
      v.throwIfAny()
      return api.startJob(reply, () => createBlockVolume(ctx, body))
    },
  })

  addRoute(api, {
    method: 'GET',
    path: '/blockvolumes',
    handler: async (_req, reply) =>
      sendJson(reply, 200, {
        blockvolumes: ctx.store.read((tx) =>
          tx
            .values('blockvolume')
            .filter(isBlockVolumeVisible)
            .map((bv) => bv.id),
        ),
      }),
  })

  addRoute(api, {
    method: 'GET',
    path: '/blockvolumes/{id}',
    handler: async (req, reply) =>
      sendJson(reply, 200, blockVolumeView(getVisibleBlockVolume(ctx, req.params.id))),
  })

  addRoute(api, {
    method: 'DELETE',
    path: '/blockvolumes/{id}',
    handler: async (req, reply) => api.startJob(reply, () => deleteBlockVolume(ctx, req.params.id)),
  })

  addRoute(api, {
    method: 'POST',
    path: '/blockvolumes/{id}/expand',
    handler: async (req, reply) => {
      const body = decodeBody(req, { new_size: 'int' })
      const v = new Validation()
      if (body.new_size === 0) v.add('new_size', 'cannot be blank')
      v.throwIfAny()
      if (body.new_size < 1) throw Errors.invalidBlockVolumeSize()
      return api.startJob(reply, () => expandBlockVolume(ctx, req.params.id, body.new_size))
    },
  })
}
