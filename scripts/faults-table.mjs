#!/usr/bin/env node
// README's "Faults survived" table from the rows the fault tests wrote (results/faults.jsonl):
// one line per fault and phase, the latest run's outcome.
import fs from 'node:fs';

const file = process.argv[2] ?? 'results/faults.jsonl';
if (!fs.existsSync(file)) {
  console.error(`no ${file}: run the fault tests first (bash scripts/test.sh, or jest test/integration/faults)`);
  process.exit(1);
}
const rows = new Map();
for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
  if (!line.trim()) continue;
  const r = JSON.parse(line);
  rows.set(`${r.fault}\u0000${r.phase}`, r);
}
console.log('| fault | phase | record at the fault | asked again | expected | outcome | state kept | left behind |');
console.log('|---|---|---|---|---|---|---|---|');
for (const r of rows.values()) {
  const at = r.at_fault ?? 'not read';
  const again = r.asked_again ? (r.asked_again.length ? r.asked_again.join(', ') : 'none') : 'not read';
  console.log(`| ${r.fault} | ${r.phase} | ${at} | ${again} | ${r.expected} | ${r.outcome} | ${r.state_kept ? 'yes (sentinel and DBSIZE read back)' : /no single host/.test(r.outcome) ? 'not read: no single copy runs' : 'NO'} | ${r.left_behind ? `${r.left_behind} (staging or records)` : 'nothing'} |`);
}
