// Two projects: unit tests run anywhere; integration tests need the development cloud
// (scripts/test.sh brings it up first) and run one file at a time.
const common = {
  preset: 'ts-jest/presets/default-esm',
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform: { '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: 'tsconfig.test.json' }] },
  // The dev cloud's state: engines' data and other releases' trees (another package.json "ferry").
  modulePathIgnorePatterns: ['<rootDir>/.devcloud/'],
};
export default {
  // Integration tests drive real engines and migrations; unit tests finish far sooner.
  testTimeout: 300_000,
  projects: [
    // Unit runs keep Ferry's logger silent (test/unit/setup.ts; FERRY_TEST_LOG_LEVEL shows it).
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/test/unit/**/*.test.ts'], setupFiles: ['<rootDir>/test/unit/setup.ts'] },
    {
      ...common,
      displayName: 'integration',
      testMatch: ['<rootDir>/test/integration/**/*.test.ts'],
      // The engine measurement runs only when asked (FERRY_MEASURE=1): a file whose tests all
      // skip would count as a suite that stopped running (scripts/jest-summary.mjs).
      testPathIgnorePatterns: process.env.FERRY_MEASURE === '1' ? [] : ['/test/integration/compute/measure\\.test\\.ts$'],
      slowTestThreshold: 60,
    },
  ],
};
