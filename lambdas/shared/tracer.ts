/**
 * Tracing (X-Ray through the Powertools Tracer), in its own module: importing the Tracer loads the X-Ray SDK, whose
 * automatic mode turns on async hooks that track every promise of the process, traced or not: about 60 % more CPU
 * per AWS call, measured (docs/operations.md, "Traces"). The functions that run for every published message do not
 * import this module; the others do (`inProcessTracing` in lambdas/manifest.ts says which).
 */
import { Tracer } from '@aws-lambda-powertools/tracer';

/** One per function, at module scope. `POWERTOOLS_TRACE_ENABLED=false` turns it off (no X-Ray daemon). */
export function createTracer(): Tracer {
  return new Tracer({ serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? 'tenantcast' });
}
