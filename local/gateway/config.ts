/**
 * The gateway's options with their defaults applied (manifest limits, API Gateway's quotas), validated, and the
 * default logger. Pure: no server, no state.
 */
import {
  limits as manifestLimits,
  routeSelectionExpression as manifestRouteSelection,
} from '../../lambdas/manifest.ts';
import type { GatewayConfig, GatewayLogger, GatewayOptions } from './types.ts';

/** The gateway's settings from its options; throws on an invalid per-connection bound. */
export function resolveConfig(options: GatewayOptions): GatewayConfig {
  const maxInflightPerConnection = options.maxInflightPerConnection ?? 8;
  if (!Number.isInteger(maxInflightPerConnection) || maxInflightPerConnection < 1) {
    throw new Error(`maxInflightPerConnection must be a positive integer, got ${maxInflightPerConnection}`);
  }
  const maxQueuedPerConnection = options.maxQueuedPerConnection ?? 64;
  if (!Number.isInteger(maxQueuedPerConnection) || maxQueuedPerConnection < 0) {
    throw new Error(`maxQueuedPerConnection must be a non-negative integer, got ${maxQueuedPerConnection}`);
  }
  return {
    host: options.host ?? '127.0.0.1',
    wsPath: options.wsPath ?? '/ws',
    stage: options.stage ?? 'local',
    apiId: options.apiId ?? 'local',
    region: options.region ?? 'us-east-1',
    accountId: options.accountId ?? '000000000000',
    stageVariables: options.stageVariables,
    frameBytes: options.frameBytes ?? manifestLimits.frameBytes,
    idleTimeoutMs: options.idleTimeoutMs ?? manifestLimits.idleTimeoutSeconds * 1000,
    maxConnectionMs: options.maxConnectionMs ?? manifestLimits.maxConnectionSeconds * 1000,
    postPayloadBytes: options.postPayloadBytes ?? 128 * 1024,
    clientBufferBytes: options.clientBufferBytes ?? 1024 * 1024,
    integrationTimeoutMs: options.integrationTimeoutMs ?? 29_000,
    closeGraceMs: options.closeGraceMs ?? 1000,
    maxInflightPerConnection,
    maxQueuedPerConnection,
    faultInjection: options.faultInjection ?? false,
    selectionPath: parseSelectionExpression(options.routeSelectionExpression ?? manifestRouteSelection),
  };
}

/** The keys of a `$request.body.<path>` route selection expression (the only kind supported). */
export function parseSelectionExpression(expression: string): string[] {
  const prefix = '$request.body.';
  if (!expression.startsWith(prefix) || expression.length === prefix.length) {
    throw new Error(`unsupported route selection expression ${expression}: only ${prefix}<path> is supported`);
  }
  return expression.slice(prefix.length).split('.');
}

/** console, without debug lines. */
export const defaultLogger: GatewayLogger = (level, message, fields) => {
  if (level === 'debug') return;
  const line = `[gateway] ${message}`;
  const out = level === 'error' ? console.error : level === 'warn' ? console.warn : console.log;
  if (fields && Object.keys(fields).length > 0) out(line, fields);
  else out(line);
};
