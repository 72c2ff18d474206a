import { ArnFormat, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { CfnAccount } from 'aws-cdk-lib/aws-apigateway';
import { PolicyDocument, PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import { acknowledgeWildcardResource } from './nag.ts';

/**
 * The region's API Gateway account setting (`AWS::ApiGateway::Account`) pointing at a CloudWatch Logs role this
 * construct creates. REST and WebSocket APIs need it to write access and execution logs; HTTP APIs do not.
 *
 * The setting is one per account and region: when several stacks share an account and region, let one own it.
 * The role is retained when the stack is deleted, so other APIs keep logging.
 *
 * The role has an inline policy rather than the AWS-managed `AmazonAPIGatewayPushToCloudWatchLogs`, limited to log
 * groups of this account and region.
 */
export class ApiGatewayCloudWatchRole extends Construct {
  readonly role: Role;
  readonly account: CfnAccount;

  constructor(scope: Construct, id: string) {
    super(scope, id);
    const logGroups = Stack.of(this).formatArn({
      service: 'logs',
      resource: 'log-group',
      resourceName: '*',
      arnFormat: ArnFormat.COLON_RESOURCE_NAME,
    });
    this.role = new Role(this, 'Role', {
      assumedBy: new ServicePrincipal('apigateway.amazonaws.com'),
      description: 'Lets API Gateway write access and execution logs to CloudWatch Logs (account setting)',
      inlinePolicies: {
        logs: new PolicyDocument({
          statements: [
            new PolicyStatement({
              actions: [
                'logs:CreateLogGroup',
                'logs:CreateLogStream',
                'logs:DescribeLogGroups',
                'logs:DescribeLogStreams',
                'logs:PutLogEvents',
                'logs:GetLogEvents',
                'logs:FilterLogEvents',
              ],
              resources: [logGroups],
            }),
          ],
        }),
      },
    });
    this.role.applyRemovalPolicy(RemovalPolicy.RETAIN);
    acknowledgeWildcardResource(
      this.role,
      logGroups,
      'The role is an account-wide API Gateway setting shared by every API of the region, and API Gateway names execution log groups itself (API-Gateway-Execution-Logs_<apiId>/<stage>); it is limited to log groups of this account and region.',
    );
    this.account = new CfnAccount(this, 'Account', { cloudWatchRoleArn: this.role.roleArn });
  }
}
