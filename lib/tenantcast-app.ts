import type { App } from 'aws-cdk-lib';
import { loadConfig, stackNameOf } from './config.ts';
import { RealtimeStack } from './realtime-stack.ts';

/**
 * Adds one {@link RealtimeStack} per stage and region configured in cdk.json (context `tenantcast`), or only the
 * stage selected with `-c stage=NAME`. Stacks are named `tenantcast-{stage}-{region}`.
 *
 * @throws ConfigError when the configuration is invalid
 */
export function addRealtimeStacks(app: App): RealtimeStack[] {
  const config = loadConfig(app.node);
  return config.stages.flatMap((stage) =>
    stage.regions.map(
      (region) =>
        new RealtimeStack(app, stackNameOf(stage, region), {
          stackName: stackNameOf(stage, region),
          env: { account: stage.account ?? process.env.CDK_DEFAULT_ACCOUNT, region },
          stage,
        }),
    ),
  );
}
