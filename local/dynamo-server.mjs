// The local DynamoDB, in its own child process (started by local/dynamo.ts): dynalite behind a small layer that
// - refuses what AWS refuses and dynalite accepts (local/dynamo-rules.mjs), before dynalite sees the request;
// - returns the existing item with a ConditionalCheckFailedException when asked (ALL_OLD, patched into dynalite);
// - answers 500 InternalServerError, as DynamoDB does, when dynalite throws, and goes on serving;
// - meters capacity units for the benchmark when asked (local/dynamo-meter.mjs).
// A request that breaks dynalite (a stack overflow, a TypeError) can no longer take the runtime down with it.
// Plain .mjs so it starts without a TypeScript loader. Talks to its parent over the IPC channel only.
import { AsyncLocalStorage } from 'node:async_hooks';
import { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import { meterRequest } from './dynamo-meter.mjs';
import { ruleBroken } from './dynamo-rules.mjs';

const require = createRequire(import.meta.url);
/** @type {{ dataDir?: string, host: string, port: number, meter?: { skipUserAgent?: string } }} */
const config = JSON.parse(process.argv[2] ?? '{}');
/** dynalite answers bodies over 16 MB with 413 as it reads them; so does this layer. */
const MAX_REQUEST_BYTES = 16 * 1024 * 1024;
const VALIDATION = 'com.amazon.coral.validate#ValidationException';
/** DynamoDB's answer to a fault of its own: HTTP 500, `__type` ending in `#InternalServerError` (retried by the SDK). */
const INTERNAL_ERROR = 'com.amazonaws.dynamodb.v20120810#InternalServerError';

function send(message, callback) {
  if (process.connected) process.send(message, callback);
  else callback?.();
}
function log(level, message, fields) {
  send({ type: 'log', level, message, fields });
}

/**
 * ReturnValuesOnConditionCheckFailure (PutItem, UpdateItem, DeleteItem): with ALL_OLD, AWS returns the item as it was
 * in the ConditionalCheckFailedException's body, marshalled: `{"__type":"...#ConditionalCheckFailedException",
 * "message":"The conditional request failed","Item":{"count":{"N":"3"}}}` (API reference, PutItem,
 * "ReturnValuesOnConditionCheckFailure"; the SDK reads `Item` from the error body). dynalite drops the parameter in its
 * type check and returns no Item: teach its type tables the parameter, and add the item where it checks conditions
 * (under the item's lock, so the item is the one the condition saw).
 */
function patchAllOldOnConditionFailure() {
  for (const action of ['putItem', 'updateItem', 'deleteItem']) {
    require(`dynalite/validations/${action}.js`).types.ReturnValuesOnConditionCheckFailure = {
      type: 'String',
      enum: ['ALL_OLD', 'NONE'],
    };
  }
  const db = require('dynalite/db/index.js');
  const checkConditional = db.checkConditional;
  db.checkConditional = (data, existingItem) => {
    const err = checkConditional(data, existingItem);
    if (err && existingItem && data.ReturnValuesOnConditionCheckFailure === 'ALL_OLD') err.body.Item = existingItem;
    return err;
  };
}

function sendJson(res, statusCode, body) {
  const text = JSON.stringify(body);
  res.statusCode = statusCode;
  res.setHeader('Content-Type', 'application/x-amz-json-1.0');
  res.setHeader('Content-Length', Buffer.byteLength(text));
  res.end(text);
}

/** Answers a request whose handling threw with DynamoDB's 500 (or drops the connection if an answer had begun). */
function failed(res, err) {
  log('error', 'local DynamoDB: dynalite threw while handling a request; answered 500 InternalServerError', {
    error: err instanceof Error ? (err.stack ?? err.message).split('\n').slice(0, 4).join('\n') : String(err),
  });
  if (res.headersSent) res.destroy();
  else sendJson(res, 500, { __type: INTERNAL_ERROR, message: 'Internal server error' });
}

/**
 * Hands a request to dynalite's own handler with the body already read, emitted synchronously, so everything dynalite
 * does before its first storage call (parsing, type checks, validation: where deep input overflows the stack) runs
 * inside the caller's try/catch. What it does later runs in the request's async context (see `uncaughtException`).
 */
function callDynalite(handler, req, res, body) {
  const replay = Object.assign(new EventEmitter(), {
    headers: req.headers,
    method: req.method,
    url: req.url,
    socket: req.socket,
  });
  handler(replay, res);
  if (body.length > 0) replay.emit('data', body);
  replay.emit('end');
}

/**
 * Wraps `res.end` so the meter sees dynalite's answer first, and its record is sent to the runtime before the client's
 * answer (the runtime may still read the answer first: `Meter.settled()` waits for the record).
 */
function metered(res, finish) {
  const end = res.end.bind(res);
  res.end = (chunk, ...rest) => {
    const { record, answer, rewritten } = finish(res.statusCode, chunk);
    if (rewritten && !res.headersSent) {
      res.setHeader('Content-Length', Buffer.byteLength(answer));
      // The body changed, so dynalite's CRC32 of the original would no longer match.
      res.removeHeader('x-amz-crc32');
    }
    send({ type: 'meter', record }, () => end(answer, ...rest));
    return res;
  };
}

function handle(handler, req, res, body) {
  const action = String(req.headers['x-amz-target'] ?? '').split('.')[1] ?? '';
  let request;
  try {
    request = JSON.parse(body.toString('utf8'));
  } catch {
    // Not JSON: dynalite answers it as AWS does (SerializationException).
  }
  const broken = ruleBroken(action, request);
  if (broken !== undefined) return sendJson(res, 400, { __type: VALIDATION, message: broken });
  const agent = `${req.headers['x-amz-user-agent'] ?? ''} ${req.headers['user-agent'] ?? ''}`;
  const skip = config.meter?.skipUserAgent;
  if (config.meter !== undefined && !(skip !== undefined && agent.includes(skip))) {
    const prepared = meterRequest(action || 'unknown', request, body);
    metered(res, prepared.finish);
    body = prepared.body;
  }
  callDynalite(handler, req, res, body);
}

/** Each request runs in its own async context, so a throw from a later callback still finds the request it broke. */
const current = new AsyncLocalStorage();

function frontOf(handler) {
  return (req, res) => {
    const chunks = [];
    let size = 0;
    req.on('error', () => undefined); // the client went away; nothing to answer
    req.on('data', (chunk) => {
      size += chunk.length;
      if (size <= MAX_REQUEST_BYTES) chunks.push(chunk);
    });
    req.on('end', () => {
      if (size > MAX_REQUEST_BYTES) {
        res.statusCode = 413;
        res.end();
        return;
      }
      current.run({ res }, () => {
        try {
          handle(handler, req, res, Buffer.concat(chunks));
        } catch (err) {
          failed(res, err);
        }
      });
    });
  };
}

// A throw from one of dynalite's later callbacks (storage, locks) would end this process: answer the request it broke
// instead, found through its async context, and keep serving the others.
process.on('uncaughtException', (err) => {
  const request = current.getStore();
  try {
    if (request !== undefined) failed(request.res, err);
    else log('error', 'local DynamoDB: uncaught error outside any request', { error: String(err?.stack ?? err) });
  } catch {
    // Nothing more to answer: the connection is gone.
  }
});

patchAllOldOnConditionFailure();
const dynalite = require('dynalite');
const { version } = require('dynalite/package.json');
// Zero delays: tables (and indexes) are ACTIVE as soon as CreateTable returns, instead of after dynalite's 500 ms.
const server = dynalite({
  ...(config.dataDir === undefined ? {} : { path: config.dataDir }),
  createTableMs: 0,
  deleteTableMs: 0,
  updateTableMs: 0,
});
const [dynaliteHandler] = server.listeners('request');
server.removeAllListeners('request');
server.on('request', frontOf(dynaliteHandler));

let closing = false;
/** Stops listening, lets dynalite close LevelDB once its pending operations finish, then exits. */
function close() {
  if (closing) return;
  closing = true;
  server.close((err) => {
    if (err) log('error', 'local DynamoDB: close failed', { error: String(err) });
    process.exit(0);
  });
  server.closeAllConnections();
}
process.on('message', (message) => {
  if (message?.type === 'close') close();
  // The IPC channel keeps order: the answer comes after every meter record sent before it.
  if (message?.type === 'flush') send({ type: 'flushed', id: message.id });
});
// The runtime went away without closing us: close (flushing a dataDir) rather than linger.
process.on('disconnect', close);
// Ctrl-C reaches the whole process group: the runtime closes us in order, after the functions that use us.
process.on('SIGINT', () => undefined);
process.on('SIGTERM', close);

server.once('error', (err) => {
  send({ type: 'failed', message: String(err) }, () => process.exit(1));
});
server.listen(config.port ?? 0, config.host ?? '127.0.0.1', () => {
  send({ type: 'ready', port: server.address().port, version, pid: process.pid });
});
