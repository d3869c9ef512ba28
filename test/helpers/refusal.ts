/**
 * `refusal(p)`: awaits a promise that must reject with a CrowbarError (an import, an engine
 * operation) and returns that error for the test to inspect; fails the test if it resolves.
 */
import { expect } from 'vitest';
import { CrowbarError } from '../../src/domain/errors.js';

export async function refusal(p: Promise<unknown>, what = 'the import'): Promise<CrowbarError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(CrowbarError);
    return e as CrowbarError;
  }
  throw new Error(`expected ${what} to be refused`);
}
