/** placeholder, filled below */
import type { BenchCloud } from './cloud.js';
import type { Workload } from './types.js';
export async function analyzeDockerPath(_cloud: BenchCloud, _w: Workload, _log: (s: string) => void): Promise<{ markdown: string; data: unknown }> {
  return { markdown: '', data: null };
}
