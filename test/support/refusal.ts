import { expect } from 'chai';
import { CellcryptError } from '../../src/common/errors';

/** The CellcryptError a promise rejects with; fails the test if it resolves or throws anything else. */
export async function rejection(promise: Promise<unknown>): Promise<CellcryptError> {
  try {
    await promise;
  } catch (error) {
    expect(error).to.be.instanceOf(CellcryptError);
    return error as CellcryptError;
  }
  throw new Error('expected a CellcryptError');
}
