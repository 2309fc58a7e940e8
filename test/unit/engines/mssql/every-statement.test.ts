import { expect } from 'chai';
import type { KeyPermission } from '../../../../src/engines/engine';
import { Secret } from '../../../../src/common/secret';
import { DYNAMICS_DEFAULT_COLUMNS } from '../../../../src/core/registry';
import { columnStatements as S, guidLiteral, keyGuidOf } from '../../../../src/engines/mssql/column-statements';
import { DEMO_TABLES } from '../../../../src/engines/demo-tables';
import { createTableStatement, createViewStatements, insertRowsStatement } from '../../../../src/engines/mssql/demo';
import { diagnoseStatement, probeTargetStatement } from '../../../../src/engines/mssql/diagnose';
import { inlineSecrets, keyStatements as K, prepareStatements } from '../../../../src/engines/mssql/key-statements';
import { permissionQuery } from '../../../../src/engines/mssql/permissions';
import { getAppLock, orgLockResource, releaseAppLock } from '../../../../src/engines/mssql/session-lock';
import { escapeForKnex } from '../../../../src/engines/mssql/quote';
import { parseTsql } from '../../../support/tsql-grammar';
import { allStatementRules } from '../../../support/tsql-rules';

/**
 * Issue 5, test 1, builder by builder: every statement the engine can send (also the ones the
 * transaction-plan tests do not reach: demo seed, doctor, permissions, lock, batched change),
 * with names that need quoting, parses and keeps our rules, including rule 5 (no bare ? in a
 * literal) for the statements knex carries.
 */
const SECRET = new Secret("pa'ss]?;--😀 1!");
const GUID = '5E3F5200-B208-9A14-3EA7-DE70CC509869';
const HOSTILE = { table: "T]'?; --", column: "C]'?", primaryKey: 'Id?]', maxLength: 50 };

function statements(): Array<[string, string, { knex: boolean }]> {
  const secrets = inlineSecrets({
    masterKeyPassword: SECRET,
    newMasterKeyPassword: SECRET,
    passphrase: SECRET,
    identityValue: SECRET,
  });
  const viaKnex = { knex: true };
  const direct = { knex: false }; // sent to tedious directly (secrets, long statements, the lock)
  const out: Array<[string, string, { knex: boolean }]> = [
    ['createMasterKey', K.createMasterKey(secrets), direct],
    ['openMasterKey', K.openMasterKey(secrets), direct],
    ['reencryptMasterKeyByServer', K.reencryptMasterKeyByServer(secrets), direct],
    ['createSymmetricKey', K.createSymmetricKey('cellcrypt_key_2', 'cellcrypt_certificate', secrets), direct],
    ['createCertificate', K.createCertificate("cert]'?"), viaKnex],
    ['openSymmetricKey', K.openSymmetricKey("key]'?", "cert]'?"), viaKnex],
    ['probeSymmetricKey', K.probeSymmetricKey("key]'?", 'abcdef0123'), viaKnex],
    ['dropSymmetricKey', K.dropSymmetricKey("key]'?"), viaKnex],
    ['closeAll', K.closeAll(), viaKnex],
    ['addKeyEncryption', K.addKeyEncryption("key]'?", "cert]'?"), viaKnex],
    ['dropKeyEncryption', K.dropKeyEncryption("key]'?", "cert]'?"), viaKnex],
    ['dropCertificate', K.dropCertificate("cert]'?"), viaKnex],
    ['changeMasterKeyPassword', K.changeMasterKeyPassword(secrets), direct],
    ['decrypt', K.decrypt('00aabbccdd'), viaKnex],
    ...K.reset('cellcrypt_certificate', 'cellcrypt_key_').map((sql, i): [string, string, { knex: boolean }] => [
      `reset ${i}`,
      sql,
      viaKnex,
    ]),
    ['foreignDependents', K.foreignDependents(), viaKnex],
    ['readMasterKey', K.readMasterKey(), viaKnex],
    ['readCertificates', K.readCertificates(), viaKnex],
    ['readSymmetricKeys', K.readSymmetricKeys(), viaKnex],
    ['readSymmetricKeysUnprepared', K.readSymmetricKeysUnprepared(), viaKnex],
    ['recordDerivation', K.recordDerivation("key]'?", 'sql2017'), viaKnex],
    ...prepareStatements().map((sql, i): [string, string, { knex: boolean }] => [`prepare ${i}`, sql, viaKnex]),
    ['diagnose', diagnoseStatement(), viaKnex],
    ['diagnose probe target', probeTargetStatement(), viaKnex],
    ['probeAutomaticOpen', K.probeAutomaticOpen("key]'?", "cert]'?"), viaKnex],
    ...(['read-key', 'change-key', 'activate'] as KeyPermission[]).map((p): [string, string, { knex: boolean }] => [
      `permission ${p}`,
      permissionQuery(p),
      viaKnex,
    ]),
    ['getAppLock', getAppLock('cellcrypt:mssql://sa:***@h/db?x=1:change-key'), direct],
    ['releaseAppLock', releaseAppLock('cellcrypt:mssql://sa:***@h/db?x=1:change-key'), direct],
    ['getAppLock (the org lock)', getAppLock(orgLockResource()), direct],
    ...DEMO_TABLES.flatMap((spec): Array<[string, string, { knex: boolean }]> => [
      [`demo create ${spec.table}`, createTableStatement(spec), viaKnex],
      [`demo insert ${spec.table}`, insertRowsStatement(spec, 1000), viaKnex],
      ...createViewStatements(spec).map((sql, i): [string, string, { knex: boolean }] => [
        `demo views ${spec.table} ${i}`,
        sql,
        viaKnex,
      ]),
    ]),
  ];
  for (const ref of [...DYNAMICS_DEFAULT_COLUMNS, HOSTILE]) {
    const name = `${ref.table}.${ref.column}`;
    out.push(
      [`${name} describe`, S.describe(ref), viaKnex],
      [`${name} tableExists`, S.tableExists(ref), viaKnex],
      [`${name} primaryKeyColumns`, S.primaryKeyColumns(ref), viaKnex],
      [`${name} findTooLong`, S.findTooLong(ref, 500), direct],
      [`${name} countNonNull plaintext`, S.countNonNull(ref, 'plaintext'), viaKnex],
      [`${name} countNonNull shadow`, S.countNonNull(ref, 'shadow'), viaKnex],
      [`${name} addShadow`, S.addShadow(ref, 580), viaKnex],
      [`${name} encryptBatch`, S.encryptBatch(ref, guidLiteral(GUID), 5000), direct],
      [`${name} encryptBatch (script)`, S.encryptBatch(ref, keyGuidOf("key]'?"), 5000), direct],
      [`${name} reconcile`, S.reconcile(ref, guidLiteral(GUID)), direct],
      [`${name} countShadowMismatches`, S.countShadowMismatches(ref), direct],
      [`${name} maxShadowBytes`, S.maxShadowBytes(ref), viaKnex],
      [`${name} lockTable`, S.lockTable(ref), viaKnex],
      [`${name} swap`, S.swap(ref), viaKnex],
      [`${name} census`, S.census(ref, false), direct],
      [`${name} census decrypt`, S.census(ref, true), direct],
      [`${name} findUndecryptable`, S.findUndecryptable(ref, 20), direct],
      [`${name} reencryptBatch`, S.reencryptBatch(ref, guidLiteral(GUID), guidLiteral(GUID), 5000), direct],
      [`${name} cellBytes`, S.cellBytes(ref), viaKnex],
      [`${name} sampleCells`, S.sampleCells(ref, 50), viaKnex],
    );
  }
  return out;
}

describe('mssql: every statement builder', function () {
  this.timeout(120_000);

  it("every statement parses with the T-SQL grammar and keeps our rules (names with ] ' ? ; -- included)", () => {
    const all = statements();
    expect(all.length).to.be.greaterThan(100);
    for (const [name, sql, { knex }] of all) {
      // What goes through knex is escaped by the engine's query() with this helper first.
      const sent = knex ? escapeForKnex(sql) : sql;
      expect(parseTsql(sql), `${name}: ${sql.slice(0, 200)}`).to.deep.equal([]);
      expect(allStatementRules(sent, { knex }), `${name}: ${sql.slice(0, 200)}`).to.deep.equal([]);
    }
  });

  it('refuses to build from a GUID that is not one (it is inlined as a literal)', () => {
    expect(() => guidLiteral("5E3F5200-B208-9A14-3EA7-DE70CC50986'; DROP TABLE x; --")).to.throw(/not a GUID/);
  });
});
