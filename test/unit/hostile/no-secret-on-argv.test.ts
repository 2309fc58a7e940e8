import { expect } from 'chai';
import yargs, { type Argv } from 'yargs';
import { COMMANDS } from '../../../src/cli/commands';
import type { GlobalArgs } from '../../../src/cli/command';

/** Secrets arrive from files, stdin or the environment: no command may offer an option that takes one. */
describe('no command takes a secret on argv', () => {
  const SECRET_LIKE = /pass(word|phrase)?|secret|^key$|master|token|credential/i;
  // Paths, not secrets: the file holds the secret (script variables reads the master-key password from one).
  const ALLOWED = new Set(['key-file', 'master-key-password-file']);
  const seen: string[] = [];

  for (const command of COMMANDS) {
    it(`${String(command.command)}: every option names a file, a flag or a non-secret value`, () => {
      const parser = yargs([]) as unknown as Argv<GlobalArgs>;
      const built = (command.builder as (y: Argv<GlobalArgs>) => Argv<GlobalArgs>)(parser);
      const declared = (
        built as unknown as { getOptions(): { key: Record<string, unknown>; boolean: string[] } }
      ).getOptions();
      const options = Object.keys(declared.key);
      // A boolean flag carries no value (show-key --master-key-password says what to save, in a file).
      const flags = new Set(declared.boolean);
      const suspicious = options.filter((name) => SECRET_LIKE.test(name) && !ALLOWED.has(name) && !flags.has(name));
      expect(suspicious).to.deep.equal([]);
      seen.push(...options);
    });
  }

  it('the check can fail: the builders were read, and secret-like names are caught', () => {
    expect(seen).to.include.members(['key-file', 'batch-size', 'out', 'encoding']);
    expect(SECRET_LIKE.test('passphrase')).to.equal(true);
    expect(SECRET_LIKE.test('master-key-password')).to.equal(true);
  });
});
