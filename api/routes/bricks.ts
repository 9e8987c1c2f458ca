// POST /bricks/to-evict/{id}
import { startBrickEvict } from '../../src/evict.ts'
import { decodeBody, rawBody, Validation } from '../http.ts'
import { type Api, addRoute } from '../server.ts'
import { HEALCHECKS } from '../validate.ts'

export function registerBrickRoutes(api: Api): void {
  addRoute(api, {
    method: 'POST',
    path: '/bricks/to-evict/{id}',
    handler: async (req, reply) => {
      // heketi decodes this body only when one was sent
      const length = Number(req.headers['content-length'] ?? 0)
      const healcheck =
        length > 0 && rawBody(req) !== '' ? decodeBody(req, { healcheck: 'string' }).healcheck : ''
      const v = new Validation()
      if (!(HEALCHECKS as readonly string[]).includes(healcheck)) {
        v.add('healcheck', `${healcheck} is not valid heal info check`)
      }
      v.throwIfAny()
      return api.startJob(reply, () => startBrickEvict(api.ctx, req.params.id, healcheck))
    },
  })
}
