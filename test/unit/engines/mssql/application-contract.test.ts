import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseConnectionTarget, type ConnectionTarget } from '../../../../src/config/connection-target';
import {
  APPLICATION_ROLE,
  applicationGrants,
  applicationObjects,
  grantCertificateToApplications,
  grantKeyToApplications,
} from '../../../../src/engines/mssql/application';
import { mssqlEngine } from '../../../../src/engines/mssql/engine';
import { prepareStatements } from '../../../../src/engines/mssql/key-statements';
import { escapeForKnex } from '../../../../src/engines/mssql/quote';
import { fakeMssqlKnex, type FakeMssql } from '../../../support/fake-tedious';
import { parseTsql } from '../../../support/tsql-grammar';
import { allStatementRules, tokenizeSql, tokenValue } from '../../../support/tsql-rules';

/**
 * The application contract on SQL Server (review DL6, BR1): what prepare creates for applications
 * (cellcrypt.current_key_guid, cellcrypt.open_keys, the role cellcrypt_application and its
 * grants) and the statements README tells an application to run. No SQL Server runs here: each
 * text is proven with the T-SQL grammar and our rules, including the ones sent inside EXEC.
 */
const HOSTILE = "k]'?; --";

/** The text of every `EXEC (N'...')` in a statement: what SQL Server runs as a batch of its own. */
function execTexts(sql: string): string[] {
  const tokens = tokenizeSql(sql).filter((t) => t.kind !== 'comment');
  return tokens.flatMap((t, i) =>
    t.kind === 'word' &&
    t.text.toUpperCase() === 'EXEC' &&
    tokens[i + 1]?.text === '(' &&
    tokens[i + 2]?.kind === 'string'
      ? [tokenValue(tokens[i + 2])]
      : [],
  );
}

/**
 * The grammar knows GRANT ... ON object TO principal but not the `SYMMETRIC KEY::` / `CERTIFICATE::`
 * securable classes (GRANT's documented syntax: `ON SYMMETRIC KEY :: name`, `ON CERTIFICATE ::
 * name`). The class is checked here; what remains must parse.
 */
function expectGrant(sql: string, permission: string, securable: string, name: string): void {
  const quoted = `[${name.replace(/]/g, ']]')}]`;
  expect(sql).to.equal(`GRANT ${permission} ON ${securable}::${quoted} TO [${APPLICATION_ROLE}]`);
  expect(parseTsql(sql.replace(`${securable}::`, ''))).to.deep.equal([]);
}

describe('mssql application contract (cellcrypt.open_keys, cellcrypt.current_key_guid, cellcrypt_application)', () => {
  let fake: FakeMssql | undefined;
  afterEach(async () => {
    await fake?.knex.destroy();
    fake = undefined;
  });

  it('prepare creates the role, both objects and their grants, each statement and each EXEC text parsing', () => {
    const all = prepareStatements();
    const inner = all.flatMap(execTexts);
    for (const sql of [...all, ...inner]) {
      expect(parseTsql(sql), sql.slice(0, 200)).to.deep.equal([]);
      expect(allStatementRules(sql, { knex: false }), sql.slice(0, 200)).to.deep.equal([]);
    }
    for (const sql of all) expect(allStatementRules(sql), sql.slice(0, 200)).to.deep.equal([]);
    // Each CREATE OR ALTER is a batch of its own (CREATE FUNCTION/PROCEDURE must be), sent through EXEC.
    for (const object of applicationObjects()) expect(inner).to.include(object);
    expect(all.join('\n')).to.contain(`CREATE ROLE [${APPLICATION_ROLE}]`);
    expect(all).to.include(`GRANT EXECUTE ON cellcrypt.current_key_guid TO [${APPLICATION_ROLE}]`);
    expect(all).to.include(`GRANT EXECUTE ON cellcrypt.open_keys TO [${APPLICATION_ROLE}]`);
  });

  it('current_key_guid is our newest generation; open_keys opens each key of ours through its certificate', () => {
    const [currentKeyGuid, openKeys] = applicationObjects();
    expect(currentKeyGuid).to.match(
      /^CREATE OR ALTER FUNCTION cellcrypt\.current_key_guid\(\) RETURNS uniqueidentifier/,
    );
    // By generation number, not by name (cellcrypt_key_10 > cellcrypt_key_9) nor creation time.
    expect(currentKeyGuid).to.contain("name LIKE N'cellcrypt[_]key[_][0-9]%'");
    expect(currentKeyGuid).to.contain('ORDER BY TRY_CONVERT(bigint, SUBSTRING(name, 15, 128)) DESC');
    expect(openKeys).to.match(/^CREATE OR ALTER PROCEDURE cellcrypt\.open_keys AS/);
    expect(openKeys).to.contain("N'OPEN SYMMETRIC KEY ' + QUOTENAME(k.name) + N' DECRYPTION BY CERTIFICATE '");
    expect(openKeys).to.contain('EXEC sys.sp_executesql @open');
    expect(openKeys, 'no secret: the master key opens by itself').not.to.match(/PASSWORD/i);
    expect(openKeys, 'opening nothing is an error, not NULLs later').to.contain('THROW 50001');
  });

  it('the grants on a key and a certificate are GRANT statements of the documented form, names quoted', () => {
    expectGrant(applicationGrants.key(HOSTILE), 'VIEW DEFINITION', 'SYMMETRIC KEY', HOSTILE);
    expectGrant(applicationGrants.certificate(HOSTILE), 'CONTROL', 'CERTIFICATE', HOSTILE);
    for (const [sql, grant] of [
      [grantKeyToApplications(HOSTILE), applicationGrants.key(HOSTILE)],
      [grantCertificateToApplications(HOSTILE), applicationGrants.certificate(HOSTILE)],
    ]) {
      expect(parseTsql(sql)).to.deep.equal([]);
      expect(allStatementRules(escapeForKnex(sql))).to.deep.equal([]); // createCertificate goes through knex
      expect(execTexts(sql)).to.deep.equal([grant]);
      expect(sql, 'the role exists before the grant').to.match(
        /^IF NOT EXISTS .* CREATE ROLE \[cellcrypt_application\];/,
      );
    }
  });

  it('engine.prepare sends every statement through knex, in order, outside any transaction', async () => {
    fake = fakeMssqlKnex({ responder: () => [] });
    const target = parseConnectionTarget('mssql://sa:pw@sql01/Org', '/') as ConnectionTarget;
    await mssqlEngine(target, fake.knex, { requestTimeoutMs: 1000, statementTimeoutMs: 1000 }).prepare();
    const sent = fake.calls.filter((c) => c.sql);
    expect(sent.map((c) => c.kind)).to.deep.equal(prepareStatements().map(() => 'execSql'));
    expect(sent.map((c) => c.sql)).to.deep.equal(prepareStatements());
    expect(fake.calls.some((c) => c.kind === 'beginTransaction')).to.equal(false);
  });

  it("README's SQL Server statements for applications parse and keep our rules", () => {
    const readme = readFileSync(join(__dirname, '../../../../README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('## For applications'));
    const block = /```sql\n([\s\S]*?)```/.exec(section)?.[1];
    expect(block, 'README, For applications: the T-SQL block').to.be.a('string');
    expect(parseTsql(block!)).to.deep.equal([]);
    expect(allStatementRules(block!, { knex: false })).to.deep.equal([]);
    expect(block).to.contain('EXEC cellcrypt.open_keys').and.to.contain('ENCRYPTBYKEY(cellcrypt.current_key_guid(),');
    expect(block).not.to.match(/cellcrypt_key_\d/);
  });
});
