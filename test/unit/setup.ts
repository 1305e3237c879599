/**
 * Runs before every unit test file: Ferry's process logger stays quiet, so a unit run prints
 * only jest's own report. FERRY_TEST_LOG_LEVEL=debug (or info, warn) shows the logs again.
 * src/common/log.ts reads FERRY_LOG_LEVEL when it is first imported, which is after this.
 */
process.env.FERRY_LOG_LEVEL = process.env.FERRY_TEST_LOG_LEVEL ?? 'silent';
