// One Lambda "sandbox" of the local runtime: a worker thread with exactly the environment the function manifest
// gives the function, running its handler module unchanged. Plain .mjs so it starts the same under Node, tsx and
// Jest; TypeScript entries are loaded through tsx's loader, registered for this thread (prebuilt bundles,
// local/function-bundles.ts, are plain JavaScript and skip it).
import { randomUUID } from 'node:crypto';
import { parentPort, workerData } from 'node:worker_threads';

const { entryUrl, functionName, memoryMB, timeoutMs, region } = workerData;
if (entryUrl.endsWith('.ts')) (await import('tsx/esm/api')).register();
const mod = await import(entryUrl);
if (typeof mod.handler !== 'function') throw new Error(`${entryUrl} does not export a function named 'handler'`);

function createContext(requestId, deadline) {
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:${region}:000000000000:function:${functionName}`,
    memoryLimitInMB: String(memoryMB),
    awsRequestId: requestId,
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: `local/[$LATEST]${randomUUID().replaceAll('-', '')}`,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

function serializeError(err) {
  if (err instanceof Error) return { name: err.name, message: err.message, stack: err.stack };
  return { name: 'Error', message: String(err) };
}

parentPort.on('message', async ({ id, event, requestId }) => {
  const context = createContext(requestId ?? randomUUID(), Date.now() + timeoutMs);
  try {
    const result = await mod.handler(event, context);
    parentPort.postMessage({ id, ok: true, result: result === undefined ? null : JSON.parse(JSON.stringify(result)) });
  } catch (err) {
    parentPort.postMessage({ id, ok: false, error: serializeError(err) });
  }
});
parentPort.postMessage({ ready: true });
