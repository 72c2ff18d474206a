/**
 * The part of Secrets Manager the local Data API needs (JSON 1.1: CreateSecret, GetSecretValue, DescribeSecret,
 * PutSecretValue, DeleteSecret), kept in `<dataDir>/secrets.json`. Served by the local Data API's server
 * (local/data-api.ts) so `@aws-sdk/client-secrets-manager` runs unchanged against it. Hand-written: no kept library
 * emulates Secrets Manager.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DataApiException } from './data-api-values.ts';

export interface Secret {
  arn: string;
  name: string;
  value: string;
  description?: string;
  createdDate: number;
}

export class LocalSecrets {
  private constructor(
    private readonly file: string,
    private readonly secrets: Map<string, Secret>,
    private readonly arnPrefix: string,
  ) {}

  /** The secrets kept in `dataDir` (none if it holds none yet). */
  static async open(dataDir: string, region: string, accountId: string): Promise<LocalSecrets> {
    const file = join(dataDir, 'secrets.json');
    const kept = existsSync(file) ? (JSON.parse(await readFile(file, 'utf8')) as Secret[]) : [];
    return new LocalSecrets(
      file,
      new Map(kept.map((s) => [s.arn, s] as const)),
      `arn:aws:secretsmanager:${region}:${accountId}:secret:`,
    );
  }

  /** By ARN or name, as Secrets Manager's `SecretId`. */
  find(id: string): Secret | undefined {
    return this.secrets.get(id) ?? [...this.secrets.values()].find((s) => s.name === id);
  }

  save(): Promise<void> {
    return writeFile(this.file, JSON.stringify([...this.secrets.values()], null, 2));
  }

  async create(name: string, value: string, description?: string): Promise<Secret> {
    if (this.find(name)) {
      throw new DataApiException(
        'ResourceExistsException',
        400,
        `The operation failed because the secret ${name} already exists.`,
      );
    }
    const arn = `${this.arnPrefix}${name}-${randomBytes(3).toString('hex')}`;
    const secret: Secret = { arn, name, value, createdDate: Date.now() / 1000, ...(description && { description }) };
    this.secrets.set(arn, secret);
    await this.save();
    return secret;
  }

  /** One Secrets Manager operation (`X-Amz-Target: secretsmanager.<operation>`). */
  async call(operation: string, body: Record<string, unknown>): Promise<Record<string, unknown>> {
    if (operation === 'CreateSecret') {
      const s = await this.create(
        String(body.Name),
        String(body.SecretString ?? ''),
        body.Description === undefined ? undefined : String(body.Description),
      );
      return { ARN: s.arn, Name: s.name, VersionId: randomUUID() };
    }
    if (!['GetSecretValue', 'DescribeSecret', 'DeleteSecret', 'PutSecretValue'].includes(operation)) {
      throw new DataApiException('UnknownOperationException', 400, `unsupported operation ${operation}`);
    }
    const s = this.find(String(body.SecretId));
    if (!s)
      throw new DataApiException('ResourceNotFoundException', 400, "Secrets Manager can't find the specified secret.");
    switch (operation) {
      case 'GetSecretValue':
        return {
          ARN: s.arn,
          Name: s.name,
          SecretString: s.value,
          CreatedDate: s.createdDate,
          VersionStages: ['AWSCURRENT'],
        };
      case 'DescribeSecret':
        return { ARN: s.arn, Name: s.name, Description: s.description, CreatedDate: s.createdDate };
      case 'DeleteSecret':
        // With ForceDeleteWithoutRecovery the name is free at once; without, AWS keeps it through a 7-30 day recovery
        // window (the name stays taken), which the stand-in keeps for ever.
        if (body.ForceDeleteWithoutRecovery === true) {
          this.secrets.delete(s.arn);
          await this.save();
        }
        return { ARN: s.arn, Name: s.name, DeletionDate: Date.now() / 1000 };
      default:
        s.value = String(body.SecretString ?? '');
        await this.save();
        return { ARN: s.arn, Name: s.name, VersionId: randomUUID() };
    }
  }
}
