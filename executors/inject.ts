// Fault injection (heketi's `inject/ssh`, `inject/mock` executors): match a
// command by pattern, then fail it, hang it, time it out (it runs, but its
// answer is lost), or kill the whole process. Used by the rollback and
// crash-recovery tests; never enabled by default.
import type { Executor } from './executor.ts'
import { NodeCommandError } from './executor.ts'
import type { BatchOptions, CommandResult, CommandRunner } from './runner.ts'

export interface InjectionRule {
  /** regular expression tested against the command text */
  pattern: string
  /** `timeout`: the command runs on the node, then the caller sees a transport timeout */
  action: 'fail' | 'hang' | 'crash' | 'timeout'
  /** stderr of the injected failure */
  message?: string
  /** how many matches trigger (default: every one) */
  count?: number
  /** matches to let through before triggering (default 0) */
  skip?: number
}

/** what the ssh runner reports when a command outlives its timeout */
const TIMEOUT_TEXT = 'SSH command timeout'

export class Injector {
  private rules: { rule: InjectionRule; re: RegExp; seen: number; fired: number }[] = []

  constructor(rules: InjectionRule[]) {
    this.setRules(rules)
  }

  /** Replace the rules (tests reuse one executor for many fault cases). */
  setRules(rules: InjectionRule[]): void {
    this.rules = rules.map((rule) => ({ rule, re: new RegExp(rule.pattern), seen: 0, fired: 0 }))
  }

  /** how many times any rule fired since the last setRules */
  get fired(): number {
    return this.rules.reduce((n, r) => n + r.fired, 0)
  }

  static fromConfig(injectexec: Record<string, unknown>): Injector {
    const raw = (injectexec['command_injection'] ?? injectexec['rules'] ?? []) as InjectionRule[]
    return new Injector(Array.isArray(raw) ? raw : [])
  }

  /** What to do with this command, if anything. */
  match(command: string): InjectionRule | undefined {
    for (const r of this.rules) {
      if (!r.re.test(command)) continue
      r.seen++
      if (r.seen <= (r.rule.skip ?? 0)) continue
      if (r.rule.count !== undefined && r.fired >= r.rule.count) continue
      r.fired++
      return r.rule
    }
    return undefined
  }

  /** Carry out a matched rule; resolves only for 'fail' (with the error to raise). */
  async act(rule: InjectionRule, host: string, command: string): Promise<NodeCommandError> {
    if (rule.action === 'crash') {
      process.kill(process.pid, 'SIGKILL')
    }
    if (rule.action === 'hang') await new Promise(() => {})
    return new NodeCommandError(rule.message ?? `injected failure: ${command}`, host, command, 1)
  }
}

/** Wraps a runner: a matching command "fails" with exit 1 and the rule's stderr. */
export class InjectingRunner implements CommandRunner {
  constructor(
    private readonly inner: CommandRunner,
    private readonly injector: Injector,
  ) {}

  async runBatch(host: string, commands: string[], opts: BatchOptions): Promise<CommandResult[]> {
    let rule: InjectionRule | undefined
    const i = commands.findIndex((c) => {
      rule = this.injector.match(c)
      return rule !== undefined
    })
    if (i < 0 || !rule) return this.inner.runBatch(host, commands, opts)
    if (rule.action === 'timeout') {
      // the node did the work up to this command; the answer never arrives
      await this.inner.runBatch(host, commands.slice(0, i + 1), opts)
      throw new Error(rule.message ?? TIMEOUT_TEXT)
    }
    const before = i > 0 ? await this.inner.runBatch(host, commands.slice(0, i), opts) : []
    if (before.some((r) => r.exitCode !== 0)) return before
    const err = await this.injector.act(rule, host, commands[i]!)
    return [...before, { command: commands[i]!, exitCode: 1, stdout: '', stderr: err.message }]
  }

  close(): Promise<void> {
    return this.inner.close()
  }
}

/**
 * Wraps any executor at the action level; the "command" matched is
 * `<action> <json arguments>`, e.g. `brickCreate {"host":"n1",...}`.
 */
export function injectingExecutor(inner: Executor, injector: Injector): Executor {
  return new Proxy(inner, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver)
      if (typeof value !== 'function' || prop === 'close') return value
      return async (...args: unknown[]) => {
        const text = `${String(prop)} ${JSON.stringify(args)}`
        const rule = injector.match(text)
        if (rule?.action === 'timeout') {
          await value.apply(target, args)
          throw new Error(rule.message ?? TIMEOUT_TEXT)
        }
        if (rule)
          throw await injector.act(rule, String((args[0] as { host?: string })?.host ?? args[0]), text)
        return value.apply(target, args)
      }
    },
  })
}
