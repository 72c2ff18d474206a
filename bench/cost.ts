/**
 * A modeled AWS bill from counted calls, and the same bill for described workloads (profiles) beside AppSync Events.
 * Prices are the public list prices (us-east-1, on-demand, first tier), not a quote. Each cites AWS's pricing page;
 * those pages render their rates from price tokens, so each figure was also checked (2026-12-02) in a source that
 * quotes the page: AWS re:Post, the AWS Price List (AppSync), and pricing write-ups (SQS FIFO, DynamoDB after the
 * November 2024 on-demand cut, Lambda arm64).
 */
export const prices = {
  /**
   * API Gateway WebSocket: $1.00 per million messages (first billion), each 32 KB (or part) of a message is one; $0.25
   * per million connection-minutes. https://aws.amazon.com/api-gateway/pricing/ ("Messages are metered in 32 KB
   * increments"; the rates render from price tokens there, the same $1.00 and $0.25 are quoted from it at
   * https://repost.aws/questions/QU7IqgooGeQmqudOsmzTw5YQ).
   */
  apiGatewayMessagesPerMillion: 1.0,
  apiGatewayConnectionMinutesPerMillion: 0.25,
  /** Lambda arm64: $0.20 per million requests, $0.0000133334 per GB-second. https://aws.amazon.com/lambda/pricing/ */
  lambdaRequestsPerMillion: 0.2,
  lambdaGbSecond: 0.0000133334,
  /**
   * SQS FIFO: $0.50 per million requests (standard queues $0.40); the delivery and fan-out queues are FIFO.
   * https://aws.amazon.com/sqs/pricing/
   */
  sqsRequestsPerMillion: 0.5,
  /** DynamoDB on-demand: $0.125 per million read units, $0.625 per million write units. https://aws.amazon.com/dynamodb/pricing/on-demand/ */
  dynamoReadUnitsPerMillion: 0.125,
  dynamoWriteUnitsPerMillion: 0.625,
  /**
   * AppSync Events: $1.00 per million Event API operations (every publish and every delivery is one), $0.08 per
   * million connection-minutes. https://aws.amazon.com/appsync/pricing/ (AWS Price List: "$1 per million Event API
   * operations"; $0.08 per million connection-minutes as on the same page).
   */
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

// ---- Profiles: described workloads, priced per minute ----

/** A workload in steady state, per minute. */
export interface Profile {
  name: string;
  /** Connections open the whole time. */
  connections: number;
  /** Messages each connection receives per minute. */
  deliveriesPerConnectionMinute: number;
  /** Recipients of each published message. */
  groupSize: number;
  /** Messages per frame the packer achieves at this rate (1 when messages arrive apart). */
  messagesPerFrame: number;
  /** Messages per broadcaster invocation (one SQS batch of a group, at most 10). */
  messagesPerRun: number;
  /** Publishes come over the WebSocket (an inbound message, a message-handler invocation and an ack each). */
  publishedOverWebSocket: boolean;
  /** Per published message before the delivery queue (e.g. the change feed's queue and function). */
  upstream?: { sqsRequests: number; lambdaInvocations: number; lambdaGbSeconds: number };
}

/** Per-call constants of the pipeline; defaults are measured by `npm run bench` (dates beside them). */
export interface UnitCosts {
  /**
   * DynamoDB write units per published message whatever the run: its history item and its share of the leased
   * rate-limit buckets (2026-12-03 full benches, busy group: 1 + 0.044; before issue #14 5.3 in all).
   */
  dynamoWriteUnitsPerMessage: number;
  /**
   * Write units per broadcaster run whatever its size: the group's counter, its progress record, usage (`RUN_WRITES`;
   * 1 each in the 2026-12-03 full benches). Usage is written once per tenant and invocation, so runs of several
   * groups in one batch share it: 3 is the most a run writes.
   */
  dynamoWriteUnitsPerRun: number;
  /** Read units per message (none since issue #14: the seq is assigned by a conditional put, not looked up). */
  dynamoReadUnitsPerMessage: number;
  /**
   * Read units per run: the group's counter and its membership version, consistent reads (docs/delivery.md, "Member
   * lists"; 1 each in the 2026-12-03 full benches). The member pages are read again only when membership changed,
   * which the profiles do not model (they have no churn).
   */
  dynamoReadUnitsPerRun: number;
  /** Lambda duration per post at the broadcaster's memory (CPU per post ÷ CPU share), and per invocation. */
  lambdaMsPerPost: number;
  lambdaMsPerInvocation: number;
  broadcasterMemoryGb: number;
  messageHandlerMemoryGb: number;
}

export const defaultUnitCosts: UnitCosts = {
  dynamoWriteUnitsPerMessage: 1.044,
  dynamoWriteUnitsPerRun: 3,
  dynamoReadUnitsPerMessage: 0,
  dynamoReadUnitsPerRun: 2,
  // ~790 µs of SDK CPU per post (issue #14) at 1 GB = 1024/1769 of a vCPU.
  lambdaMsPerPost: 1.37,
  lambdaMsPerInvocation: 20,
  broadcasterMemoryGb: 1,
  messageHandlerMemoryGb: 0.5,
};

/** The writes a broadcaster run makes once whatever its size: the group's counter, its progress record, usage. */
export const RUN_WRITES = ['UpdateItem T#*#G#*#S', 'UpdateItem T#*#G#*#P', 'UpdateItem T#*#USAGE'] as const;

/** DynamoDB actions that consume write units. */
export const WRITE_ACTIONS = /^(PutItem|UpdateItem|DeleteItem|BatchWriteItem|TransactWriteItems) /;

/**
 * A run's DynamoDB write units per published message, by action and item kind (local/meter.ts), split into what each
 * message writes and what each broadcaster run writes (runs counted by the counter's raise, once per run). Undefined
 * when the run raised no counter.
 */
export function writeUnitsOf(
  unitsByKind: Readonly<Record<string, number>>,
): { readonly perMessage: number; readonly perRun: number; readonly messagesPerRun: number } | undefined {
  const runsPerMessage = unitsByKind[RUN_WRITES[0]] ?? 0;
  if (runsPerMessage <= 0) return undefined;
  const writes = Object.entries(unitsByKind).filter(([kind]) => WRITE_ACTIONS.test(kind));
  const total = writes.reduce((sum, [, units]) => sum + units, 0);
  const perRunUnits = RUN_WRITES.reduce((sum, kind) => sum + (unitsByKind[kind] ?? 0), 0);
  return {
    perMessage: total - perRunUnits,
    perRun: perRunUnits / runsPerMessage,
    messagesPerRun: 1 / runsPerMessage,
  };
}

/** One minute of the profile as counted usage (the inputs of `tenantcastCost` and `appSyncEventsCost`). */
export function profileUsage(p: Profile, u: UnitCosts = defaultUnitCosts): Usage {
  const deliveries = p.connections * p.deliveriesPerConnectionMinute;
  const publishes = deliveries / p.groupSize;
  const posts = deliveries / p.messagesPerFrame;
  const runs = publishes / p.messagesPerRun;
  const handlers = p.publishedOverWebSocket ? publishes : 0;
  return {
    deliveries,
    publishes,
    inboundMessages: handlers,
    // Posts, plus one ack per WebSocket publish.
    outboundMessageUnits: posts + handlers,
    connectionMinutes: p.connections,
    lambdaInvocations: runs + handlers + publishes * (p.upstream?.lambdaInvocations ?? 0),
    lambdaGbSeconds:
      ((runs * u.lambdaMsPerInvocation + posts * u.lambdaMsPerPost) / 1000) * u.broadcasterMemoryGb +
      ((handlers * u.lambdaMsPerInvocation) / 1000) * u.messageHandlerMemoryGb +
      publishes * (p.upstream?.lambdaGbSeconds ?? 0),
    // Send per message; receive and delete per batch (Lambda's event source mapping).
    sqsRequests: publishes + 2 * runs + publishes * (p.upstream?.sqsRequests ?? 0),
    dynamoReadUnits: publishes * u.dynamoReadUnitsPerMessage + runs * u.dynamoReadUnitsPerRun,
    dynamoWriteUnits: publishes * u.dynamoWriteUnitsPerMessage + runs * u.dynamoWriteUnitsPerRun,
  };
}

export interface ProfileBill {
  profile: string;
  deliveriesPerMinute: number;
  tenantcastPerMinute: number;
  appSyncPerMinute: number;
  ratio: number;
  tenantcastPerMillionDeliveries: number;
  appSyncPerMillionDeliveries: number;
}

export function profileBill(p: Profile, u: UnitCosts = defaultUnitCosts): ProfileBill {
  const usage = profileUsage(p, u);
  const tenantcast = tenantcastCost(usage).total;
  const appSync = appSyncEventsCost(usage);
  return {
    profile: p.name,
    deliveriesPerMinute: usage.deliveries,
    tenantcastPerMinute: tenantcast,
    appSyncPerMinute: appSync,
    ratio: tenantcast / appSync,
    tenantcastPerMillionDeliveries: perMillionDeliveries(tenantcast, usage.deliveries),
    appSyncPerMillionDeliveries: perMillionDeliveries(appSync, usage.deliveries),
  };
}

/** How a profile's packing follows its rate: messages per frame and per run at `rate` messages per connection-minute. */
export type Packing = (rate: number) => number;

/**
 * Packing that grows with the rate: the messages a group publishes while one broadcaster run is in flight share the
 * next run and its frames (one SQS batch, at most 10). `windowSeconds` is how long a run takes (an assumption for
 * AWS: queue hand-off, invocation, DynamoDB writes and one round of posts). A connection in one group receives the
 * group's rate, so `rate` per minute is also the group's.
 */
export function packingWithin(windowSeconds: number, max = 10): Packing {
  return (rate) => Math.min(max, Math.max(1, (rate / 60) * windowSeconds));
}

/**
 * The smallest rate (messages per connection-minute) from which tenantcast is cheaper than AppSync Events for a
 * profile's shape, the rate varied (packing follows it through `packing`; by default the profile's own, fixed).
 * Both bills have a fixed part (connection-minutes: $0.25 vs $0.08 per million) and a part per delivery, so
 * tenantcast wins only where packing makes its part per delivery smaller by enough. Scanned on a 1 % geometric grid
 * from 0.001 to 10^6; Infinity when no rate there is cheaper.
 */
export function crossoverDeliveriesPerConnectionMinute(
  p: Profile,
  u: UnitCosts = defaultUnitCosts,
  packing: Packing = () => p.messagesPerFrame,
): number {
  for (let rate = 0.001; rate <= 1e6; rate *= 1.01) {
    const k = packing(rate);
    const bill = profileBill({ ...p, deliveriesPerConnectionMinute: rate, messagesPerFrame: k, messagesPerRun: k }, u);
    if (bill.tenantcastPerMinute <= bill.appSyncPerMinute) return rate;
  }
  return Number.POSITIVE_INFINITY;
}

/**
 * The three workloads docs/scaling.md prices. Busy group: the bench's cost scenario (50 members, 100 msg/s published
 * over the WebSocket, one SQS batch of 10 per run packed into one frame). Quiet: 10,000 connections each receiving 1
 * message a minute, published by a server to groups of 10 (nothing to pack or batch). Entity feed: 100 tenants × 50
 * users online, each subscribed to its tenant's `entity:` groups; each tenant's database changes 6 visible rows a
 * minute (one every 10 s, so nothing to pack), each change read by the change feed (a standard queue: send, receive,
 * delete; one `changeFeed` invocation of 1 GB × 50 ms per change, its Data API read not priced) and delivered to all 50.
 */
export const profiles: Record<'busy' | 'quiet' | 'entityFeed', Profile> = {
  busy: {
    name: 'busy group: 50 members, 100 msg/s',
    connections: 50,
    deliveriesPerConnectionMinute: 6000,
    groupSize: 50,
    messagesPerFrame: 10,
    messagesPerRun: 10,
    publishedOverWebSocket: true,
  },
  quiet: {
    name: 'quiet: 10,000 connections, 1 msg/min each',
    connections: 10_000,
    deliveriesPerConnectionMinute: 1,
    groupSize: 10,
    messagesPerFrame: 1,
    messagesPerRun: 1,
    publishedOverWebSocket: false,
  },
  entityFeed: {
    name: 'entity feed: 100 tenants × 50 users, 6 changes/min each',
    connections: 5000,
    deliveriesPerConnectionMinute: 6,
    groupSize: 50,
    messagesPerFrame: 1,
    messagesPerRun: 1,
    publishedOverWebSocket: false,
    upstream: { sqsRequests: 3, lambdaInvocations: 1, lambdaGbSeconds: 0.05 },
  },
};
