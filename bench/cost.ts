/**
 * A modeled AWS bill from counted calls. Prices are the public list prices the project compares against (us-east-1,
 * on-demand; see docs/ and the benchmark report), not a quote.
 */
export const prices = {
  /** API Gateway WebSocket: per million messages, each 32 KB (or part) of a message is one. */
  apiGatewayMessagesPerMillion: 1.0,
  apiGatewayConnectionMinutesPerMillion: 0.25,
  /** Lambda arm64. */
  lambdaRequestsPerMillion: 0.2,
  lambdaGbSecond: 0.0000133334,
  sqsRequestsPerMillion: 0.4,
  dynamoReadUnitsPerMillion: 0.125,
  dynamoWriteUnitsPerMillion: 0.625,
  /** AppSync Events: every publish and every delivery is one operation. */
  appSyncOperationsPerMillion: 1.0,
  appSyncConnectionMinutesPerMillion: 0.08,
} as const;

export interface Usage {
  /** Messages delivered to clients. */
  deliveries: number;
  /** Frames clients sent (publishes etc.): API Gateway bills inbound messages too. */
  inboundMessages: number;
  /** Outbound frames (PostToConnection calls and route responses), in 32 KB units. */
  outboundMessageUnits: number;
  connectionMinutes: number;
  lambdaInvocations: number;
  /** Σ billed duration × memory, in GB-seconds. */
  lambdaGbSeconds: number;
  sqsRequests: number;
  dynamoReadUnits: number;
  dynamoWriteUnits: number;
  /** Messages published (AppSync counts each as an operation). */
  publishes: number;
}

export interface CostBreakdown {
  apiGateway: number;
  lambda: number;
  sqs: number;
  dynamo: number;
  total: number;
}

export function tenantcastCost(u: Usage): CostBreakdown {
  const m = 1_000_000;
  const apiGateway =
    ((u.inboundMessages + u.outboundMessageUnits) / m) * prices.apiGatewayMessagesPerMillion +
    (u.connectionMinutes / m) * prices.apiGatewayConnectionMinutesPerMillion;
  const lambda =
    (u.lambdaInvocations / m) * prices.lambdaRequestsPerMillion + u.lambdaGbSeconds * prices.lambdaGbSecond;
  const sqs = (u.sqsRequests / m) * prices.sqsRequestsPerMillion;
  const dynamo =
    (u.dynamoReadUnits / m) * prices.dynamoReadUnitsPerMillion +
    (u.dynamoWriteUnits / m) * prices.dynamoWriteUnitsPerMillion;
  return { apiGateway, lambda, sqs, dynamo, total: apiGateway + lambda + sqs + dynamo };
}

export function appSyncEventsCost(u: Pick<Usage, 'deliveries' | 'publishes' | 'connectionMinutes'>): number {
  const m = 1_000_000;
  return (
    ((u.deliveries + u.publishes) / m) * prices.appSyncOperationsPerMillion +
    (u.connectionMinutes / m) * prices.appSyncConnectionMinutesPerMillion
  );
}

/** Cost per million deliveries. */
export function perMillionDeliveries(cost: number, deliveries: number): number {
  return deliveries > 0 ? (cost / deliveries) * 1_000_000 : Number.NaN;
}
