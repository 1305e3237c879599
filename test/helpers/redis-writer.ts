/** The Redis writer (src/soak/redis-writer.ts) in the dev cloud's client namespace. */
import { startWriter as startIn, type RedisWriter } from '../../src/soak/redis-writer.js';
import { cloud } from './cloud.js';

export { longestGap, stopWriters, type Ack, type RedisWriter } from '../../src/soak/redis-writer.js';

/** Start a writer against Redis at `ip`:6379 on ferry-fabric. */
export function startWriter(ip: string): RedisWriter {
  return startIn(ip, cloud().fabric.client_netns);
}
