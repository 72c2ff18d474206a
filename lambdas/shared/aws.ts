/**
 * SDK clients. Endpoints and region come from the environment only (`AWS_REGION`, `AWS_ENDPOINT_URL_<SERVICE>`),
 * so the same code talks to AWS or to the local runtime's stand-ins without knowing which.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';

/**
 * What every client in `lambdas/` but DynamoDB's is created with. `cacheMiddleware`: the SDK resolves a client's
 * middleware stack once per command class instead of on every call (a documented client option; it ignores
 * middleware added after a client's first call, and nothing here adds any; a call given per-call options would skip
 * and drop the cache, and none is). Measured (scratch, alternated, 2026-12-02): a `PostToConnection` of a 20 KB frame
 * took ~250 µs of CPU instead of ~380 µs; docs/scaling.md, "Measured constants". The DynamoDB document client refuses
 * the option (lib-dynamodb throws at its creation), so `createDocumentClient` does without it. The server SDK
 * (lambdas/sdk/publisher.ts) keeps the SDK's default: its users may add middleware to the client they pass.
 */
export const clientConfig = { cacheMiddleware: true } as const;

export function createDocumentClient(): DynamoDBDocumentClient {
  return DynamoDBDocumentClient.from(new DynamoDBClient({}), {
    marshallOptions: { removeUndefinedValues: true, convertClassInstanceToMap: false },
  });
}
