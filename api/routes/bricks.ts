// POST /bricks/to-evict/{id}
import { startBrickEvict } from '../../src/evict.ts'
import { decodeBodyIfSent, Validation } from '../http.ts'
import { type Api, addRoute } from '../server.ts'
import { HEALCHECKS } from '../validate.ts'

export function registerBrickRoutes(api: Api): void {
  addRoute(api, {
    method: 'POST',
    path: '/bricks/to-evict/{id}',
    handler: async (req, reply) => {
      const { healcheck } = decodeBodyIfSent(req, { healcheck: 'string' })
      const v = new Validation()
      if (!(HEALCHECKS as readonly string[]).includes(healcheck)) {
        v.add('healcheck', `${healcheck} is not valid heal info check`)
      }
      v.throwIfAny()
      return api.startJob(reply, () => startBrickEvict(api.ctx, req.params.id, healcheck))
    },
  })
}
