import { expect } from 'chai';
import { inspect } from 'node:util';
import { loadSettings } from '../../../src/config/settings';
import { Secret, redact } from '../../../src/common/secret';
import { CellcryptError } from '../../../src/common/errors';

function refusal(fn: () => unknown): CellcryptError {
  try {
    fn();
  } catch (error) {
    expect(error).to.be.instanceOf(CellcryptError);
    return error as CellcryptError;
  }
  throw new Error('expected a refusal');
}

describe('settings', () => {
  it('defaults to the embedded databases under CELLCRYPT_HOME', () => {
    const settings = loadSettings({ env: {}, cwd: '/srv/app' });
    expect(settings.database).to.include({ kind: 'pglite', path: '/srv/app/.cellcrypt/org' });
    expect(settings.config).to.include({ kind: 'pglite', path: '/srv/app/.cellcrypt/config' });
    expect(settings.changeQuota).to.equal(3);
    expect(settings.keyMaxAgeDays).to.equal(365);
  });

  it('CELLCRYPT_KEY_MAX_AGE_DAYS: a whole number of days, 1 or more (issue 18)', () => {
    expect(loadSettings({ env: { CELLCRYPT_KEY_MAX_AGE_DAYS: '90' }, cwd: '/' }).keyMaxAgeDays).to.equal(90);
    for (const value of ['0', '1.5', '1y', '-3', '']) {
      const error = refusal(() => loadSettings({ env: { CELLCRYPT_KEY_MAX_AGE_DAYS: value }, cwd: '/' }));
      expect(error.exitCode, value).to.equal(2);
      expect(error.message, value).to.contain(`CELLCRYPT_KEY_MAX_AGE_DAYS: "${value}" is not a whole number of days`);
    }
  });

  it('prefers --database-url over DATABASE_URL and parses every scheme', () => {
    const settings = loadSettings({
      env: { DATABASE_URL: 'pglite:/a', CELLCRYPT_KEYSTORE_SECRET: 'x'.repeat(20) },
      databaseUrl: 'postgres://u:pw@h:5/db',
      configUrl: 'mssql://sa:pw@h/cfg',
      cwd: '/',
    });
    expect(settings.database.kind).to.equal('postgres');
    expect(settings.config.kind).to.equal('mssql');
  });

  it('lists every problem in one error, exit 2, without echoing passwords', () => {
    const error = refusal(() =>
      loadSettings({
        env: {
          DATABASE_URL: 'mysql://u:hunter2@h/db',
          CELLCRYPT_CONFIG_URL: 'postgres://u:hunter2@cfg/db',
          CELLCRYPT_CHANGE_QUOTA: 'many',
          CELLCRYPT_REGISTRY: '/nope.json',
        },
        cwd: '/',
      }),
    );
    expect(error.code).to.equal('CellcryptConfigInvalid');
    expect(error.exitCode).to.equal(2);
    for (const part of ['DATABASE_URL', 'CELLCRYPT_KEYSTORE_SECRET', 'CELLCRYPT_CHANGE_QUOTA', 'CELLCRYPT_REGISTRY'])
      expect(error.message).to.contain(part);
    expect(error.message).not.to.contain('hunter2');
  });

  it('keeps secrets out of JSON, inspect and string forms', () => {
    const settings = loadSettings({
      env: { CELLCRYPT_KEYSTORE_SECRET: 'very-secret-value-123', DATABASE_URL: 'postgres://u:pw-xyz@h/db' },
      cwd: '/',
    });
    const shown = [
      JSON.stringify(settings),
      inspect(settings, { depth: 5 }),
      `${settings.keystoreSecret}`,
      String(Object.keys(settings)),
    ];
    for (const text of shown) {
      expect(text).not.to.contain('very-secret-value-123');
      expect(text).not.to.contain('pw-xyz');
    }
    expect(settings.keystoreSecret!.reveal()).to.equal('very-secret-value-123');
    expect(settings.database.url).to.contain('pw-xyz');
    expect(settings.database.display).to.equal('postgres://u:***@h/db');
  });

  it('redact masks every secret occurrence', () => {
    expect(redact("a 'p?w' b 'p?w'", [new Secret("'p?w'")])).to.equal('a *** b ***');
  });
});
