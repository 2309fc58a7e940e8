import { expect } from 'chai';
import { Secret } from '../../../../src/common/secret';
import { DYNAMICS_DEFAULT_COLUMNS } from '../../../../src/core/registry';
import { renderMssqlScript } from '../../../../src/cli/commands/script';
import { planScript, type ScriptOperation } from '../../../../src/core/script-plan';
import { columnStatements as S } from '../../../../src/engines/mssql/column-statements';
import { lockResource } from '../../../../src/engines/mssql/session-lock';
import {
  guardBatchRule,
  orgLockRule,
  probeAfterOpenRule,
  recountBeforeDropRule,
  REQUIRED_SESSION_OPTIONS,
  serverChecksRule,
  sessionOptionsRule,
  tableLocksRule,
  typeGuardRule,
} from '../../../support/tsql-rules';

/**
 * The script rules (test/support/tsql-rules.ts, 7-14) on the scripts `cellcrypt script` prints:
 * each holds on the real install, change-key and activate scripts, and each fails, naming the
 * part, when that part is cut out of a real script.
 */
const KEY = new Secret('A-Passphrase-The-DBA-Chose-1!');
const COLUMNS = DYNAMICS_DEFAULT_COLUMNS;
const TABLES = COLUMNS.map((c) => c.table);
const RESOURCE = lockResource('cellcrypt-key-operation');
const render = (operation: ScriptOperation) => renderMssqlScript(operation, COLUMNS, 3, KEY);
const SCRIPTS = { install: render('install'), 'change-key': render('change-key'), activate: render('activate') };
const ALL = Object.entries(SCRIPTS) as [ScriptOperation, string][];

/** `script` with `part` cut out; the part must be there (a cut that cuts nothing proves nothing). */
function without(script: string, part: string | RegExp, replacement = ''): string {
  const cut = script.replace(part, replacement);
  expect(cut, `${String(part)} is not in the script`).not.to.equal(script);
  return cut;
}

/** Violations with batch numbers as N: how many batches precede one depends on the prepare statements. */
const numbered = (violations: string[]) => violations.map((v) => v.replace(/batch \d+/g, 'batch N'));

/** The first whole line of `script` that contains `text`, with its newline. */
function lineWith(script: string, text: string): string {
  const line = script.split('\n').find((l) => l.includes(text));
  expect(line, text).to.be.a('string');
  return `${line}\n`;
}

describe('script rules: the guard batch (DL5)', () => {
  it('holds on every script: its own batch 2, every variable tested, RAISERROR and SET NOEXEC ON', () => {
    for (const [operation, script] of ALL) expect(guardBatchRule(script), operation).to.deep.equal([]);
  });

  it('fails without the guard, without one variable, without NOEXEC, or inside batch 1', () => {
    const script = SCRIPTS.install;
    const guard = script.split('\nGO\n')[1];
    expect(guardBatchRule(without(script, `${guard}\nGO\n`))[0]).to.match(/^no guard batch/);
    const passphrase = lineWith(script, "IF N'$(CellcryptPassphrase)' = N'$' + N'(CellcryptPassphrase)'");
    expect(guardBatchRule(without(script, passphrase))).to.deep.equal([
      'the guard batch does not test $(CellcryptPassphrase) ' +
        "(IF N'$(CellcryptPassphrase)' = N'$' + N'(CellcryptPassphrase)')",
    ]);
    expect(guardBatchRule(without(script, /SET NOEXEC ON; /g))).to.deep.equal([
      'the guard batch does not SET NOEXEC ON (later batches would run)',
    ]);
    expect(guardBatchRule(without(script, 'SET XACT_ABORT ON;\nGO\n', 'SET XACT_ABORT ON;\n'))).to.deep.equal([
      'the guard shares batch 1 with a sqlcmd command: without SQLCMD mode that batch never runs',
    ]);
  });

  it('fails when a change comes before it', () => {
    const moved = without(SCRIPTS.install, ':on error exit\n', ':on error exit\nCREATE TABLE dbo.t (c int);\n');
    expect(guardBatchRule(moved)).to.deep.equal([
      'a change comes before the guard: batch 1: CREATE TABLE dbo.t (c int)',
    ]);
  });
});

describe('script rules: the SET options (BR4)', () => {
  it('holds on every script', () => {
    for (const [operation, script] of ALL) expect(sessionOptionsRule(script), operation).to.deep.equal([]);
  });

  it('fails, naming the option, for each one left out or turned back', () => {
    for (const [option, value] of REQUIRED_SESSION_OPTIONS) {
      const violations = sessionOptionsRule(without(SCRIPTS['change-key'], `SET ${option} ${value};\n`));
      expect(violations).to.have.length(1);
      expect(violations[0]).to.match(new RegExp(`^SET ${option} ${value} is missing before the first change`));
    }
    const back = without(SCRIPTS.install, 'BEGIN TRANSACTION;\n', 'BEGIN TRANSACTION;\nSET QUOTED_IDENTIFIER OFF;\n');
    expect(sessionOptionsRule(back)).to.deep.equal(['SET QUOTED_IDENTIFIER OFF turns it back']);
  });
});

describe('script rules: the server checks (CO4)', () => {
  it('holds on every script', () => {
    for (const [operation, script] of ALL) expect(serverChecksRule(script), operation).to.deep.equal([]);
  });

  it('fails without the version check, and without the trace flag 4631 check', () => {
    const script = SCRIPTS.activate;
    expect(serverChecksRule(without(script, lineWith(script, "SERVERPROPERTY('ProductMajorVersion')")))).to.deep.equal([
      "no SQL Server version check (IF SERVERPROPERTY('ProductMajorVersion') < 14 THROW) before the first change",
    ]);
    expect(serverChecksRule(without(script, lineWith(script, 'DBCC TRACESTATUS(4631, -1)')))).to.deep.equal([
      'no trace flag 4631 check (DBCC TRACESTATUS(4631, -1), then IF … 4631 … THROW) before the first change',
    ]);
    expect(
      serverChecksRule(without(script, lineWith(script, 'FROM @traceFlags WHERE TraceFlag = 4631'))),
    ).to.have.length(1);
  });
});

describe('script rules: the org lock', () => {
  it("holds on every script, on the engine's resource", () => {
    for (const [operation, script] of ALL) expect(orgLockRule(script, RESOURCE), operation).to.deep.equal([]);
    expect(RESOURCE).to.equal('cellcrypt:cellcrypt-key-operation');
  });

  it('fails without the lock, with another owner or a wait, unchecked, or never released', () => {
    const script = SCRIPTS['change-key'];
    expect(orgLockRule(without(script, lineWith(script, 'sys.sp_getapplock')), RESOURCE)).to.deep.equal([
      `no sp_getapplock on ${RESOURCE} before the first change`,
    ]);
    expect(
      orgLockRule(
        without(script, "@LockOwner = 'Session', @LockTimeout = 0", "@LockOwner = 'Transaction', @LockTimeout = 5000"),
        RESOURCE,
      ),
    ).to.deep.equal([
      'sp_getapplock: @lockowner is Transaction, not Session',
      'sp_getapplock: @locktimeout is 5000, not 0',
    ]);
    expect(orgLockRule(without(script, lineWith(script, 'IF @orgLock < 0')), RESOURCE)).to.deep.equal([
      "sp_getapplock's result is not checked (IF @result < 0 THROW)",
    ]);
    expect(orgLockRule(without(script, lineWith(script, 'sys.sp_releaseapplock')), RESOURCE)).to.deep.equal([
      `the lock on ${RESOURCE} is not released (sp_releaseapplock) after the COMMIT`,
    ]);
    expect(orgLockRule(script, 'cellcrypt:another-lock')).to.deep.equal([
      `sp_getapplock: @resource is ${RESOURCE}, not cellcrypt:another-lock`,
      'the lock on cellcrypt:another-lock is not released (sp_releaseapplock) after the COMMIT',
    ]);
  });
});

describe('script rules: the table locks in the first transaction batch (DL4)', () => {
  it('hold on install and change-key, for every registered table', () => {
    expect(tableLocksRule(SCRIPTS.install, TABLES)).to.deep.equal([]);
    expect(tableLocksRule(SCRIPTS['change-key'], TABLES)).to.deep.equal([]);
  });

  it('fail, naming the table, when its lock is cut or comes after a change', () => {
    const mailbox = COLUMNS.find((c) => c.table === 'MailboxBase')!;
    const lock = `${S.lockTable(mailbox)};\n`;
    for (const operation of ['install', 'change-key'] as const) {
      const script = SCRIPTS[operation];
      expect(numbered(tableLocksRule(without(script, lock), TABLES)), operation).to.deep.equal([
        '[MailboxBase] is not locked (WITH (TABLOCKX, HOLDLOCK)) in the first transaction batch ' +
          '(batch N) before its changes',
      ]);
    }
    const late = without(without(SCRIPTS['change-key'], lock), /(CREATE SYMMETRIC KEY [^\n]*\n)/, `$1${lock}`);
    expect(tableLocksRule(late, TABLES)).to.have.length(1);
  });
});

describe('script rules: the type guard per column (DL1)', () => {
  it('holds on install for every column: shadow, encryption, DROP COLUMN each behind a sys.columns type test', () => {
    expect(typeGuardRule(SCRIPTS.install, COLUMNS)).to.deep.equal([]);
  });

  it('fails, naming the column and the step, when the type read or test is cut', () => {
    const column = COLUMNS.find((c) => c.table === 'MailboxBase')!;
    const read =
      `DECLARE @type sysname = (SELECT TYPE_NAME(system_type_id) FROM sys.columns WHERE object_id = ` +
      `OBJECT_ID(N'[MailboxBase]', N'U') AND name = N'Password');`;
    expect(
      numbered(typeGuardRule(without(SCRIPTS.install, read, "DECLARE @type sysname = N'nvarchar';"), [column])),
    ).to.deep.equal([
      'MailboxBase.Password: ENCRYPTBYKEY into its shadow in batch N without a type guard before it ' +
        '(TYPE_NAME(system_type_id) from sys.columns IN nvarchar, nchar, varchar, char)',
      'MailboxBase.Password: DROP COLUMN in batch N without a type guard before it ' +
        '(TYPE_NAME(system_type_id) from sys.columns IN nvarchar, nchar, varchar, char)',
    ]);
    const add = lineWith(SCRIPTS.install, 'ALTER TABLE [MailboxBase] ADD [Password__cellcrypt]');
    const unguarded = `${S.addShadow(column, 484)};\n`;
    expect(numbered(typeGuardRule(without(SCRIPTS.install, add, unguarded), [column]))).to.deep.equal([
      'MailboxBase.Password: ALTER TABLE … ADD of its shadow in batch N without a type guard before it ' +
        '(TYPE_NAME(system_type_id) from sys.columns IN nvarchar, nchar, varchar, char)',
    ]);
  });
});

describe('script rules: the re-count before DROP SYMMETRIC KEY (DL4) and the old GUID (CO2)', () => {
  it('holds on change-key for every column', () => {
    expect(recountBeforeDropRule(SCRIPTS['change-key'], COLUMNS, 'cellcrypt_key_3')).to.deep.equal([]);
  });

  it('fails, naming the column, when its re-count is cut; on a change in between; on KEY_GUID after the drop', () => {
    const script = SCRIPTS['change-key'];
    const recount = lineWith(script, 'WHERE SUBSTRING([Password], 1, 16) = CONVERT(varbinary(16), @oldKeyGuid)');
    expect(recountBeforeDropRule(without(script, recount), COLUMNS, 'cellcrypt_key_3')).to.deep.equal([
      'MailboxBase.Password: its cells still on cellcrypt_key_3 are not re-counted ' +
        '(SUBSTRING(C, 1, 16) = GUID, THROW) ' +
        'before DROP SYMMETRIC KEY [cellcrypt_key_3]',
    ]);
    const write = 'UPDATE [MailboxBase] SET [Password] = NULL WHERE 1 = 0;\n';
    expect(
      recountBeforeDropRule(
        without(script, /(CLOSE ALL SYMMETRIC KEYS; DROP)/, `${write}$1`),
        COLUMNS,
        'cellcrypt_key_3',
      ),
    ).to.deep.equal([
      'a change between the re-count and DROP SYMMETRIC KEY [cellcrypt_key_3]: ' +
        'UPDATE [MailboxBase] SET [Password] = NULL WHERE 1 = 0',
    ]);
    const audit = without(
      script,
      "N'succeeded', CONVERT(nvarchar(36), @oldKeyGuid)",
      "N'succeeded', CONVERT(nvarchar(36), KEY_GUID(N'cellcrypt_key_3'))",
    );
    expect(recountBeforeDropRule(audit, COLUMNS, 'cellcrypt_key_3')).to.deep.equal([
      "KEY_GUID(N'cellcrypt_key_3') is read after DROP SYMMETRIC KEY [cellcrypt_key_3], where it is NULL",
    ]);
  });
});

describe('script rules: the known-answer probe right after the key is opened (DL3)', () => {
  const hex = (operation: ScriptOperation) => {
    const { probe } = planScript(operation, COLUMNS, 3, KEY);
    return { cell: probe.cell.toString('hex'), plaintext: probe.plaintext.toString('hex') };
  };

  it('holds on every script, with the blob Node made from the key file', () => {
    expect(probeAfterOpenRule(SCRIPTS.install, 'cellcrypt_key_1', hex('install'))).to.deep.equal([]);
    expect(probeAfterOpenRule(SCRIPTS['change-key'], 'cellcrypt_key_4', hex('change-key'))).to.deep.equal([]);
    expect(probeAfterOpenRule(SCRIPTS.activate, 'cellcrypt_key_3', hex('activate'))).to.deep.equal([]);
  });

  it('fails when the probe is cut, moved after another statement, or decrypts another blob', () => {
    for (const [operation, script] of ALL) {
      const key =
        operation === 'install'
          ? 'cellcrypt_key_1'
          : operation === 'change-key'
            ? 'cellcrypt_key_4'
            : 'cellcrypt_key_3';
      const probe = lineWith(script, 'IF DECRYPTBYKEY(0x');
      const [violation] = probeAfterOpenRule(without(script, probe), key);
      expect(violation, operation).to.match(
        new RegExp(`^no known-answer probe right after OPEN SYMMETRIC KEY \\[${key}\\]`),
      );
      const record = lineWith(script, 'DELETE FROM cellcrypt.key_derivation WHERE name');
      const moved = without(without(script, probe), record, `${record}${probe}`);
      expect(probeAfterOpenRule(moved, key)[0], operation).to.match(/^no known-answer probe right after/);
    }
    const other = { cell: '00'.repeat(68), plaintext: hex('install').plaintext };
    expect(probeAfterOpenRule(SCRIPTS.install, 'cellcrypt_key_1', other)).to.deep.equal([
      'the probe decrypts another blob',
    ]);
  });
});
