/**
 * SDK clients. Endpoints and region come from the environment only (`AWS_REGION`, `AWS_ENDPOINT_URL_<SERVICE>`),
 * so the same code talks to AWS or to the local runtime's stand-ins without knowing which.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';

export function createDocumentClient(): DynamoDBDocumentClient {
  return DynamoDBDocumentClient.from(new DynamoDBClient({}), {
    marshallOptions: { removeUndefinedValues: true, convertClassInstanceToMap: false },
  });
}
