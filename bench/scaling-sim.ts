/**
 * `npm run scaling`: a small model of how one region's delivery time and cost grow from 1k to 1M connections.
 * It is arithmetic over AWS's published quotas and prices and a few measured or assumed constants (listed in
 * `assumptions`), not a load test. docs/scaling.md quotes its output.
 */
import { prices } from './cost.ts';

export const assumptions = {
  /** API Gateway: account-level steady-state request rate per region (shared by @connections calls). */
  accountRequestsPerSecond: 10_000,
  /** API Gateway WebSocket: new connections per second per account per region. */
  newConnectionsPerSecond: 500,
  /** Lambda: default concurrent executions per region. */
  lambdaConcurrency: 1_000,
  /** PostToConnection round trip inside a region (ms), and posts in flight per broadcaster invocation. */
  postLatencyMs: 20,
  postsInFlightPerInvocation: 32,
  /** Members per fan-out page (one broadcaster invocation per page for large groups). */
  pageSize: 1_000,
  /** DynamoDB: per-partition limits (eventually consistent reads count half). */
  partitionReadUnitsPerSecond: 3_000,
  partitionWriteUnitsPerSecond: 1_000,
  /** Bytes per group→connection item. */
  memberItemBytes: 120,
  /** Messages per frame the packer achieves at the modeled rate (measured by `npm run bench`; 1 = naive). */
  packingFactor: 5,
  /** Broadcaster: memory and ms of compute per page. */
  broadcasterMemoryGb: 1,
  broadcasterMsPerPage: 60,
} as const;

export interface ScalePoint {
  connections: number;
  groupSize: number;
  /** Seconds to deliver one message to every member of one group of `groupSize`. */
  deliverySeconds: number;
  /** What bounds it. */
  boundBy: string;
  /** Seconds for every connection to reconnect after a regional blip (new-connection quota). */
  reconnectStormSeconds: number;
  /** Largest message rate to that group before @connections throttling (messages/s), if it were the only one. */
  maxMessagesPerSecond: number;
  /** Region-wide ceiling of deliveries per second (account throttle × packing), and per connection. */
  regionDeliveriesPerSecond: number;
  perConnectionMessagesPerSecond: number;
  /** Seconds to re-subscribe every member of the group after a reconnect storm (one partition's write units). */
  resubscribeSeconds: number;
  /** Modeled cost per million deliveries (API Gateway messages + Lambda + DynamoDB reads + SQS), packed and naive. */
  costPerMillionPacked: number;
  costPerMillionNaive: number;
}

export function model(connections: number, groupSize: number, a = assumptions): ScalePoint {
  const pages = Math.max(1, Math.ceil(groupSize / a.pageSize));
  const parallelPages = Math.min(pages, a.lambdaConcurrency);
  const postsPerSecondPerInvocation = (a.postsInFlightPerInvocation * 1000) / a.postLatencyMs;
  const lambdaBound = parallelPages * postsPerSecondPerInvocation;
  const postsPerSecond = Math.min(lambdaBound, a.accountRequestsPerSecond);
  // Reading the member list: one partition, `partitionReadUnitsPerSecond` × 4 KB × 2 (eventually consistent).
  const memberBytesPerSecond = a.partitionReadUnitsPerSecond * 4096 * 2;
  const readSeconds = (groupSize * a.memberItemBytes) / memberBytesPerSecond;
  const postSeconds = groupSize / postsPerSecond;
  const deliverySeconds = Math.max(readSeconds, postSeconds) + a.postLatencyMs / 1000;
  const boundBy =
    readSeconds > postSeconds
      ? 'DynamoDB partition reads'
      : lambdaBound < a.accountRequestsPerSecond
        ? 'broadcaster parallelism'
        : '@connections account throttle';

  const perDelivery = (packing: number) => {
    const posts = 1 / packing;
    const apiGateway = posts * prices.apiGatewayMessagesPerMillion;
    const lambdaPerDelivery = (a.broadcasterMemoryGb * (a.broadcasterMsPerPage / 1000)) / a.pageSize;
    const lambda =
      lambdaPerDelivery * 1_000_000 * prices.lambdaGbSecond + (1 / a.pageSize) * prices.lambdaRequestsPerMillion;
    const dynamo = ((a.memberItemBytes / 4096) * 0.5 + 0) * prices.dynamoReadUnitsPerMillion;
    const sqs = (3 / a.pageSize) * prices.sqsRequestsPerMillion;
    return apiGateway + lambda + dynamo + sqs;
  };

  return {
    connections,
    groupSize,
    deliverySeconds,
    boundBy,
    reconnectStormSeconds: connections / a.newConnectionsPerSecond,
    maxMessagesPerSecond: (a.accountRequestsPerSecond * a.packingFactor) / groupSize,
    regionDeliveriesPerSecond: a.accountRequestsPerSecond * a.packingFactor,
    perConnectionMessagesPerSecond: (a.accountRequestsPerSecond * a.packingFactor) / connections,
    resubscribeSeconds: groupSize / a.partitionWriteUnitsPerSecond,
    costPerMillionPacked: perDelivery(a.packingFactor),
    costPerMillionNaive: perDelivery(1),
  };
}

export function table(points: readonly ScalePoint[]): string {
  const f = (n: number, d = 2) => (n >= 100 ? n.toFixed(0) : n.toFixed(d));
  return [
    '| connections | group size | one message to the whole group | bound by | max msg/s to one such group | msg/s per connection, region-wide | reconnect storm | re-subscribe one group | $/M deliveries packed | naive |',
    '|---|---|---|---|---|---|---|---|---|---|',
    ...points.map(
      (p) =>
        `| ${p.connections.toLocaleString('en')} | ${p.groupSize.toLocaleString('en')} | ${f(p.deliverySeconds, 3)} s | ${p.boundBy} | ${f(p.maxMessagesPerSecond, 1)} | ${f(p.perConnectionMessagesPerSecond, 2)} | ${f(p.reconnectStormSeconds, 0)} s | ${f(p.resubscribeSeconds, 2)} s | ${p.costPerMillionPacked.toFixed(3)} | ${p.costPerMillionNaive.toFixed(3)} |`,
    ),
  ].join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const points = [1_000, 10_000, 100_000, 1_000_000].map((n) => model(n, n));
  const grouped = [1_000, 10_000, 100_000, 1_000_000].map((n) => model(n, 50));
  console.log('Everyone in one group:\n');
  console.log(table(points));
  console.log('\nGroups of 50:\n');
  console.log(table(grouped));
  console.log('\nAssumptions:', JSON.stringify(assumptions, null, 2));
}
