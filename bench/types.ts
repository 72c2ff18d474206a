/**
 * What one benchmark run produces: per-scenario results and the run's summary. Shared by the runner (bench/run.ts),
 * the target checks (bench/targets.ts) and the report writer (bench/report.ts), so none of them imports another.
 */
import type { Usage } from './cost.ts';
import type { MachineCpu } from './machine-cpu.ts';
import type { SdkCeiling } from './sdk-ceiling.ts';
import type { LatencySummary } from './stats.ts';

export interface ScenarioResult {
  name: string;
  system: 'raw-ws' | 'pipeline' | 'naive';
  connections: number;
  messages: number;
  rate: number | 'burst';
  expected: number;
  delivered: number;
  duplicates: number;
  /** Frames the receivers got (a `batch` frame carries several messages). */
  frames: number;
  /** PostToConnection calls the gateway served during the scenario (pipeline and naive only). */
  posts?: number;
  latency: LatencySummary;
  /** p99 in rounds (one round = connections ÷ the SDK post ceiling), for the scenarios at the run's connection count. */
  p99Rounds?: number;
  deliveriesPerSecond: number;
  /**
   * A pipeline burst: ms from the first publish to the end of the broadcaster's last invocation (the last message
   * sequenced and its pages queued for the lanes).
   */
  sequencedMs?: number;
  /** Frames posted per second ÷ the SDK post ceiling of the same run (how close the scenario ran to it). */
  framesVsSdkCeiling?: number;
  seconds: number;
  usage?: Usage;
  perDelivery?: Record<string, number>;
  /** DynamoDB capacity units per published message, by action and item kind (local/meter.ts). */
  dynamoUnitsPerMessage?: Record<string, number>;
  /** The whole machine's CPU use from the first publish to the last delivery (bench/machine-cpu.ts). */
  machine?: MachineCpu;
  /**
   * A scenario run several times (the bursts): deliveries/s of each unmeasured warm-up and of each measured run, in
   * order. The result is the measured run with the median deliveries/s.
   */
  runs?: { warmUps: number[]; measured: number[] };
}

export interface CostSummary {
  scenario: string;
  tenantcastPerMillionDeliveries: number;
  breakdownPerMillion: Record<string, number>;
  appSyncEventsPerMillionDeliveries: number;
  ratioVsAppSync: number;
}

/** One target of issue #14, judged on the run's own measurements. */
export interface TargetCheck {
  target: string;
  measured: string;
  met: boolean;
  /**
   * A target that asks for something to be measured or modeled and stated, with no threshold to reach (the ceiling,
   * the cost profiles, the large-group model): met when the run produced it.
   */
  reported?: boolean;
  /** Why it was not met, in measured terms (empty when met). */
  reason: string;
}

/** Target 3: each function's bundle built as a deploy builds it (scripts/bundles.ts), its size and import time. */
export interface BundleFigures {
  readonly runs: number;
  readonly budget: { readonly bytes: number; readonly importMs: number };
  /** The Lambda runtime the functions are deployed on; the bench machine's Node imports them. */
  readonly runtime: string;
  readonly functions: readonly { readonly name: string; readonly bytes: number; readonly importMs: number }[];
}

/** Target 5: one workload profile of bench/cost.ts priced with the run's unit costs, beside AppSync Events. */
export interface ProfileFigures {
  readonly name: string;
  readonly deliveriesPerMinute: number;
  /** Messages per frame the profile assumes (the busy group's 10 is a full SQS batch: a model, not a measurement). */
  readonly messagesPerFrame: number;
  readonly tenantcastPerMinute: number;
  readonly appSyncPerMinute: number;
  /** tenantcast ÷ AppSync Events: over 1 where AppSync Events is cheaper. */
  readonly ratio: number;
  /**
   * The least rate (deliveries per connection-minute) from which tenantcast is cheaper for the profile's shape: with
   * its own packing, and with packing that grows with the rate within 0.5 s. Infinity (JSON null) when never.
   */
  readonly crossover: number | null;
  readonly crossoverPackedWithinHalfSecond: number | null;
}

/** The unit costs a run prices the profiles with: which come from the run, which are the model's defaults. */
export interface ProfileUnitCosts {
  readonly lambdaMsPerPost: number;
  readonly dynamoWriteUnitsPerMessage: number;
  readonly dynamoWriteUnitsPerRun: number;
  /** The write units came from the run's cost scenario (false: bench/cost.ts `defaultUnitCosts`). */
  readonly writesFromRun: boolean;
}

/** Target 6: one message to a very large group, by the scaling model with the run's CPU constants. */
export interface LargeGroupFigures {
  readonly members: number;
  readonly pages: number;
  readonly lanes: number;
  readonly fanoutInvocations: number;
  readonly fanoutMemoryMB: number;
  /** Lambda's memory for one vCPU, and the account's `@connections` request quota the model assumes. */
  readonly mbPerVcpu: number;
  readonly accountRequestsPerSecond: number;
  /** The run's CPU per post (bare SDK post), and that over the fan-out function's CPU share. */
  readonly cpuMsPerPost: number;
  readonly lambdaMsPerPost: number;
  readonly postsPerSecond: number;
  readonly accountQuotaShare: number;
  readonly readSeconds: number;
  readonly postSeconds: number;
  readonly seconds: number;
  readonly boundBy: string;
  /** Posting is held to the account's quota (then `boundBy` names the quota). */
  readonly quotaBound: boolean;
}

export interface Summary {
  machine: string;
  /** The commit measured (`git describe --always --dirty`), when the run was made in a git checkout. */
  commit?: string;
  /** 1, 5 and 15 minute load averages when the run started (the machine is shared). */
  loadAverage: number[];
  startedAt: string;
  options: Record<string, number | boolean>;
  /** The AWS SDK's PostToConnection rate against a bare HTTP server in another process: what the pipeline is bound by. */
  sdkCeiling: SdkCeiling;
  /** The same SDK calls against the local gateway's `@connections` API, from this process. */
  gatewayPostsPerSecond: number;
  /** One round: the run's connections ÷ the SDK post ceiling, in seconds. */
  roundSeconds: number;
  ratios: {
    burstThroughputVsRaw: number;
    p99At100VsRaw: number;
    naiveBurstThroughputVsRaw: number;
    naiveP99At100VsRaw: number;
  };
  p99At10PerSecondMs: number;
  postsPerDeliveryPacked?: number;
  postsPerDeliveryNaive?: number;
  cost?: CostSummary;
  fairness: { bAloneP99: number; bDuringFloodP99: number };
  costDynamoUnitsPerMessage?: Record<string, number>;
  costDynamoWriteUnitsPerMessage?: number;
  bundles?: BundleFigures;
  profiles?: ProfileFigures[];
  profileUnitCosts?: ProfileUnitCosts;
  largeGroup?: LargeGroupFigures;
  targets: TargetCheck[];
}
