/**
 * Invoking a function as API Gateway does (Lambda context, the 29 s integration timeout, counting handler errors),
 * and tracking the work that `whenIdle()` and `close()` wait for.
 */
import { createLambdaContext, invokeHandler } from '../lambda-events.ts';
import type { GatewayFunction, GatewayState, InvokeOutcome } from './types.ts';
import { describeError } from './util.ts';

/** Registers work that `whenIdle`/`close` wait for. The returned promise never rejects (errors are logged). */
export function track(gw: GatewayState, promise: Promise<unknown>): Promise<void> {
  const tracked = promise.then(
    () => {},
    (err: unknown) => {
      gw.log('error', 'unexpected gateway error', { error: describeError(err) });
    },
  );
  gw.inflight.add(tracked);
  void tracked.finally(() => gw.inflight.delete(tracked));
  return tracked;
}

/** Resolves when no tracked work is in flight. */
export async function whenIdle(gw: GatewayState): Promise<void> {
  while (gw.inflight.size > 0) await Promise.allSettled([...gw.inflight]);
}

/** Runs `fn` with `event`; a throw, a rejection or the integration timeout is an outcome, never an exception. */
export async function invoke(
  gw: GatewayState,
  fn: GatewayFunction,
  defaultName: string,
  event: unknown,
): Promise<InvokeOutcome> {
  const { region, accountId, integrationTimeoutMs } = gw.config;
  const context = createLambdaContext({
    functionName: fn.functionName ?? defaultName,
    timeoutSeconds: fn.timeoutSeconds,
    memoryMB: fn.memoryMB,
    region,
    accountId,
  });
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<InvokeOutcome>((resolve) => {
    timer = setTimeout(
      () =>
        resolve({ ok: false, timedOut: true, error: new Error(`integration timeout (${integrationTimeoutMs} ms)`) }),
      integrationTimeoutMs,
    );
  });
  const run = invokeHandler(fn.handler, event, context).then(
    (result): InvokeOutcome => ({ ok: true, result }),
    (error: unknown): InvokeOutcome => ({ ok: false, timedOut: false, error }),
  );
  try {
    const outcome = await Promise.race([run, timeout]);
    if (!outcome.ok) gw.stats.handlerErrors++;
    return outcome;
  } finally {
    clearTimeout(timer);
  }
}
