import { expect } from 'chai';
import { parseConnectionTarget, type ConnectionTarget } from '../../../../src/config/connection-target';
import { ORG_KEY_LOCK } from '../../../../src/core/org-lock';
import type { KeyPermission } from '../../../../src/engines/engine';
import { diagnoseMssql, probeTargetStatement } from '../../../../src/engines/mssql/diagnose';
import { mssqlEngine } from '../../../../src/engines/mssql/engine';
import { inlineSecrets, keyStatements as K } from '../../../../src/engines/mssql/key-statements';
import { permissionQuery } from '../../../../src/engines/mssql/permissions';
import { getAppLock, ORG_KEY_LOCK_NAME, orgLockResource } from '../../../../src/engines/mssql/session-lock';
import { Secret } from '../../../../src/common/secret';
import { fakeMssqlKnex, type FakeMssql, type Responder } from '../../../support/fake-tedious';
import { parseTsql } from '../../../support/tsql-grammar';

/**
 * The SQL Server key rules a DBA relies on (issue 14): one org lock per database whoever connects
 * (WR3), the master key's protection never changed by the way and "opens by itself" judged by
 * opening (WR4), and key operations gated on what the server itself checks, CONTROL on the
 * database (BR1).
 */
const target = (url: string): ConnectionTarget => parseConnectionTarget(url, '/') as ConnectionTarget;
const TIMEOUTS = { requestTimeoutMs: 30_000, statementTimeoutMs: 60_000 };
const notOpening = () =>
  Object.assign(
    new Error(
      'Please create a master key in the database or open the master key in the session before performing this ' +
        'operation.',
    ),
    { number: 15581 },
  );

describe('mssql key rules (issue 14)', () => {
  const fakes: FakeMssql[] = [];
  const fake = (responder: Responder) => {
    const made = fakeMssqlKnex({ responder });
    fakes.push(made);
    return made;
  };
  afterEach(async () => {
    for (const made of fakes.splice(0)) await made.knex.destroy();
  });

  describe('WR3: the org lock', () => {
    it('is one resource per database: engines of other users, hosts and URL options take the same one', async () => {
      const urls = [
        'mssql://alice:a-pw@sql01:1433/Org_MSCRM?requestTimeout=60000',
        'mssql://bob:b-pw@ag-listener.example/Org_MSCRM?statementTimeout=0',
      ];
      const sent: string[] = [];
      for (const url of urls) {
        const made = fake((sql) => (sql.includes('sp_getapplock') ? [{ result: 0 }] : undefined));
        const release = await mssqlEngine(target(url), made.knex, TIMEOUTS).tryLock(ORG_KEY_LOCK);
        expect(release, url).to.be.a('function');
        await release!();
        sent.push(made.calls.find((c) => c.sql?.includes('sp_getapplock'))!.sql!);
      }
      expect(sent[0]).to.equal(sent[1]);
      expect(sent[0]).to.equal(getAppLock(orgLockResource()));
      expect(sent[0]).to.contain("@Resource = N'cellcrypt:cellcrypt-key-operation'");
      for (const part of ['alice', 'bob', 'sql01', 'listener', 'requestTimeout', 'statementTimeout'])
        expect(sent[0]).not.to.contain(part);
    });

    it("spells core's lock name (engines import no core, so a test holds the two equal)", () => {
      expect(ORG_KEY_LOCK_NAME).to.equal(ORG_KEY_LOCK);
      expect(orgLockResource()).to.equal('cellcrypt:cellcrypt-key-operation');
    });
  });

  describe("WR4: the master key's protection", () => {
    it('opening the master key changes nothing about it (no ALTER MASTER KEY, no service master key)', () => {
      const sql = K.openMasterKey(inlineSecrets({ masterKeyPassword: new Secret("pw'1") }));
      expect(parseTsql(sql)).to.deep.equal([]);
      expect(sql).to.equal("SET XACT_ABORT ON; OPEN MASTER KEY DECRYPTION BY PASSWORD = N'pw''1'");
    });

    it('doctor judges "opens by itself" by opening the newest key through its certificate', async () => {
      for (const opens of [true, false]) {
        const made = fake((sql) => {
          if (sql.startsWith('SELECT CONVERT(int, SERVERPROPERTY'))
            return [{ major: 16, version: '16.0', master_key: 1, certificate_expiry: null }];
          if (sql === probeTargetStatement())
            return [{ key_name: 'cellcrypt_key_3', certificate: 'cellcrypt_certificate_2' }];
          if (sql.startsWith('CLOSE ALL SYMMETRIC KEYS;')) return opens ? [] : notOpening();
          return undefined;
        });
        const checks = await diagnoseMssql(made.knex);
        const master = checks.find((c) => c.check === 'master key');
        expect(master?.outcome, String(opens)).to.equal(opens ? 'ok' : 'warn');
        if (!opens) {
          expect(master!.detail).to.contain('15581');
          expect(master!.hint).to.contain('activate').and.to.contain('sp_control_dbmasterkey_password');
        }
        const probe = made.calls.find((c) => c.sql?.includes('OPEN SYMMETRIC KEY'))!;
        expect(probe.sql).to.equal(K.probeAutomaticOpen('cellcrypt_key_3', 'cellcrypt_certificate_2'));
        expect(
          made.calls.some((c) => c.kind === 'beginTransaction'),
          'outside any transaction',
        ).to.equal(false);
        const sent = made.calls.flatMap((c) => (c.sql ? [c.sql] : []));
        expect(sent.join('\n')).not.to.contain('is_master_key_encrypted_by_server');
        for (const sql of sent) expect(parseTsql(sql), sql).to.deep.equal([]);
      }
    });

    it('doctor skips the master-key check when there is no master key, or no key of ours to open', async () => {
      for (const [masterKey, target] of [
        [0, [{ key_name: 'cellcrypt_key_1', certificate: 'cellcrypt_certificate' }]],
        [1, []],
      ] as const) {
        const made = fake((sql) => {
          if (sql.startsWith('SELECT CONVERT(int, SERVERPROPERTY'))
            return [{ major: 16, version: '16.0', master_key: masterKey, certificate_expiry: null }];
          if (sql === probeTargetStatement()) return [...target];
          return notOpening();
        });
        const checks = await diagnoseMssql(made.knex);
        expect(checks.map((c) => c.check)).to.deep.equal(['server']);
      }
    });
  });

  describe('BR1: who may run key operations', () => {
    it('every key permission is CONTROL on the database, which OPEN MASTER KEY requires (no roles)', () => {
      for (const permission of ['read-key', 'change-key', 'activate'] as KeyPermission[]) {
        const sql = permissionQuery(permission);
        expect(parseTsql(sql)).to.deep.equal([]);
        expect(sql).to.contain("HAS_PERMS_BY_NAME(DB_NAME(), 'DATABASE', 'CONTROL') = 1");
        expect(sql).not.to.match(/IS_MEMBER|ALTER ANY SYMMETRIC KEY|CERTIFICATE/);
      }
    });

    it('a user without it is refused before anything is read, told it needs CONTROL on the database', async () => {
      const made = fake((sql) =>
        sql.includes('HAS_PERMS_BY_NAME') ? [{ user_name: 'reader', granted: 0 }] : undefined,
      );
      const engine = mssqlEngine(target('mssql://reader:pw@sql01/Org'), made.knex, TIMEOUTS);
      for (const permission of ['read-key', 'change-key', 'activate'] as KeyPermission[]) {
        const check = await engine.checkPermission(permission);
        expect(check).to.include({ granted: false, user: 'reader' });
        expect(check.grantedBy).to.match(/^CONTROL on the database \(db_owner\)/);
        expect(check.grantedBy).to.contain('OPEN MASTER KEY');
        expect(check.grantedBy).not.to.contain('cellcrypt_key_');
      }
    });
  });
});
