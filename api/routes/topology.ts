// /nodes and /devices

import type { EntityState } from '../../db/entries.ts'
import { deviceNameProblems, hostnameProblems } from '../../src/command-values.ts'
import type { AppContext, Job } from '../../src/context.ts'
import {
  addDevice,
  deleteDevice,
  getDevice,
  resyncDevice,
  setDeviceState,
  setDeviceTags,
} from '../../src/devices.ts'
import { addNode, deleteNode, getNode, setNodeState, setNodeTags, type TagChange } from '../../src/nodes.ts'
import { decodeBody, decodeBodyIfSent, sendJson, Validation } from '../http.ts'
import { type Api, addRoute, addViewRoute } from '../server.ts'
import { addProblems, checkAtLeastOne, checkTags, checkUuid, HEALCHECKS, STATES } from '../validate.ts'
import { deviceView, nodeView, sortedMap } from '../views.ts'

const stateSchema = { state: 'string', healcheck: 'string' } as const
const tagsSchema = { change_type: 'string', tags: { map: 'string' } } as const

function validateState(body: { state: string; healcheck: string }): void {
  const v = new Validation()
  if (body.state === '') v.add('state', 'cannot be blank')
  else if (!(STATES as readonly string[]).includes(body.state))
    v.add('state', `${body.state} is not valid state`)
  if (!(HEALCHECKS as readonly string[]).includes(body.healcheck)) {
    v.add('healcheck', `${body.healcheck} is not valid heal info check`)
  }
  v.throwIfAny()
}

function validateTagChange(body: { change_type: string; tags: Record<string, string> }): TagChange {
  const v = new Validation()
  if (body.change_type === '') v.add('change_type', 'cannot be blank')
  else if (!['set', 'update', 'delete'].includes(body.change_type))
    v.add('change_type', 'must be a valid value')
  checkTags(v, body.tags)
  v.throwIfAny()
  return body.change_type as TagChange
}

type StateSetter = (ctx: AppContext, id: string, state: EntityState, healcheck: string) => Job
type TagsSetter = (
  ctx: AppContext,
  id: string,
  change: TagChange,
  tags: Record<string, string>,
) => Promise<Record<string, string>>

/** POST /nodes/{id}/state and /devices/{id}/state share body, rules and answers. */
function addStateRoute(api: Api, path: string, setState: StateSetter): void {
  addRoute(api, {
    method: 'POST',
    path,
    handler: async (req, reply) => {
      const body = decodeBody(req, stateSchema)
      validateState(body)
      return api.startJob(reply, () =>
        setState(api.ctx, req.params.id, body.state as EntityState, body.healcheck),
      )
    },
  })
}

/** POST /nodes/{id}/tags and /devices/{id}/tags */
function addTagsRoute(api: Api, path: string, setTags: TagsSetter): void {
  addRoute(api, {
    method: 'POST',
    path,
    handler: async (req, reply) => {
      const body = decodeBody(req, tagsSchema)
      const change = validateTagChange(body)
      return sendJson(reply, 200, sortedMap(await setTags(api.ctx, req.params.id, change, body.tags)))
    },
  })
}

export function registerTopologyRoutes(api: Api): void {
  const { ctx } = api

  addRoute(api, {
    method: 'POST',
    path: '/nodes',
    handler: async (req, reply) => {
      const body = decodeBody(req, {
        zone: 'int',
        hostnames: { object: { manage: { array: 'string' }, storage: { array: 'string' } } },
        cluster: 'string',
        tags: { map: 'string' },
      })
      const v = new Validation()
      checkAtLeastOne(v, 'zone', body.zone)
      const hv = new Validation()
      for (const kind of ['manage', 'storage'] as const) {
        if (body.hostnames[kind].length === 0) hv.add(kind, 'cannot be blank')
      }
      addProblems(hv, hostnameProblems(body.hostnames))
      if (!hv.empty) v.add('hostnames', hv.nested())
      checkUuid(v, 'cluster', body.cluster)
      checkTags(v, body.tags)
      v.throwIfAny()
      return api.startJob(reply, () => addNode(ctx, body))
    },
  })

  addViewRoute(api, '/nodes/{id}', (tx, id) => nodeView(tx, getNode(tx, id)))

  addRoute(api, {
    method: 'DELETE',
    path: '/nodes/{id}',
    handler: async (req, reply) => api.startJob(reply, () => deleteNode(ctx, req.params.id)),
  })

  addStateRoute(api, '/nodes/{id}/state', setNodeState)

  addTagsRoute(api, '/nodes/{id}/tags', setNodeTags)

  addRoute(api, {
    method: 'POST',
    path: '/devices',
    handler: async (req, reply) => {
      const body = decodeBody(req, {
        name: 'string',
        node: 'string',
        tags: { map: 'string' },
        destroydata: 'bool',
      })
      const v = new Validation()
      if (body.name === '') v.add('name', 'cannot be blank')
      else addProblems(v, deviceNameProblems(body.name))
      checkUuid(v, 'node', body.node)
      checkTags(v, body.tags)
      v.throwIfAny()
      return api.startJob(reply, () => addDevice(ctx, body))
    },
  })

  addViewRoute(api, '/devices/{id}', (tx, id) => deviceView(tx, getDevice(tx, id)))

  addRoute(api, {
    method: 'DELETE',
    path: '/devices/{id}',
    handler: async (req, reply) => {
      const { forceforget } = decodeBodyIfSent(req, { forceforget: 'bool' })
      return api.startJob(reply, () => deleteDevice(ctx, req.params.id, forceforget))
    },
  })

  addStateRoute(api, '/devices/{id}/state', setDeviceState)

  addRoute(api, {
    method: 'GET',
    path: '/devices/{id}/resync',
    handler: async (req, reply) => {
      const location = `/queue/${await api.enqueue(resyncDevice(ctx, req.params.id))}`
      // heketi's reply comes from Go's redirect helper, hence the HTML body
      return reply
        .code(202)
        .header('location', location)
        .header('content-type', 'text/html; charset=utf-8')
        .send(`<a href="${location}">Accepted</a>.\n\n`)
    },
  })

  addTagsRoute(api, '/devices/{id}/tags', setDeviceTags)
}
