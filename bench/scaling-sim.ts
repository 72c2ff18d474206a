/**
 * `npm run scaling`: a small model of how one region's delivery time and cost grow from 1k to 1M connections, and
 * how one very large group is delivered. Arithmetic over AWS's published quotas and prices, the function manifest
 * (memory, page size, lanes) and the CPU constants `npm run bench` measures (bench/measured-constants.json: CPU per
 * post and per page, on the bench machine), scaled to Lambda's CPU share. Not a load test. docs/scaling.md quotes it.
 */
import { DELIVERY_CONCURRENCY } from '../lambdas/core/broadcast.ts';
import { functions } from '../lambdas/manifest.ts';
import {
  crossoverDeliveriesPerConnectionMinute,
  defaultUnitCosts,
  packingWithin,
  prices,
  profileBill,
  profiles,
  type UnitCosts,
  writeUnitsOf,
} from './cost.ts';
import { perConnectionMinute } from './format.ts';
import { type MeasuredConstants, readMeasured } from './measured.ts';
import { round } from './stats.ts';
import type { LargeGroupFigures, ProfileFigures, ProfileUnitCosts } from './types.ts';

/**
 * Lambda allocates CPU in proportion to memory: "At 1,769 MB, a function has the equivalent of one vCPU (one
 * vCPU-second of credits per second)". https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html
 * Posting runs on one Node thread, so more than one vCPU does not make it faster.
 */
export const MB_PER_VCPU = 1769;
export const cpuShare = (memoryMB: number) => Math.min(1, memoryMB / MB_PER_VCPU);

const broadcaster = functions.find((f) => f.name === 'broadcaster');
const fanout = functions.find((f) => f.name === 'fanout');

export const assumptions = {
  /** API Gateway: account-level steady-state request rate per region (shared by @connections calls). */
  accountRequestsPerSecond: 10_000,
  /** API Gateway WebSocket: new connections per second per account per region. */
  newConnectionsPerSecond: 500,
  /** Lambda: default concurrent executions per region. */
  lambdaConcurrency: 1_000,
  /** PostToConnection round trip inside a region (ms), and posts in flight per invocation (as the broadcaster posts). */
  postLatencyMs: 20,
  postsInFlightPerInvocation: DELIVERY_CONCURRENCY,
  /** From the manifest: members per page (SPLIT_THRESHOLD), parallel lanes of a split group, memory. */
  pageSize: Number(broadcaster?.environment?.SPLIT_THRESHOLD ?? 500),
  fanoutShards: Number(broadcaster?.environment?.FANOUT_SHARDS ?? 8),
  broadcasterMemoryMB: Number(broadcaster?.memoryMB ?? 1024),
  fanoutMemoryMB: Number(fanout?.memoryMB ?? 1024),
  /** Records per fan-out invocation (the fanout function's SQS batch size). */
  pagesPerFanoutInvocation: Number(fanout?.trigger.kind === 'sqs' ? fanout.trigger.batchSize : 10),
  /** DynamoDB: per-partition limits (eventually consistent reads count half). */
  partitionReadUnitsPerSecond: 3_000,
  partitionWriteUnitsPerSecond: 1_000,
  /** Bytes per group→connection item. */
  memberItemBytes: 150,
  /** Messages per frame the packer achieves at the modeled rate (1 = naive). */
  packingFactor: 5,
};

export type Assumptions = typeof assumptions;

/** CPU constants on the bench machine; one of its cores is taken as one Lambda vCPU (an assumption). */
export interface CpuConstants {
  cpuMsPerPost: number;
  /** Reading one page of members (a Query of `pageSize` items through the SDK). */
  cpuMsPerPageQuery: number;
  source: string;
}

export function cpuConstantsFrom(m: MeasuredConstants): CpuConstants {
  return {
    cpuMsPerPost: m.sdkCeiling.cpuMicrosPerPost / 1000,
    cpuMsPerPageQuery: m.sdkCeiling.cpuMicrosPerPageQuery / 1000,
    source: `npm run bench${m.quick ? ' --quick' : ''} of ${m.measuredAt} on ${m.machine} (load ${m.loadAverage.join(' / ')})`,
  };
}

/** How one message reaches every member of one group. */
export interface GroupDelivery {
  members: number;
  pages: number;
  /** Lanes posting in parallel (1 when the broadcaster posts directly), pages per lane, fan-out invocations. */
  lanes: number;
  pagesPerLane: number;
  fanoutInvocations: number;
  posts: number;
  /** Posts per second one lane sustains: CPU per post ÷ its CPU share, or posts in flight ÷ round trip if lower. */
  postsPerSecondPerLane: number;
  laneBoundBy: 'CPU' | 'round trips';
  /** Posts per second of all lanes together, and the share of the account's @connections quota it uses. */
  postsPerSecond: number;
  accountQuotaShare: number;
  /** The broadcaster reading the members (partition throughput or unmarshalling CPU, whichever is slower). */
  readSeconds: number;
  postSeconds: number;
  /** Read, then post (pages are posted as they are read in practice, so this is an upper bound). */
  seconds: number;
  boundBy: string;
  /** Posting is held to the account's `@connections` quota rather than by the lanes' CPU or round trips. */
  quotaBound: boolean;
}

export function deliverGroup(members: number, cpu: CpuConstants, a: Assumptions = assumptions): GroupDelivery {
  const split = members > a.pageSize;
  const pages = Math.max(1, Math.ceil(members / a.pageSize));
  const lanes = split ? Math.min(a.fanoutShards, pages) : 1;
  const pagesPerLane = Math.ceil(pages / lanes);
  const laneMemory = split ? a.fanoutMemoryMB : a.broadcasterMemoryMB;
  const cpuLimited = 1000 / (cpu.cpuMsPerPost / cpuShare(laneMemory));
  const tripLimited = (a.postsInFlightPerInvocation * 1000) / a.postLatencyMs;
  const postsPerSecondPerLane = Math.min(cpuLimited, tripLimited);
  const postsPerSecond = Math.min(lanes * postsPerSecondPerLane, a.accountRequestsPerSecond);
  const partitionSeconds = (members * a.memberItemBytes) / (a.partitionReadUnitsPerSecond * 4096 * 2);
  const unmarshalSeconds = (pages * cpu.cpuMsPerPageQuery) / cpuShare(a.broadcasterMemoryMB) / 1000;
  const readSeconds = Math.max(partitionSeconds, unmarshalSeconds);
  const postSeconds = members / postsPerSecond + a.postLatencyMs / 1000;
  const quotaBound = lanes * postsPerSecondPerLane >= a.accountRequestsPerSecond;
  return {
    members,
    pages,
    lanes,
    pagesPerLane,
    fanoutInvocations: split ? lanes * Math.ceil(pagesPerLane / a.pagesPerFanoutInvocation) : 0,
    posts: members,
    postsPerSecondPerLane,
    laneBoundBy: cpuLimited < tripLimited ? 'CPU' : 'round trips',
    postsPerSecond,
    accountQuotaShare: postsPerSecond / a.accountRequestsPerSecond,
    readSeconds,
    postSeconds,
    seconds: readSeconds + postSeconds,
    quotaBound,
    boundBy: quotaBound
      ? '@connections account quota'
      : `${lanes} lane${lanes > 1 ? 's' : ''} × ${Math.round(postsPerSecondPerLane)} posts/s (${cpuLimited < tripLimited ? 'CPU' : 'round trips'})`,
  };
}

export interface ScalePoint {
  connections: number;
  groupSize: number;
  /** Seconds to deliver one message to every member of one group of `groupSize`, and what bounds it. */
  deliverySeconds: number;
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

export function model(
  connections: number,
  groupSize: number,
  cpu: CpuConstants,
  a: Assumptions = assumptions,
): ScalePoint {
  const delivery = deliverGroup(groupSize, cpu, a);
  const perDelivery = (packing: number) => {
    const posts = 1 / packing;
    const apiGateway = posts * prices.apiGatewayMessagesPerMillion;
    const lambdaSecondsPerPost = cpu.cpuMsPerPost / cpuShare(a.fanoutMemoryMB) / 1000;
    const lambdaPerDelivery = posts * lambdaSecondsPerPost * (a.fanoutMemoryMB / 1024);
    const lambda =
      lambdaPerDelivery * 1_000_000 * prices.lambdaGbSecond + (1 / a.pageSize) * prices.lambdaRequestsPerMillion;
    const dynamo = (a.memberItemBytes / 4096) * 0.5 * prices.dynamoReadUnitsPerMillion;
    const sqs = (3 / a.pageSize) * prices.sqsRequestsPerMillion;
    return apiGateway + lambda + dynamo + sqs;
  };
  const regionDeliveriesPerSecond = a.accountRequestsPerSecond * a.packingFactor;
  return {
    connections,
    groupSize,
    deliverySeconds: delivery.seconds,
    boundBy: delivery.boundBy,
    reconnectStormSeconds: connections / a.newConnectionsPerSecond,
    maxMessagesPerSecond: (delivery.postsPerSecond * a.packingFactor) / groupSize,
    regionDeliveriesPerSecond,
    perConnectionMessagesPerSecond: regionDeliveriesPerSecond / connections,
    resubscribeSeconds: groupSize / a.partitionWriteUnitsPerSecond,
    costPerMillionPacked: perDelivery(a.packingFactor),
    costPerMillionNaive: perDelivery(1),
  };
}

export function table(points: readonly ScalePoint[]): string {
  const f = (n: number, d = 2) => (n >= 100 ? n.toFixed(0) : n < 0.1 ? n.toPrecision(2) : n.toFixed(d));
  return [
    '| connections | group size | one message to the whole group | bound by | max msg/s to one such group | msg/s per connection, region-wide | reconnect storm | re-subscribe one group | $/M deliveries packed | naive |',
    '|---|---|---|---|---|---|---|---|---|---|',
    ...points.map(
      (p) =>
        `| ${p.connections.toLocaleString('en')} | ${p.groupSize.toLocaleString('en')} | ${f(p.deliverySeconds, 3)} s | ${p.boundBy} | ${f(p.maxMessagesPerSecond, 1)} | ${f(p.perConnectionMessagesPerSecond, 2)} | ${f(p.reconnectStormSeconds, 0)} s | ${f(p.resubscribeSeconds, 2)} s | ${p.costPerMillionPacked.toFixed(3)} | ${p.costPerMillionNaive.toFixed(3)} |`,
    ),
  ].join('\n');
}

/** The cost model's Lambda duration per post at the broadcaster's memory, from the measured CPU per post. */
export function unitCostsFrom(cpu: CpuConstants, a: Assumptions = assumptions): UnitCosts {
  return { ...defaultUnitCosts, lambdaMsPerPost: cpu.cpuMsPerPost / cpuShare(a.broadcasterMemoryMB) };
}

/**
 * The unit costs of one bench run: Lambda time per post from its CPU per post (`unitCostsFrom`), and DynamoDB write
 * units per message and per run from its cost scenario's units by item kind, when it has them (else the defaults).
 */
export function unitCostsOfRun(
  cpu: CpuConstants,
  unitsByKind: Readonly<Record<string, number>> | undefined,
  a: Assumptions = assumptions,
): ProfileUnitCosts & { readonly costs: UnitCosts } {
  const writes = unitsByKind === undefined ? undefined : writeUnitsOf(unitsByKind);
  const costs: UnitCosts = {
    ...unitCostsFrom(cpu, a),
    ...(writes !== undefined && {
      dynamoWriteUnitsPerMessage: writes.perMessage,
      dynamoWriteUnitsPerRun: writes.perRun,
    }),
  };
  return {
    costs,
    lambdaMsPerPost: round(costs.lambdaMsPerPost, 3),
    dynamoWriteUnitsPerMessage: round(costs.dynamoWriteUnitsPerMessage, 3),
    dynamoWriteUnitsPerRun: round(costs.dynamoWriteUnitsPerRun, 2),
    writesFromRun: writes !== undefined,
  };
}

const finiteOrNull = (n: number) => (Number.isFinite(n) ? round(n, 3) : null);

/** Each profile of bench/cost.ts priced with `u`, with its crossover as profiled and with packing within 0.5 s. */
export function profileFigures(u: UnitCosts): ProfileFigures[] {
  return Object.values(profiles).map((p) => {
    const bill = profileBill(p, u);
    return {
      name: p.name,
      deliveriesPerMinute: bill.deliveriesPerMinute,
      messagesPerFrame: p.messagesPerFrame,
      tenantcastPerMinute: round(bill.tenantcastPerMinute, 5),
      appSyncPerMinute: round(bill.appSyncPerMinute, 5),
      ratio: round(bill.ratio, 3),
      crossover: finiteOrNull(crossoverDeliveriesPerConnectionMinute(p, u)),
      crossoverPackedWithinHalfSecond: finiteOrNull(crossoverDeliveriesPerConnectionMinute(p, u, packingWithin(0.5))),
    };
  });
}

/** One message to `members`, by the model with `cpu`, as the bench reports it. */
export function largeGroupFigures(members: number, cpu: CpuConstants, a: Assumptions = assumptions): LargeGroupFigures {
  const d = deliverGroup(members, cpu, a);
  return {
    members: d.members,
    pages: d.pages,
    lanes: d.lanes,
    fanoutInvocations: d.fanoutInvocations,
    fanoutMemoryMB: a.fanoutMemoryMB,
    mbPerVcpu: MB_PER_VCPU,
    accountRequestsPerSecond: a.accountRequestsPerSecond,
    cpuMsPerPost: round(cpu.cpuMsPerPost, 4),
    lambdaMsPerPost: round(cpu.cpuMsPerPost / cpuShare(a.fanoutMemoryMB), 4),
    postsPerSecond: round(d.postsPerSecond, 1),
    accountQuotaShare: round(d.accountQuotaShare, 3),
    readSeconds: round(d.readSeconds, 2),
    postSeconds: round(d.postSeconds, 2),
    seconds: round(d.seconds, 2),
    boundBy: d.boundBy,
    quotaBound: d.quotaBound,
  };
}

/** Each profile's bill and its crossover rate, with its own packing and with packing that follows the rate. */
export function profilesTable(u: UnitCosts): string {
  const rate = perConnectionMinute;
  return [
    '| profile | deliveries/min | tenantcast $/min | AppSync Events $/min | ratio | crossover, packing as profiled | crossover, packing within 0.1 s | within 0.5 s |',
    '|---|---|---|---|---|---|---|---|',
    ...Object.values(profiles).map((p) => {
      const b = profileBill(p, u);
      return `| ${p.name} | ${b.deliveriesPerMinute.toLocaleString('en')} | ${b.tenantcastPerMinute.toFixed(5)} | ${b.appSyncPerMinute.toFixed(5)} | ${b.ratio.toFixed(3)} | ${rate(crossoverDeliveriesPerConnectionMinute(p, u))} | ${rate(crossoverDeliveriesPerConnectionMinute(p, u, packingWithin(0.1)))} | ${rate(crossoverDeliveriesPerConnectionMinute(p, u, packingWithin(0.5)))} |`;
    }),
  ].join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const cpu = cpuConstantsFrom(readMeasured());
  const sizes = [1_000, 10_000, 100_000, 1_000_000];
  console.log(`CPU constants: ${JSON.stringify(cpu)}\n`);
  console.log('Everyone in one group:\n');
  console.log(table(sizes.map((n) => model(n, n, cpu))));
  console.log('\nGroups of 50:\n');
  console.log(table(sizes.map((n) => model(n, 50, cpu))));
  console.log('\nOne message to a group of 100,000:\n');
  console.log(JSON.stringify(deliverGroup(100_000, cpu), null, 2));
  const at1769 = { ...assumptions, broadcasterMemoryMB: MB_PER_VCPU, fanoutMemoryMB: MB_PER_VCPU };
  console.log('\n... with broadcaster and fanout at 1,769 MB:\n');
  console.log(JSON.stringify(deliverGroup(100_000, cpu, at1769), null, 2));
  console.log('\nWorkload profiles (per minute), beside AppSync Events:\n');
  console.log(profilesTable(unitCostsFrom(cpu)));
  console.log('\nAssumptions:', JSON.stringify(assumptions, null, 2));
}
