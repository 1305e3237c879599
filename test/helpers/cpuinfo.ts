/** Crafted CPU features images for the CPU pre-check's tests (real CRIU on this machine). */
import { INS_BITS, decodeCpuinfoImage, dumpCpuinfo, encodeCpuinfoImage } from '../../src/compute/docker/cpuinfo.js';

/** This CPU's image, and the same image with the first instruction-set bit this CPU lacks switched on. */
export async function craftedCpuinfo(binary: string): Promise<{ own: Buffer; crafted: Buffer; feature: string }> {
  const { image, error } = await dumpCpuinfo(binary);
  if (!image) throw new Error(`criu cpuinfo dump: ${error}`);
  const own = decodeCpuinfoImage(image);
  const lacking = INS_BITS.find(([w, b]) => ((own.capability[w] >>> b) & 1) === 0);
  if (!lacking) throw new Error('this CPU has every instruction set CRIU compares');
  const [word, bit, feature] = lacking;
  const capability = [...own.capability];
  capability[word] = (capability[word] | (1 << bit)) >>> 0;
  return { own: image, crafted: encodeCpuinfoImage({ ...own, capability }), feature };
}
