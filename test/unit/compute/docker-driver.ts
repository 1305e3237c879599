/** A DockerDriver for unit tests: no engine behind it until a test puts its fake in. */
import { DockerDriver, type DockerDriverOptions } from '../../../src/compute/docker/driver.js';

/** The driver with `engine` standing in for dockerode's client; `over` changes its options. */
export function dockerDriverOn(engine: unknown, over: Partial<DockerDriverOptions> = {}): DockerDriver {
  const driver = new DockerDriver({
    host: 'compute2',
    dockerUrl: 'unix:///nonexistent/docker.sock',
    workDir: '/nonexistent/work',
    criuBinary: 'criu',
    criuMinVersion: '4.2',
    sharedStoragePaths: [],
    fabricNetworks: [],
    fastCheckpoint: false,
    containerdAddress: '/nonexistent',
    ...over,
  });
  Object.defineProperty(driver, 'docker', { value: engine });
  return driver;
}
