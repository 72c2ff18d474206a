/**
 * The local API Gateway WebSocket stand-in, kept at its old import path: the code is in local/gateway/ (one concern
 * per file, index.ts wires them and describes what is reproduced from AWS).
 */
export * from './gateway/index.ts';
