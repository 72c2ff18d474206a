import { CfnOutput, Duration, RemovalPolicy, Stack, type StackProps, Tags } from 'aws-cdk-lib';
import { FlowLogDestination, FlowLogTrafficType, SubnetType, Vpc } from 'aws-cdk-lib/aws-ec2';
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import type { StageConfig } from './config.ts';
import { retainFunctionLogs } from './operations.ts';
import { TenantClusters } from './tenant-clusters.ts';

export interface DataStackProps extends StackProps {
  /** The stage deployed by this stack (one data stack per stage and region, next to its RealtimeStack). */
  readonly stage: StageConfig;
}

/**
 * The stateful tenant data plane of one stage in one region: a VPC with isolated subnets only (no NAT, no internet
 * gateway: the functions reach the databases through the RDS Data API, not the network) and the stage's
 * {@link TenantClusters}. Pass {@link DataStack.tenantClusters} to the RealtimeStack; its functions get access through
 * the `tenantData` binding.
 */
export class DataStack extends Stack {
  readonly stage: StageConfig;
  readonly vpc: Vpc;
  readonly tenantClusters: TenantClusters;

  constructor(scope: Construct, id: string, props: DataStackProps) {
    const { stage, ...stackProps } = props;
    super(scope, id, {
      description: `tenantcast tenant databases, stage ${stage.name}`,
      terminationProtection: stage.deletionProtection,
      ...stackProps,
    });
    this.stage = stage;
    Tags.of(this).add('project', 'tenantcast');
    Tags.of(this).add('stage', stage.name);

    const removalPolicy = stage.removalPolicy === 'retain' ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY;
    const retention = stage.logRetentionDays as RetentionDays;

    const flowLogs = new LogGroup(this, 'VpcFlowLogs', { retention, removalPolicy });
    this.vpc = new Vpc(this, 'Vpc', {
      maxAzs: 3,
      natGateways: 0,
      subnetConfiguration: [{ name: 'isolated', subnetType: SubnetType.PRIVATE_ISOLATED, cidrMask: 24 }],
      flowLogs: {
        all: { destination: FlowLogDestination.toCloudWatchLogs(flowLogs), trafficType: FlowLogTrafficType.ALL },
      },
    });

    this.tenantClusters = new TenantClusters(this, 'TenantClusters', {
      vpc: this.vpc,
      stageName: stage.name,
      count: stage.clusters.count,
      minCapacity: stage.clusters.minCapacity,
      maxCapacity: stage.clusters.maxCapacity,
      backupRetention: Duration.days(stage.clusters.backupRetentionDays),
      removalPolicy,
      deletionProtection: stage.deletionProtection,
      logRetention: retention,
    });

    // The VPC's default-security-group custom resource runs a Lambda function logging to an implicit group.
    retainFunctionLogs(this, { retention, removalPolicy });

    new CfnOutput(this, 'Clusters', {
      description: 'Tenant clusters as onboarding takes them: [{id, clusterArn, adminSecretArn}]',
      value: this.toJsonString(
        this.tenantClusters.clusters.map(({ id: clusterId, cluster }) => ({
          id: clusterId,
          clusterArn: cluster.clusterArn,
          adminSecretArn: cluster.secret?.secretArn,
        })),
      ),
    });
  }
}
