/**
 * Wiring from the manifest: the gateway's authorizer and routes for lambdas/manifest.ts's WebSocket functions.
 */

import { functions as manifestFunctions } from '../../lambdas/manifest.ts';
import type { AnyLambdaHandler } from '../lambda-events.ts';
import type { GatewayAuthorizer, GatewayRoute } from './types.ts';

/**
 * Gateway `authorizer` and `routes` for the manifest's WebSocket functions, given their handlers by function name.
 * Throws if a WebSocket function of the manifest has no handler.
 */
export function websocketRoutesFromManifest(
  handlers: Readonly<Record<string, AnyLambdaHandler | undefined>>,
  specs: typeof manifestFunctions = manifestFunctions,
): { authorizer?: GatewayAuthorizer; routes: Record<string, GatewayRoute> } {
  const routes: Record<string, GatewayRoute> = {};
  let authorizer: GatewayAuthorizer | undefined;
  for (const spec of specs) {
    const trigger = spec.trigger;
    if (trigger.kind !== 'websocket' && trigger.kind !== 'websocket-authorizer') continue;
    const handler = handlers[spec.name];
    if (!handler) throw new Error(`no handler given for WebSocket function ${spec.name}`);
    const fn = { handler, functionName: spec.name, timeoutSeconds: spec.timeoutSeconds, memoryMB: spec.memoryMB };
    if (trigger.kind === 'websocket-authorizer') {
      authorizer = fn;
      continue;
    }
    for (const key of trigger.routes) {
      if (routes[key]) throw new Error(`route ${key} is bound twice in the manifest`);
      routes[key] = { ...fn, returnResponse: trigger.returnResponse };
    }
  }
  return authorizer ? { authorizer, routes } : { routes };
}
