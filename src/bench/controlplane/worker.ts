/**
 * One conductor of the control-plane benchmark in its own worker thread: its own database
 * connection and event loop, the engine reached through the main thread (conductors.ts).
 */
import v8 from 'node:v8';
import { parentPort, workerData } from 'node:worker_threads';
import { connectCounted } from './backends.js';
import { benchLogger, buildConductor, Channel, collect, operations, RemoteEngine, type HeapFigures, type WorkerInit } from './conductors.js';
import { QueryCounter } from './counting.js';

if (!parentPort) throw new Error('the benchmark conductor runs in a worker thread');
const init = workerData as WorkerInit;
const ch = new Channel(parentPort);
const heap = (): number => v8.getHeapStatistics().used_heap_size;
const figures: HeapFigures = { base: heap(), peak: heap(), after_gc: 0 };
setInterval(() => {
  figures.peak = Math.max(figures.peak, heap());
}, 200).unref();

const counter = new QueryCounter();
const conn = await connectCounted(init.url, counter);
const svc = await buildConductor(conn, new RemoteEngine(ch), init.setup, benchLogger());
const ops = operations(svc, counter);
ch.handle('reportState', ops.reportState);
ch.handle('migrate', ops.migrate);
ch.handle('sampleDecisions', ops.sampleDecisions);
ch.handle('whenIdle', ops.whenIdle);
ch.handle('statuses', ops.statuses);
ch.handle('counts', ops.counts);
ch.handle('heap', async () => {
  figures.peak = Math.max(figures.peak, heap());
  collect();
  figures.after_gc = heap();
  return figures;
});
await ch.call('ready');
