import type { RDSDataClient } from '@aws-sdk/client-rds-data';
import { describe, expect, it } from '@jest/globals';
import {
  DataApiError,
  expandExponent,
  fromField,
  placeholder,
  plainDecimal,
  RdsDataApi,
  RESPONSE_TOO_LARGE,
  rowsOf,
  toDataApiError,
  toSqlParameter,
  typed,
} from './data-api.ts';

const db = { clusterArn: 'arn:cluster', secretArn: 'arn:secret', databaseName: 'tenant_acme' };

/** A fake SDK client: records commands and answers with `reply(commandName, input)`. */
function fakeClient(reply: (name: string, input: Record<string, unknown>) => unknown) {
  const calls: { name: string; input: Record<string, unknown> }[] = [];
  const client = {
    send: async (command: { constructor: { name: string }; input: Record<string, unknown> }) => {
      const name = command.constructor.name.replace(/Command$/, '');
      calls.push({ name, input: command.input });
      const out = reply(name, command.input);
      if (out instanceof Error) throw out;
      return out;
    },
  };
  return { client: client as unknown as RDSDataClient, calls };
}

const sdkError = (name: string, message: string) => Object.assign(new Error(message), { name });

describe('parameters', () => {
  it('carry the Data API type hint of the column type', () => {
    expect(toSqlParameter('id', typed('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'uuid'))).toEqual({
      name: 'id',
      value: { stringValue: 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11' },
      typeHint: 'UUID',
    });
    expect(toSqlParameter('b', typed(12.5, 'numeric(12,2)'))).toMatchObject({
      value: { stringValue: '12.5' },
      typeHint: 'DECIMAL',
    });
    expect(toSqlParameter('d', typed('2025-02-20', 'date'))).toMatchObject({ typeHint: 'DATE' });
    expect(toSqlParameter('t', typed('10:30:00', 'time'))).toMatchObject({ typeHint: 'TIME' });
    expect(toSqlParameter('j', typed({ a: 1 }, 'jsonb'))).toMatchObject({
      value: { stringValue: '{"a":1}' },
      typeHint: 'JSON',
    });
  });

  it('send timestamps in the Data API format, in UTC', () => {
    expect(toSqlParameter('s', typed('2025-03-01T10:00:00+01:00', 'timestamptz'))).toEqual({
      name: 's',
      value: { stringValue: '2025-03-01 09:00:00.000' },
      typeHint: 'TIMESTAMP',
    });
  });

  it('send arrays as JSON text, which the placeholder turns back into an array', () => {
    expect(toSqlParameter('tags', typed(['a', 'b'], 'text[]'))).toEqual({
      name: 'tags',
      value: { stringValue: '["a","b"]' },
    });
    expect(placeholder('tags', 'text[]')).toContain('json_array_elements_text(CAST(:tags AS json))');
    expect(placeholder('tags', 'text[]')).toContain('::text[]');
    expect(placeholder('title', 'text')).toBe(':title');
  });

  it('map plain values to the field that fits and nulls to isNull', () => {
    expect(toSqlParameter('n', 42).value).toEqual({ longValue: 42 });
    expect(toSqlParameter('n', 1.5).value).toEqual({ doubleValue: 1.5 });
    expect(toSqlParameter('b', true).value).toEqual({ booleanValue: true });
    expect(toSqlParameter('x', null).value).toEqual({ isNull: true });
    expect(toSqlParameter('x', typed(undefined, 'uuid')).value).toEqual({ isNull: true });
  });

  it('refuse a value that does not fit its type, and a parameter name that is not an identifier', () => {
    expect(() => toSqlParameter('b', typed('12; drop', 'numeric'))).toThrow(/decimal/);
    expect(() => toSqlParameter('tags', typed('a', 'text[]'))).toThrow(/array/);
    expect(() => placeholder('x); drop table t; --')).toThrow(/invalid parameter name/);
  });
});

describe('results', () => {
  it('become objects keyed by column, converted by column type', () => {
    const rows = rowsOf(
      [
        [
          { stringValue: 'x' },
          { isNull: true },
          { stringValue: '{"a":1}' },
          { arrayValue: { stringValues: ['a'] } },
          { stringValue: '2025-03-01 09:00:00' },
        ],
      ],
      [
        { name: 'title' },
        { name: 'owner' },
        { name: 'meta', typeName: 'jsonb' },
        { name: 'tags', typeName: '_text' },
        { name: 'at', typeName: 'timestamptz' },
      ],
    );
    expect(rows).toEqual([{ title: 'x', owner: null, meta: { a: 1 }, tags: ['a'], at: '2025-03-01T09:00:00.000Z' }]);
    expect(fromField({ longValue: 7 }, 'int4')).toBe(7);
  });
});

describe('Data API errors', () => {
  it('become typed errors with a code, the SQLSTATE kept for the caller', () => {
    const unique = toDataApiError(
      sdkError(
        'DatabaseErrorException',
        'ERROR: duplicate key value violates unique constraint "task_pkey"; SQLState: 23505',
      ),
    );
    expect(unique).toMatchObject({ code: 'CONFLICT', sqlState: '23505' });
    expect(unique.message).not.toContain('task_pkey');
    expect(toDataApiError(sdkError('DatabaseErrorException', 'ERROR: x; SQLState: 22P02'))).toMatchObject({
      code: 'BAD_REQUEST',
    });
    expect(toDataApiError(sdkError('BadRequestException', RESPONSE_TOO_LARGE))).toMatchObject({ code: 'TOO_LARGE' });
    expect(toDataApiError(sdkError('ForbiddenException', 'no'))).toMatchObject({
      code: 'INTERNAL',
      message: 'internal error',
    });
    expect(toDataApiError(sdkError('DatabaseResumingException', 'resuming'))).toMatchObject({
      code: 'INTERNAL',
      retryable: true,
    });
  });
});

describe('RdsDataApi', () => {
  it('rolls a transaction back when its function throws, and commits otherwise', async () => {
    const { client, calls } = fakeClient((name) => (name === 'BeginTransaction' ? { transactionId: 'tx1' } : {}));
    const api = new RdsDataApi(client);
    await expect(
      api.transaction(db, async (tx) => {
        await tx.execute('UPDATE task SET title = :t', { t: 'x' });
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(calls.map((c) => c.name)).toEqual(['BeginTransaction', 'ExecuteStatement', 'RollbackTransaction']);
    expect(calls[1]?.input).toMatchObject({ transactionId: 'tx1', database: 'tenant_acme', secretArn: 'arn:secret' });

    calls.length = 0;
    expect(await api.transaction(db, async () => 'done')).toBe('done');
    expect(calls.map((c) => c.name)).toEqual(['BeginTransaction', 'CommitTransaction']);
  });

  it('halves the page size while the result is over the response limit', async () => {
    const { client, calls } = fakeClient((_name, input) => {
      const limit = (input.parameters as { name: string; value: { longValue: number } }[]).find(
        (p) => p.name === 'limit',
      );
      if ((limit?.value.longValue ?? 0) > 25) return sdkError('BadRequestException', RESPONSE_TOO_LARGE);
      return { records: [[{ longValue: 1 }]], columnMetadata: [{ name: 'id' }] };
    });
    const page = await new RdsDataApi(client).executePaged(db, 'SELECT id FROM task LIMIT :limit', {}, { limit: 100 });
    expect(page.limit).toBe(25);
    expect(page.rows).toEqual([{ id: 1 }]);
    expect(calls).toHaveLength(3);
  });

  it('retries a statement while the database resumes, but not inside a transaction', async () => {
    let failures = 1;
    const { client, calls } = fakeClient(() =>
      failures-- > 0 ? sdkError('DatabaseResumingException', 'resuming') : {},
    );
    const api = new RdsDataApi(client, { backoffMs: () => 0 });
    await api.execute(db, 'SELECT 1');
    expect(calls).toHaveLength(2);
    failures = 1;
    await expect(api.execute(db, 'SELECT 1', {}, { transactionId: 'tx' })).rejects.toBeInstanceOf(DataApiError);
  });
});

describe('expandExponent', () => {
  it('writes out any decimal with an exponent exactly, and leaves other text alone', () => {
    expect(
      ['1e-7', '1.5e-10', '12E3', '0.5e1', '-2.5e-3', '007e2', '0e5', '1.23456789012345678901e5'].map(expandExponent),
    ).toEqual(['0.0000001', '0.00000000015', '12000', '5', '-0.0025', '700', '0', '123456.789012345678901']);
    for (const text of ['1.23', 'abc', '1e', 'e5', '1e5.5', '1e999999999', '1e-401'])
      expect(expandExponent(text)).toBe(text);
    expect(expandExponent('-1e-300')).toBe(`-0.${'0'.repeat(299)}1`);
  });
});

describe('plainDecimal', () => {
  it('writes out the exponent of a number JavaScript writes with one, digits unchanged', () => {
    expect([1e-7, -1.5e-10, 1.5e21, 123.45, 0, -7].map(plainDecimal)).toEqual([
      '0.0000001',
      '-0.00000000015',
      '1500000000000000000000',
      '123.45',
      '0',
      '-7',
    ]);
  });
});
