// /operations, /operations/pending, /operations/pending/{id}, cleanup
import type { ChangeKind } from '../../db/entries.ts'
import { Errors } from '../../src/errors.ts'
import type { HealProgress } from '../../src/heal.ts'
import { ID_PATTERN } from '../../src/ids.ts'
import { cleanOperations, throwIfNotCleaned } from '../../src/operations/cleaner.ts'
import type { RebalanceProgress } from '../../src/rebalance.ts'
import { decodeBody, sendJson, Validation } from '../http.ts'
import { type Api, addRoute } from '../server.ts'

const DESCRIPTIONS: Record<ChangeKind, string> = {
  unknown: 'Unknown',
  'add-brick': 'Add brick',
  'add-volume': 'Add volume',
  'delete-brick': 'Delete brick',
  'delete-volume': 'Delete volume',
  'expand-volume': 'Expand volume',
  'add-block-volume': 'Add block volume',
  'delete-block-volume': 'Delete block volume',
  'remove-device': 'Remove device',
  'clone-volume': 'Clone volume from',
  'snapshot-volume': 'Snapshot volume',
  'add-volume-clone': 'Expand volume to',
  'child-operation': 'Performing child operation',
  'parent-operation': 'Belongs to parent operation',
  'expand-block-volume': 'Expand block volume',
}

function healView(h: HealProgress) {
  return {
    volume: h.volume,
    pending_entries: Number.isNaN(h.pendingEntries) ? -1 : h.pendingEntries,
    per_brick: h.perBrick,
    started: Math.floor(h.startedAt / 1000),
    finished: h.finishedAt !== undefined,
    seconds: Math.round(((h.finishedAt ?? Date.now()) - h.startedAt) / 1000),
    heal_starts: h.triggers,
    error: h.lastError,
  }
}

/** The rebalance after an expand: pending (journaled start) → started → completed/failed/… */
function rebalanceView(r: RebalanceProgress) {
  const since = r.startedAt ?? r.requestedAt
  return {
    volume: r.volume,
    volume_id: r.volumeId,
    state: r.phase,
    gluster_status: r.gluster,
    ...(r.recordId ? { operation: r.recordId } : {}),
    requested: Math.floor(r.requestedAt / 1000),
    ...(r.startedAt !== undefined ? { started: Math.floor(r.startedAt / 1000) } : {}),
    seconds: Math.round(((r.finishedAt ?? Date.now()) - since) / 1000),
    start_attempts: r.startAttempts,
    files: r.files,
    failures: r.failures,
    error: r.lastError,
  }
}

/** A replacement held back because its brick is still a heal source. */
function waitingView(w: { volume: string; brick: string; entries: number; since: number } | undefined) {
  if (!w) return {}
  return {
    waiting_for_heal: {
      volume: w.volume,
      brick: w.brick,
      entries: w.entries,
      seconds: Math.round((Date.now() - w.since) / 1000),
    },
  }
}

export function registerOperationRoutes(api: Api): void {
  const { ctx } = api

  addRoute(api, {
    method: 'GET',
    path: '/operations',
    handler: async (_req, reply) => {
      const ops = ctx.store.read((tx) => tx.values('pendingop'))
      const heals = ctx.heal.list()
      const rebalances = ctx.rebalance.list()
      return sendJson(reply, 200, {
        total: ops.length,
        in_flight: ctx.throttle.inFlight,
        stale: ops.filter((o) => o.status === 'stale').length,
        failed: ops.filter((o) => o.status === 'failed').length,
        new: ops.filter((o) => o.status === '').length,
        // beyond heketi, only once a brick was replaced: heketi's answer otherwise
        ...(heals.length > 0 ? { heals: heals.map(healView) } : {}),
        // beyond heketi, only after an expand: heketi's answer otherwise
        ...(rebalances.length > 0 ? { rebalances: rebalances.map(rebalanceView) } : {}),
      })
    },
  })

  addRoute(api, {
    method: 'GET',
    path: '/operations/pending',
    handler: async (_req, reply) =>
      sendJson(reply, 200, {
        pendingoperations: ctx.store.read((tx) =>
          tx.values('pendingop').map((o) => ({
            id: o.id,
            type_name: o.type,
            status: o.status,
            sub_status: ctx.running.has(o.id) ? 'in-flight' : '',
            ...waitingView(ctx.heal.waiting.get(o.id)),
          })),
        ),
      }),
  })

  addRoute(api, {
    method: 'GET',
    path: '/operations/pending/{id}',
    handler: async (req, reply) => {
      const op = ctx.store.read((tx) => tx.get('pendingop', req.params.id))
      if (!op) throw Errors.operationNotFound(req.params.id)
      return sendJson(reply, 200, {
        id: op.id,
        type_name: op.type,
        status: op.status,
        sub_status: '',
        changes: op.actions.map((a) => ({ id: a.id, description: DESCRIPTIONS[a.change] })),
      })
    },
  })

  addRoute(api, {
    method: 'POST',
    path: '/operations/pending/cleanup',
    handler: async (req, reply) => {
      const body = decodeBody(req, { operations: { array: 'string' } })
      const v = new Validation()
      if (body.operations.length > 32) {
        v.add('operations', `too many ids specified (${body.operations.length}), up to 32 supported`)
      } else {
        const bad = body.operations.find((id) => !ID_PATTERN.test(id))
        if (bad !== undefined) v.add('operations', `${bad} is not a valid UUID`)
      }
      v.throwIfAny()
      return api.accept(reply, async () => {
        // heketi answers 204 whatever happened; heqet names what it could not clean
        throwIfNotCleaned(await cleanOperations(ctx, body.operations))
        return undefined
      })
    },
  })
}
