// Prints one closing line for the whole test run from its JSON reports (jest's, and the tempest
// and browser runs' in jest's shape): "N passed, N failed, N skipped". A missing report, a report
// that passed no test, or a test file in which no test passed (all skipped) counts as a failure:
// a suite that silently stopped running is not green.
import fs from 'node:fs';

let passed = 0;
let failed = 0;
let skipped = 0;
for (const f of process.argv.slice(2)) {
  if (!fs.existsSync(f)) {
    failed++;
    console.log(`    ${f}: missing (the runner crashed)`);
    continue;
  }
  const r = JSON.parse(fs.readFileSync(f, 'utf8'));
  passed += r.numPassedTests;
  failed += r.numFailedTests + r.numRuntimeErrorTestSuites;
  skipped += r.numPendingTests + r.numTodoTests;
  if (r.numPassedTests === 0) {
    failed++;
    console.log(`    ${f}: no test passed (every test skipped, or none ran)`);
  }
  for (const s of r.testResults) {
    if (s.status === 'failed') {
      console.log(`    FAILED: ${s.name}`);
      continue;
    }
    const results = s.assertionResults;
    if (Array.isArray(results) && !results.some((a) => a.status === 'passed')) {
      failed++;
      console.log(`    NO TEST RAN: ${s.name} (every test in it skipped)`);
    }
  }
}
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed > 0 ? 1 : 0);
