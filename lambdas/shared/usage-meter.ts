/** Usage metering for a handler (lambdas/core/usage.ts): count during the invocation, flush once at its end. */
import type { Logger } from '@aws-lambda-powertools/logger';
import { requireEnv } from '../core/env.ts';
import { type UsageCounter, UsageMeter } from '../core/usage.ts';
import { createDocumentClient } from './aws.ts';

export interface HandlerUsage {
  add(tenantId: string, counter: UsageCounter, amount?: number): void;
  /** Writes what was counted. A metering failure is logged, never fails the request it counts. */
  flush(): Promise<void>;
}

export function createUsage(logger: Logger): HandlerUsage {
  const meter = new UsageMeter({ client: createDocumentClient(), tableName: requireEnv('TABLE_NAME') });
  return {
    add: (tenantId, counter, amount) => meter.add(tenantId, counter, amount),
    flush: async () => {
      try {
        await meter.flush();
      } catch (err) {
        logger.warn('usage not recorded yet: kept for the next flush of this instance', { error: err as Error });
      }
    },
  };
}
