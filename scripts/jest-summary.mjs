// Prints one closing line for the whole test run from its JSON reports (jest's, and the tempest
// and browser runs' in jest's shape): "N passed, N failed, N skipped". A missing report, a report
// that passed no test, or a test file in which no test passed (all skipped) counts as a failure:
// a suite that silently stopped running is not green.
//
// Each failed test is named with the first lines of its error, right above the closing line: CI
// keeps only the end of a run's output, and a bare file name does not say what broke.
import fs from 'node:fs';

const MAX_DETAILED = 8;
const LINES_PER_FAILURE = 3;
const details = [];
// eslint-disable-next-line no-control-regex
const plain = (text) => text.replace(/\u001b\[[0-9;]*m/g, '');

function describeFailure(suite, assertion) {
  const title = [...(assertion.ancestorTitles ?? []), assertion.title].join(' > ');
  const message = plain((assertion.failureMessages ?? []).join('\n'))
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith('at '))
    .slice(0, LINES_PER_FAILURE)
    .map((line) => (line.length > 200 ? `${line.slice(0, 200)}...` : line));
  return [`  x ${suite.replace(/^.*\/test\//, 'test/')}: ${title}`, ...message.map((line) => `      ${line}`)];
}

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
      const failedTests = (s.assertionResults ?? []).filter((a) => a.status === 'failed');
      for (const a of failedTests) details.push(describeFailure(s.name, a));
      if (failedTests.length === 0 && s.message) {
        details.push([`  x ${s.name}: the file failed outside its tests`, ...plain(s.message).split('\n').slice(0, 6)]);
      }
      continue;
    }
    const results = s.assertionResults;
    if (Array.isArray(results) && !results.some((a) => a.status === 'passed')) {
      failed++;
      console.log(`    NO TEST RAN: ${s.name} (every test in it skipped)`);
    }
  }
}
if (details.length > 0) {
  console.log(`failed tests (${details.length}; the first ${Math.min(details.length, MAX_DETAILED)}):`);
  for (const lines of details.slice(0, MAX_DETAILED)) console.log(lines.join('\n'));
}
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed > 0 ? 1 : 0);
