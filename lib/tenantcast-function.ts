import { RemovalPolicy, Validations } from 'aws-cdk-lib';
import { Grant, type IRole, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Architecture, Runtime, RuntimeFamily, Tracing } from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, type NodejsFunctionProps } from 'aws-cdk-lib/aws-lambda-nodejs';
import { type ILogGroupRef, LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import { type Binding, bindingEnv } from '../lambdas/manifest.ts';
import { FUNCTION_NODE_OPTIONS, tenantcastBundling } from './bundling.ts';
import type { LogLevel } from './config.ts';
import type { IFunctionBinding } from './function-binding.ts';

/** The Node.js runtime every tenantcast function runs on: the newest one aws-cdk-lib offers. */
export const TENANTCAST_RUNTIME = Runtime.NODEJS_24_X;

/** CloudWatch metrics namespace for Powertools metrics. */
export const METRICS_NAMESPACE = 'tenantcast';

export { ESM_REQUIRE_BANNER } from './bundling.ts';

export interface TenantcastFunctionProps
  extends Omit<NodejsFunctionProps, 'logRetention' | 'logRetentionRole' | 'logRetentionRetryOptions'> {
  /**
   * Powertools service name (`POWERTOOLS_SERVICE_NAME`): the `service` key of log lines and the `service`
   * dimension of metrics.
   *
   * @default - the construct id
   */
  readonly serviceName?: string;

  /**
   * Powertools metrics namespace (`POWERTOOLS_METRICS_NAMESPACE`).
   *
   * @default 'tenantcast'
   */
  readonly metricsNamespace?: string;

  /**
   * Powertools log level (`LOG_LEVEL`).
   *
   * @default 'INFO'
   */
  readonly logLevel?: LogLevel;

  /**
   * How long the function's log group keeps logs. Ignored when `logGroup` is given.
   *
   * @default RetentionDays.ONE_MONTH
   */
  readonly logGroupRetention?: RetentionDays;

  /**
   * What happens to the function's log group when it leaves the stack. Ignored when `logGroup` is given.
   *
   * @default RemovalPolicy.RETAIN
   */
  readonly logGroupRemovalPolicy?: RemovalPolicy;
}

/**
 * A Node.js Lambda function with the house defaults: the newest Node.js runtime, arm64, X-Ray tracing, a log group
 * with retention, Powertools environment, and esbuild bundling to minified ESM with source maps (lib/bundling.ts).
 *
 * Unless a `role` is given, its role has no AWS-managed policy: it may write to its own log group (and X-Ray), and
 * gets the rest from bindings and triggers.
 *
 * Connect it to shared resources with {@link TenantcastFunction.bind}, which sets the manifest's environment keys
 * and grants access in one call.
 */
export class TenantcastFunction extends NodejsFunction {
  private readonly bound = new Set<Binding>();

  constructor(scope: Construct, id: string, props: TenantcastFunctionProps = {}) {
    const where = `${scope.node.path}/${id}`;
    if (props.runtime && props.runtime.family !== RuntimeFamily.NODEJS) {
      throw new Error(`${where}: runtime must be a Node.js runtime (got ${props.runtime.name})`);
    }
    const serviceName = props.serviceName ?? id;
    if (serviceName.trim() === '') throw new Error(`${where}: serviceName must not be empty`);
    const memorySize = props.memorySize ?? 256;
    if (!Number.isInteger(memorySize) || memorySize < 128 || memorySize > 10240) {
      throw new Error(`${where}: memorySize must be an integer between 128 and 10240 MB (got ${memorySize})`);
    }

    const logGroup: ILogGroupRef =
      props.logGroup ??
      // A sibling of the function: it has to exist before super() runs, when `this` is not yet usable.
      new LogGroup(scope, `${id}LogGroup`, {
        retention: props.logGroupRetention ?? RetentionDays.ONE_MONTH,
        removalPolicy: props.logGroupRemovalPolicy ?? RemovalPolicy.RETAIN,
      });
    const role: IRole =
      props.role ?? new Role(scope, `${id}Role`, { assumedBy: new ServicePrincipal('lambda.amazonaws.com') });
    if (!props.role) {
      Grant.addToPrincipal({
        grantee: role,
        actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        resourceArns: [logGroup.logGroupRef.logGroupArn],
      });
    }

    super(scope, id, {
      ...props,
      role,
      memorySize,
      runtime: props.runtime ?? TENANTCAST_RUNTIME,
      architecture: props.architecture ?? Architecture.ARM_64,
      tracing: props.tracing ?? Tracing.ACTIVE,
      logGroup,
      // lib/bundling.ts: minified ESM, the AWS SDK bundled (measured faster to import than the runtime's copy).
      bundling: { ...tenantcastBundling, ...props.bundling },
      environment: {
        POWERTOOLS_SERVICE_NAME: serviceName,
        POWERTOOLS_METRICS_NAMESPACE: props.metricsNamespace ?? METRICS_NAMESPACE,
        LOG_LEVEL: props.logLevel ?? 'INFO',
        ...(FUNCTION_NODE_OPTIONS !== undefined && { NODE_OPTIONS: FUNCTION_NODE_OPTIONS }),
        ...props.environment,
      },
    });
    if ((props.tracing ?? Tracing.ACTIVE) !== Tracing.DISABLED) {
      Validations.of(role).acknowledge({
        id: 'AwsSolutions-IAM5[Resource::*]',
        reason:
          'X-Ray tracing: xray:PutTraceSegments and xray:PutTelemetryRecords support no resource-level permissions, so AWS requires Resource *.',
      });
    }
  }

  /** The manifest bindings applied so far. */
  get bindings(): readonly Binding[] {
    return [...this.bound];
  }

  /**
   * Binds the function to shared resources: sets each binding's environment variables and grants the permissions
   * it needs.
   *
   * @throws when a binding's environment keys differ from the manifest's `bindingEnv`, or it was already applied
   */
  bind(...bindings: IFunctionBinding[]): this {
    for (const binding of bindings) {
      const expected = [...bindingEnv[binding.binding]].sort();
      const actual = Object.keys(binding.environment).sort();
      if (expected.join(',') !== actual.join(',')) {
        throw new Error(
          `${this.node.path}: binding '${binding.binding}' sets [${actual.join(', ')}] but lambdas/manifest.ts expects [${expected.join(', ')}]`,
        );
      }
      if (this.bound.has(binding.binding)) {
        throw new Error(`${this.node.path}: binding '${binding.binding}' is already applied`);
      }
      this.bound.add(binding.binding);
      for (const [key, value] of Object.entries(binding.environment)) this.addEnvironment(key, value);
      binding.grantTo(this);
    }
    return this;
  }
}
