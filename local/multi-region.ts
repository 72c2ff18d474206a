/**
 * Several local regions of one stage side by side, for multi-region delivery (docs/multi-region.md): one complete
 * local runtime per region (its own gateway, identity provider, DynamoDB, SQS and function sandboxes), each knowing
 * the others' delivery queues exactly as CDK tells a deployed region (`STAGE_REGIONS`, `PEER_DELIVERY_QUEUES`).
 *
 * A function's environment is fixed when its sandbox starts, so every region's SQS stand-in is started and its
 * queues created first; the runtimes start after, with their peers' queue URLs already known.
 */
import { queues as manifestQueues } from '../lambdas/manifest.ts';
import { type LocalOptions, type LocalRuntime, startLocal } from './runtime.ts';
import { ensureQueues, type LocalSqs, startSqs } from './sqs.ts';

export interface LocalStageOptions
  extends Omit<LocalOptions, 'region' | 'port' | 'stageRegions' | 'peerDeliveryQueues' | 'sqs' | 'dataDir'> {
  /** The stage's regions, in order (as in cdk.json), each with its gateway port (0 or omitted: a free port). */
  readonly regions: readonly { readonly region: string; readonly port?: number }[];
  /** DynamoDB data directory; each region uses `<dataDir>/<region>`. Omitted: in memory. */
  readonly dataDir?: string;
}

export interface LocalStage {
  /** The runtimes, by region, in stage order. */
  readonly regions: ReadonlyMap<string, LocalRuntime>;
  /** The runtime of `region`. @throws for a region not in the stage */
  region(region: string): LocalRuntime;
  stop(): Promise<void>;
}

export async function startLocalStage(options: LocalStageOptions): Promise<LocalStage> {
  const { regions, dataDir, ...common } = options;
  const names = regions.map((r) => r.region);
  if (names.length === 0 || new Set(names).size !== names.length) {
    throw new Error(`a local stage needs distinct regions (got ${JSON.stringify(names)})`);
  }
  const stage = common.stage ?? 'local';
  const sqsOf = new Map<string, LocalSqs>();
  const runtimes = new Map<string, LocalRuntime>();
  const stop = async () => {
    await Promise.all([...runtimes.values()].map((r) => r.stop()));
    await Promise.all([...sqsOf.values()].map((s) => s.close()));
  };
  try {
    const deliveryQueueOf = new Map<string, string>();
    for (const region of names) {
      const sqs = await startSqs({ region });
      sqsOf.set(region, sqs);
      const created = await ensureQueues(sqs.client, manifestQueues, { prefix: `tenantcast-${stage}-` });
      deliveryQueueOf.set(region, created.delivery.url);
    }
    for (const { region, port } of regions) {
      const peers = Object.fromEntries([...deliveryQueueOf].filter(([peer]) => peer !== region));
      runtimes.set(
        region,
        await startLocal({
          ...common,
          region,
          port: port ?? 0,
          stageRegions: names,
          peerDeliveryQueues: peers,
          sqs: sqsOf.get(region) as LocalSqs,
          ...(dataDir !== undefined && { dataDir: `${dataDir}/${region}` }),
        }),
      );
    }
  } catch (err) {
    await stop();
    throw err;
  }
  let stopping: Promise<void> | undefined;
  return {
    regions: runtimes,
    region(region) {
      const runtime = runtimes.get(region);
      if (runtime === undefined) throw new Error(`no local region ${region} (stage regions: ${names.join(', ')})`);
      return runtime;
    },
    stop: () => {
      stopping ??= stop();
      return stopping;
    },
  };
}
