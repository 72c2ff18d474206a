/**
 * What the admin CLI (`npx tenantcast`, docs/cli.md) talks to: the local runtime by default (the endpoints file
 * `npm start` writes), or a deployed stage in one region (`--stage <s> --region <r> [--profile <p>]`), read from the
 * CloudFormation outputs of the stacks `tenantcast-<stage>-<region>` and `tenantcast-<stage>-<region>-data`.
 *
 * Either way the result is the same `Target`: names, URLs and one way to configure SDK v3 clients, so every command
 * runs the same code against both.
 */
import { resolve } from 'node:path';
import { CloudFormationClient, DescribeStacksCommand, type Output } from '@aws-sdk/client-cloudformation';
import { fromIni } from '@aws-sdk/credential-providers';
import type { ClusterRef } from '../lambdas/core/onboarding.ts';
import { readEndpointsFile } from '../local/tenant-data.ts';

export const DEFAULT_ENDPOINTS_FILE = '.local/endpoints.json';

export type Service = 'dynamodb' | 'sqs' | 'rdsData' | 'secretsManager';

export interface QueueUrls {
  readonly url: string;
  readonly dlqUrl: string;
}

/** Everything a command needs to reach one stage in one region. */
export interface Target {
  /** `local` for the local runtime. */
  readonly stage: string;
  readonly region: string;
  readonly tableName: string;
  readonly clusters: readonly ClusterRef[];
  /** The manifest's queues by logical name (`delivery`, `fanout`, `changes`, `replication`) with their DLQs. */
  readonly queues: Readonly<Record<string, QueueUrls>>;
  /** The `@connections` Management API endpoint (stack output `CallbackUrl`). */
  readonly connectionsEndpoint?: string;
  /** Configuration for an SDK v3 client of the service: region, credentials and, locally, the stand-in's endpoint. */
  clientConfig(service: Service): ClientConfig;
}

export interface ClientConfig {
  readonly region: string;
  readonly endpoint?: string;
  readonly credentials?: { accessKeyId: string; secretAccessKey: string } | ReturnType<typeof fromIni>;
}

export interface TargetOptions {
  readonly endpoints?: string | undefined;
  readonly stage?: string | undefined;
  readonly region?: string | undefined;
  readonly profile?: string | undefined;
  /** Directory `--endpoints` is relative to. @default process.cwd() */
  readonly cwd?: string | undefined;
  /** Injected in tests: AWS mode never calls AWS there. @default a CloudFormationClient for the region and profile */
  readonly cloudFormation?: Pick<CloudFormationClient, 'send'>;
}

/** `--stage/--region` select AWS (both are needed); otherwise the local runtime's endpoints file. */
export async function resolveTarget(options: TargetOptions): Promise<Target> {
  if (options.stage !== undefined || options.region !== undefined || options.profile !== undefined) {
    if (options.stage === undefined || options.region === undefined) {
      throw new Error(
        `targeting AWS needs both --stage and --region; got stage ${options.stage ?? '(none)'}, region ${options.region ?? '(none)'}`,
      );
    }
    return awsTarget({ ...options, stage: options.stage, region: options.region });
  }
  return localTarget(resolve(options.cwd ?? process.cwd(), options.endpoints ?? DEFAULT_ENDPOINTS_FILE));
}

export async function localTarget(file: string): Promise<Target> {
  const endpoints = await readEndpointsFile(file);
  const credentials = { accessKeyId: 'local', secretAccessKey: 'local' };
  const endpointOf: Record<Service, string | undefined> = {
    dynamodb: endpoints.dynamodb,
    sqs: endpoints.sqs,
    rdsData: endpoints.rdsData,
    secretsManager: endpoints.secretsManager,
  };
  return {
    stage: 'local',
    region: endpoints.region,
    tableName: endpoints.tableName,
    clusters: endpoints.clusters,
    queues: endpoints.queues ?? {},
    ...(endpoints.connections !== undefined && { connectionsEndpoint: endpoints.connections }),
    clientConfig(service) {
      const endpoint = endpointOf[service];
      if (endpoint === undefined) {
        throw new Error(`the endpoints file ${file} has no ${service} endpoint: restart the local runtime (npm start)`);
      }
      return { region: endpoints.region, endpoint, credentials };
    },
  };
}

/** Reads the stage's stack outputs (lib/realtime-stack.ts, lib/data-stack.ts). */
export async function awsTarget(
  options: TargetOptions & { readonly stage: string; readonly region: string },
): Promise<Target> {
  const { stage, region } = options;
  const credentials = options.profile === undefined ? undefined : fromIni({ profile: options.profile });
  const cloudFormation =
    options.cloudFormation ?? new CloudFormationClient({ region, ...(credentials && { credentials }) });
  const stackName = `tenantcast-${stage}-${region}`;
  const outputsOf = async (name: string): Promise<Map<string, string>> => {
    const out = await cloudFormation.send(new DescribeStacksCommand({ StackName: name }));
    const stack = out.Stacks?.[0];
    if (stack === undefined) throw new Error(`stack ${name} not found in ${region}`);
    return new Map(
      (stack.Outputs ?? []).flatMap((o: Output) =>
        o.OutputKey && o.OutputValue ? [[o.OutputKey, o.OutputValue]] : [],
      ),
    );
  };
  const [realtime, data] = await Promise.all([outputsOf(stackName), outputsOf(`${stackName}-data`)]);
  const tableName = realtime.get('TableName');
  if (tableName === undefined) throw new Error(`stack ${stackName} has no TableName output`);
  const queues: Record<string, QueueUrls> = {};
  for (const [key, url] of realtime) {
    const match = /^(\w+?)QueueUrl$/.exec(key);
    if (match?.[1] === undefined || key.endsWith('DeadLetterQueueUrl')) continue;
    const dlqUrl = realtime.get(`${match[1]}DeadLetterQueueUrl`);
    if (dlqUrl === undefined) continue;
    queues[match[1].charAt(0).toLowerCase() + match[1].slice(1)] = { url, dlqUrl };
  }
  const clustersJson = data.get('Clusters');
  const clusters = clustersJson === undefined ? [] : (JSON.parse(clustersJson) as ClusterRef[]);
  const callbackUrl = realtime.get('CallbackUrl');
  return {
    stage,
    region,
    tableName,
    clusters,
    queues,
    ...(callbackUrl !== undefined && { connectionsEndpoint: callbackUrl }),
    clientConfig: () => ({ region, ...(credentials && { credentials }) }),
  };
}
