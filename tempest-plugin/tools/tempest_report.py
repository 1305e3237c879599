"""Turns the output of `tempest run` (its Totals block and its `... FAILED` lines) into a
report in the shape of jest's JSON, so scripts/jest-summary.mjs counts tempest's tests in the
suite's one closing line. Usage: tempest_report.py TEMPEST_OUTPUT REPORT_JSON
No Totals block (tempest crashed) writes no report: the summary then counts it as failed."""
import json
import re
import sys


def main(log_path, out_path):
    text = open(log_path, errors='replace').read()
    totals = text[text.rfind('Totals'):] if 'Totals' in text else ''

    def count(label):
        m = re.search(r'- %s: (\d+)' % label, totals)
        return int(m.group(1)) if m else 0

    if not re.search(r'Ran: \d+ tests', totals):
        print('tempest printed no totals: no report written', file=sys.stderr)
        return 1
    failed_line = r'^\{\d+\} (\S+|setUpClass \(\S+\)) \[[^\]]*\] \.\.\. FAILED'
    failed_tests = sorted(set(re.findall(failed_line, text, re.M)))
    report = {
        'numPassedTests': count('Passed') + count('Expected Fail'),
        'numFailedTests': count('Failed') + count('Unexpected Success'),
        'numPendingTests': count('Skipped'),
        'numTodoTests': 0,
        'numRuntimeErrorTestSuites': 0,
        'testResults': [{'name': 'tempest: %s' % t, 'status': 'failed'} for t in failed_tests],
    }
    with open(out_path, 'w') as f:
        json.dump(report, f)
    print('tempest: %d passed, %d failed, %d skipped' % (
        report['numPassedTests'], report['numFailedTests'], report['numPendingTests']))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1], sys.argv[2]))
