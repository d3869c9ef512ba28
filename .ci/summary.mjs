// Prints `N passed, N failed` from vitest's JSON report (the line CI reads).
import { readFileSync } from 'node:fs';

const file = process.argv[2];
try {
  const r = JSON.parse(readFileSync(file, 'utf8'));
  const failed = r.numFailedTests + (r.numRuntimeErrorTestSuites ?? 0) + (r.success === false && r.numFailedTests === 0 ? 1 : 0);
  console.log(`${r.numPassedTests} passed, ${failed} failed`);
} catch (e) {
  console.log(`0 passed, 1 failed`);
  console.error(`could not read the vitest JSON report ${file}: ${e.message}`);
}
