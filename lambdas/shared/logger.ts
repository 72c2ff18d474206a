import { Logger } from '@aws-lambda-powertools/logger';

/** One Powertools logger per function; service name and level come from the environment CDK sets. */
export function createLogger(): Logger {
  return new Logger({ serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? 'tenantcast' });
}
