import { expect } from 'chai';
import { parseTsql, splitGoBatches } from '../../../support/tsql-grammar';
import {
  allStatementRules,
  convertLengthRules,
  encryptByKeyArity,
  noGoSent,
  noUnescapedPlaceholderInLiteral,
  openKeyBeforeUse,
  symmetricKeyRules,
  tokenizeSql,
} from '../../../support/tsql-rules';

/**
 * The test oracle for every T-SQL statement cellcrypt emits (no SQL Server runs here): the real
 * grammar plus our own rules. Each rule is shown accepting and rejecting, so each can fail.
 */

const CREATE_KEY =
  "CREATE SYMMETRIC KEY [k] WITH ALGORITHM = AES_256, KEY_SOURCE = N'$(CellcryptPassphrase)', " +
  "IDENTITY_VALUE = N'$(CellcryptIdentityValue)' ENCRYPTION BY CERTIFICATE [cellcrypt_cert];";

describe('tsql-grammar: parseTsql', function () {
  this.timeout(60_000); // the first parse deserializes the grammar (~1 s)

  it('accepts cellcrypt statements, lower-case keywords and sqlcmd variables inside literals', () => {
    expect(parseTsql(CREATE_KEY)).to.deep.equal([]);
    expect(parseTsql("open master key decryption by password = N'$(CellcryptPassphrase)';")).to.deep.equal([]);
    expect(
      parseTsql(
        "SELECT ENCRYPTBYKEY(KEY_GUID(N'k'), N'a,b)?', 1, CONVERT(varbinary(16), [we]]ird,name])) AS c FROM t;",
      ),
    ).to.deep.equal([]);
  });

  it('reports syntax errors as "line:col message"', () => {
    expect(parseTsql('SELECT FROM t;')).to.deep.equal(["1:7 no viable alternative at input 'SELECTFROM'"]);
    expect(parseTsql('SELECT 1;\nOPEN SYMMETRIC KEY [k];')).to.deep.equal([
      "2:22 mismatched input ';' expecting 'DECRYPTION'",
    ]);
    expect(parseTsql("IF @r < 0 THROW 50000 N'missing comma', 1;")[0]).to.match(
      /^1:22 extraneous input 'N'missing comma'' expecting ','/,
    );
  });

  it('reports lexer errors too (an unterminated bracketed name), with positions of the original text', () => {
    const errors = parseTsql("SELECT N'ßß' AS a, [unterminated");
    expect(errors[0]).to.equal("1:19 token recognition error at: '[unterminated'");
  });

  it('accepts the valid T-SQL we might emit around the keys', () => {
    const statements = [
      "THROW 50000, N'msg', 1;",
      "DECLARE @r int; EXEC @r = sp_getapplock @Resource = N'cellcrypt', @LockMode = N'Exclusive', " +
        "@LockOwner = N'Transaction', @LockTimeout = 0; IF @r < 0 THROW 50000, N'locked', 1;",
      'SELECT name, CONVERT(nvarchar(36), key_guid) AS key_guid FROM ' +
        "sys.symmetric_keys WHERE name <> N'##MS_DatabaseMasterKey##';",
      'DBCC TRACESTATUS(4631);',
      'ALTER TABLE t ADD c varbinary(200) NULL;',
      "IF SCHEMA_ID(N'cellcrypt') IS NULL EXEC (N'CREATE SCHEMA cellcrypt');",
      "SELECT SERVERPROPERTY('ProductMajorVersion');",
      'CLOSE ALL SYMMETRIC KEYS; IF EXISTS (SELECT 1 FROM sys.openkeys WHERE key_name ' +
        "= N'##MS_DatabaseMasterKey##' AND database_id = DB_ID()) CLOSE MASTER KEY;",
      'UPDATE TOP (5000) t SET c = 1 WHERE c IS NULL;',
      'DECLARE @n int = 5; WITH batch AS (SELECT TOP (@n) c FROM t WHERE c IS NULL) UPDATE batch SET c = 1;',
      'DECLARE @w TABLE (lost bit NOT NULL); UPDATE TOP (10) t SET c = 1 OUTPUT ' +
        'CASE WHEN inserted.c IS NULL THEN 1 ELSE 0 END INTO @w (lost) WHERE c IS NULL;',
      'BEGIN TRY BEGIN TRANSACTION; UPDATE t SET c = 1; COMMIT TRANSACTION; END ' +
        'TRY BEGIN CATCH IF XACT_STATE() <> 0 ROLLBACK TRANSACTION; THROW; END CATCH',
      "OPEN MASTER KEY DECRYPTION BY PASSWORD = N'x'; ALTER MASTER KEY ADD ENCRYPTION BY SERVICE MASTER KEY;",
      "SELECT DECRYPTBYKEYAUTOCERT(CERT_ID(N'c'), NULL, col, 1, CONVERT(varbinary(16), pk)) FROM t;",
    ];
    for (const sql of statements) expect(parseTsql(sql), sql).to.deep.equal([]);
  });

  // Valid T-SQL this grammar rejects: do not emit these forms, or check them another way.
  const LIMITATIONS: [string, RegExp][] = [
    ['GRANT CONTROL ON CERTIFICATE::[c] TO [u];', /^1:28 mismatched input ':' expecting 'TO'/],
    ['GRANT VIEW DEFINITION ON SYMMETRIC KEY::[k] TO [u];', /^1:35 mismatched input 'KEY' expecting 'TO'/],
    ['GRANT SELECT ON OBJECT::dbo.t TO [u];', /^1:22 mismatched input ':' expecting 'TO'/],
    ['DENY SELECT ON dbo.t TO u;', /^1:0 extraneous input 'DENY'/],
    ["EXECUTE AS USER = N'u';", /^1:11 mismatched input 'USER' expecting \{'CALLER', 'OWNER', 'SELF', STRING\}/],
    ['ALTER TABLE t DROP COLUMN IF EXISTS c;', /^1:26 mismatched input 'IF'/],
    [
      "CREATE SYMMETRIC KEY k WITH ALGORITHM = AES_256 ENCRYPTION BY CERTIFICATE c, PASSWORD = N'x';",
      /^1:86 no viable alternative at input 'PASSWORD='/,
    ],
  ];
  for (const [sql, error] of LIMITATIONS) {
    it(`grammar limitation (valid T-SQL it rejects): ${sql}`, () => expect(parseTsql(sql)[0]).to.match(error));
  }

  it('accepts what only our rules catch: why tsql-rules exists', () => {
    const onlyRulesCatch = [
      'CREATE SYMMETRIC KEY k WITH ALGORITHM = TRIPLE_DES ENCRYPTION BY CERTIFICATE c;',
      "CREATE SYMMETRIC KEY k WITH ALGORITHM = AES_256 ENCRYPTION BY PASSWORD = N'x';",
      "SELECT ENCRYPTBYKEY(KEY_GUID(N'k'), c, 1) FROM t;",
      'SELECT CONVERT(nvarchar, c) FROM t;',
      'SELECT 1\nGO\nSELECT 2',
    ];
    for (const sql of onlyRulesCatch) {
      expect(parseTsql(sql), sql).to.deep.equal([]);
      expect(allStatementRules(sql), sql).to.have.length(1);
    }
    // A batch may start with a bare procedure call, so a misspelt first keyword is "valid".
    expect(parseTsql('SELEC 1;')).to.deep.equal([]);
  });
});

describe('tsql-grammar: splitGoBatches', () => {
  it('splits on lines that are only GO (any case, spaces, a repeat count) and drops empty batches', () => {
    const script = 'SELECT 1;\nGO\n\n  go  \nSELECT 2;\r\nGo 3\r\nSELECT 3\nGO\n';
    expect(splitGoBatches(script)).to.deep.equal(['SELECT 1;', 'SELECT 2;', 'SELECT 3']);
  });

  it('does not split on GO that is not alone on its line', () => {
    const script = "SELECT 1; -- GO\nSELECT N'GO';\nGOTO done\nSELECT 1 GO\ndone:";
    expect(splitGoBatches(script)).to.deep.equal([script]);
  });
});

describe('tsql-rules: the shared tokenizer', () => {
  it('keeps commas, parens, ? and keywords inside comments, literals and quoted names out of the code', () => {
    const tokens = tokenizeSql(
      "SELECT N'a,b)?' , 'it''s', [we]]ird,name], \"q\"\"x\" -- GO ?\n/* a /* nested */ ) */ x",
    );
    expect(tokens.map((t) => [t.kind, t.text])).to.deep.equal([
      ['word', 'SELECT'],
      ['string', "N'a,b)?'"],
      ['punct', ','],
      ['string', "'it''s'"],
      ['punct', ','],
      ['quoted', '[we]]ird,name]'],
      ['punct', ','],
      ['quoted', '"q""x"'],
      ['comment', '-- GO ?'],
      ['comment', '/* a /* nested */ ) */'],
      ['word', 'x'],
    ]);
  });
});

describe('tsql-rules: symmetricKeyRules', () => {
  it('accepts AES keys protected by a certificate', () => {
    expect(symmetricKeyRules(CREATE_KEY)).to.deep.equal([]);
    expect(
      symmetricKeyRules('create symmetric key k with algorithm = aes_128 encryption by certificate c'),
    ).to.deep.equal([]);
  });

  it('rejects another algorithm, a password, or a missing ENCRYPTION BY, naming the statement', () => {
    expect(
      symmetricKeyRules('SELECT 1; CREATE SYMMETRIC KEY k WITH ALGORITHM = TRIPLE_DES ENCRYPTION BY CERTIFICATE c;'),
    ).to.deep.equal([
      'CREATE SYMMETRIC KEY must use ALGORITHM = AES_128|AES_192|AES_256, not TRIPLE_DES: ' +
        'CREATE SYMMETRIC KEY k WITH ALGORITHM = TRIPLE_DES ENCRYPTION BY CERTIFICATE c',
    ]);
    expect(
      symmetricKeyRules("CREATE SYMMETRIC KEY k WITH ALGORITHM = AES_256 ENCRYPTION BY PASSWORD = N'x'"),
    ).to.deep.equal([
      'CREATE SYMMETRIC KEY must be ENCRYPTION BY CERTIFICATE only (found PASSWORD): ' +
        "CREATE SYMMETRIC KEY k WITH ALGORITHM = AES_256 ENCRYPTION BY PASSWORD = N'x'",
    ]);
    expect(
      symmetricKeyRules("CREATE SYMMETRIC KEY k WITH ALGORITHM = AES_256 ENCRYPTION BY CERTIFICATE c, PASSWORD = N'x'"),
    ).to.have.length(1);
    // Without `;` the statement ends at the next statement: its certificate does not count.
    expect(
      symmetricKeyRules(
        'CREATE SYMMETRIC KEY k WITH ALGORITHM = AES_256 OPEN SYMMETRIC KEY k DECRYPTION BY CERTIFICATE c',
      )[0],
    ).to.match(/ENCRYPTION BY CERTIFICATE only \(found none\)/);
  });

  it('ignores the words inside comments and literals', () => {
    expect(
      symmetricKeyRules("-- CREATE SYMMETRIC KEY k WITH ALGORITHM = DES\nSELECT N'CREATE SYMMETRIC KEY x'"),
    ).to.deep.equal([]);
  });
});

describe('tsql-rules: encryptByKeyArity', () => {
  it(
    'accepts ENCRYPTBYKEY with 2 or 4 arguments and DECRYPTBYKEY ' +
      'with 1 or 3, literals and names holding commas and parens',
    () => {
      const sql =
        "SELECT ENCRYPTBYKEY(KEY_GUID(N'k'), N'a,b)?'), ENCRYPTBYKEY(KEY_GUID(N'k'), " +
        '[we]]ird,name], 1, CONVERT(varbinary(16), pk)), ' +
        "DECRYPTBYKEY(c), DECRYPTBYKEY(c, 1, CONVERT(varbinary(16), 'x,)''y')), " +
        "DECRYPTBYKEYAUTOCERT(CERT_ID(N'c'), NULL, c) FROM t -- ENCRYPTBYKEY(a)";
      expect(encryptByKeyArity(sql)).to.deep.equal([]);
    },
  );

  it('rejects ENCRYPTBYKEY with 3 arguments, DECRYPTBYKEY with 2, and an unclosed call', () => {
    expect(encryptByKeyArity("UPDATE t SET s = ENCRYPTBYKEY(KEY_GUID(N'k'), c, 1) WHERE c IS NOT NULL;")).to.deep.equal(
      [
        'ENCRYPTBYKEY takes 2 or 4 arguments, got 3 arguments: UPDATE t ' +
          "SET s = ENCRYPTBYKEY(KEY_GUID(N'k'), c, 1) WHERE c IS NOT NULL",
      ],
    );
    expect(encryptByKeyArity("SELECT decryptbykey(c, N'a,b') FROM t")).to.deep.equal([
      "DECRYPTBYKEY takes 1 or 3 arguments, got 2 arguments: SELECT decryptbykey(c, N'a,b') FROM t",
    ]);
    expect(encryptByKeyArity('SELECT DECRYPTBYKEY(c')[0]).to.match(/got an unclosed argument list/);
    expect(encryptByKeyArity("SELECT ENCRYPTBYKEY(KEY_GUID(N'k'))")[0]).to.match(/got 1 arguments/);
  });
});

describe('tsql-rules: convertLengthRules', () => {
  it('accepts string and binary conversions with (n) or (max), and types that need no length', () => {
    const sql =
      'SELECT CONVERT(nvarchar(100), x), CONVERT(varbinary(max), y), ' +
      'CAST(z AS char(2)), CAST(CONVERT(int, a) AS [varbinary](16)), ' +
      "TRY_CONVERT(int, N'CONVERT(nvarchar, x)'), CONVERT(uniqueidentifier, " +
      "N'3F2504E0-4F89-11D3-9A0C-0305E82C3301') FROM t";
    expect(convertLengthRules(sql)).to.deep.equal([]);
  });

  it('rejects CONVERT(nvarchar, x) and CAST(x AS varbinary): SQL Server would silently use 30', () => {
    expect(convertLengthRules('SELECT CONVERT(nvarchar, x) FROM t')).to.deep.equal([
      'CONVERT to nvarchar needs an explicit length (n) or (max): SELECT CONVERT(nvarchar, x) FROM t',
    ]);
    expect(convertLengthRules('SELECT CAST(CAST(a AS int) AS VARBINARY), TRY_CAST(b AS [nchar]) FROM t')).to.deep.equal(
      [
        'CAST to varbinary needs an explicit length (n) or (max): SELECT ' +
          'CAST(CAST(a AS int) AS VARBINARY), TRY_CAST(b AS [nchar]) FROM t',
        'TRY_CAST to nchar needs an explicit length (n) or (max): SELECT ' +
          'CAST(CAST(a AS int) AS VARBINARY), TRY_CAST(b AS [nchar]) FROM t',
      ],
    );
  });
});

describe('tsql-rules: noGoSent', () => {
  it('accepts GO inside comments and literals that are not alone on their line', () => {
    expect(noGoSent("SELECT 1; -- GO\nSELECT N'GO'; /* GO here */\nGOTO done")).to.deep.equal([]);
  });

  it('rejects a statement with a line that is only GO, naming the statement that holds it', () => {
    expect(noGoSent('SELECT 1;\n  go  \nSELECT 2;')).to.deep.equal([
      'line 2 is only GO (a sqlcmd separator, never sent to the server): go SELECT 2',
    ]);
    expect(noGoSent('SELECT 1\r\nGO\r\n')).to.have.length(1);
  });
});

describe('tsql-rules: noUnescapedPlaceholderInLiteral (SQL handed to knex.raw)', () => {
  it('accepts placeholders in code and \\? inside literals, names and comments', () => {
    expect(
      noUnescapedPlaceholderInLiteral("SELECT ? AS a, N'why\\?' AS [b\\?] FROM t WHERE c = ? -- really\\?"),
    ).to.deep.equal([]);
  });

  it('rejects a bare ? inside a string literal, a bracketed name or a comment (knex binds those too)', () => {
    expect(noUnescapedPlaceholderInLiteral("SELECT N'a,b)?' AS v FROM t;")).to.deep.equal([
      "knex rewrites the bare ? in string literal N'a,b)?': write \\? instead: SELECT N'a,b)?' AS v FROM t",
    ]);
    expect(noUnescapedPlaceholderInLiteral('SELECT 1 AS [we]]ird?name]')[0]).to.match(
      /bare \? in quoted identifier \[we\]\]ird\?name\]/,
    );
    expect(noUnescapedPlaceholderInLiteral('SELECT ? -- why?')[0]).to.match(/bare \? in comment -- why\?/);
  });

  it('is left out of allStatementRules with { knex: false }: in a sqlcmd script a ? is just a question mark', () => {
    const sql = "THROW 50001, N'a value encrypted to NULL (is the key open?)', 1;";
    expect(allStatementRules(sql)).to.have.length(1);
    expect(allStatementRules(sql, { knex: false })).to.deep.equal([]);
  });
});

describe('tsql-rules: openKeyBeforeUse', () => {
  const open = (name: string) => `OPEN SYMMETRIC KEY ${name} DECRYPTION BY CERTIFICATE [c]`;

  it(
    'accepts ENCRYPTBYKEY/DECRYPTBYKEY after the key is opened ' +
      '(bracketed or bare name, any case), and DECRYPTBYKEYAUTOCERT anywhere',
    () => {
      expect(
        openKeyBeforeUse([
          "SELECT DECRYPTBYKEYAUTOCERT(CERT_ID(N'c'), NULL, s) FROM t",
          open('[we]]ird,name]'),
          "UPDATE t SET s = ENCRYPTBYKEY(KEY_GUID(N'WE]ird,name'), c, 1, CONVERT(varbinary(16), pk))",
          `${open('k2')}; SELECT DECRYPTBYKEY(s), ENCRYPTBYKEY(KEY_GUID(N'k2'), c) FROM t`,
          "SELECT ENCRYPTBYKEY(CONVERT(uniqueidentifier, N'3F2504E0-4F89-11D3-9A0C-0305E82C3301'), c) FROM t",
        ]),
      ).to.deep.equal([]);
    },
  );

  it('rejects use before OPEN, of another key, and after CLOSE SYMMETRIC KEY / CLOSE ALL SYMMETRIC KEYS', () => {
    expect(openKeyBeforeUse(["SELECT ENCRYPTBYKEY(KEY_GUID(N'k'), c) FROM t", open('[k]')])).to.deep.equal([
      'ENCRYPTBYKEY uses key k while it is not open (no OPEN SYMMETRIC KEY ' +
        "before) in statement 1: SELECT ENCRYPTBYKEY(KEY_GUID(N'k'), c) FROM t",
    ]);
    expect(openKeyBeforeUse([open('k1'), "SELECT ENCRYPTBYKEY(KEY_GUID(N'k2'), c) FROM t"])).to.have.length(1);
    expect(
      openKeyBeforeUse([open('k'), 'CLOSE SYMMETRIC KEY [k]', "SELECT ENCRYPTBYKEY(KEY_GUID(N'k'), c) FROM t"]),
    ).to.have.length(1);
    expect(openKeyBeforeUse([`${open('k')}; CLOSE ALL SYMMETRIC KEYS; SELECT DECRYPTBYKEY(s) FROM t`])).to.deep.equal([
      'DECRYPTBYKEY with no symmetric key open in statement 1: SELECT DECRYPTBYKEY(s) FROM t',
    ]);
    // An OPEN inside a comment or a literal opens nothing.
    expect(
      openKeyBeforeUse([`-- ${open('k')}\nSELECT N'${open('k')}'`, 'SELECT DECRYPTBYKEY(s) FROM t']),
    ).to.have.length(1);
  });
});

/** A cellcrypt-like install script, as a DBA would run it with sqlcmd. */
const INSTALL_SCRIPT =
  `
-- cellcrypt install: run with sqlcmd -v CellcryptMasterKeyPassword=... (GO here is only a comment)
IF NOT EXISTS (SELECT 1 FROM sys.symmetric_keys WHERE name = N'##MS_DatabaseMasterKey##')
  CREATE MASTER KEY ENCRYPTION BY PASSWORD = N'$(CellcryptMasterKeyPassword)';
GO
OPEN MASTER KEY DECRYPTION BY PASSWORD = N'$(CellcryptMasterKeyPassword)';
ALTER MASTER KEY ADD ENCRYPTION BY SERVICE MASTER KEY;
IF NOT EXISTS (SELECT 1 FROM sys.certificates WHERE name = N'cellcrypt_cert')
  CREATE CERTIFICATE [cellcrypt_cert] WITH SUBJECT = N'cellcrypt cellcrypt_cert';
GO
CREATE SYMMETRIC KEY [k] WITH ALGORITHM = AES_256, KEY_SOURCE = N'$(CellcryptPassphrase)', ` +
  `IDENTITY_VALUE = N'$(CellcryptIdentityValue)'
  ENCRYPTION BY CERTIFICATE [cellcrypt_cert];
GO
ALTER TABLE [dbo].[contact] ADD [emailaddress1__cellcrypt] varbinary(400) NULL;
GO
SET XACT_ABORT ON;
BEGIN TRANSACTION;
DECLARE @r int;
EXEC @r = sp_getapplock @Resource = N'cellcrypt', @LockMode = N'Exclusive', ` +
  `@LockOwner = N'Transaction', @LockTimeout = 0;
IF @r < 0 THROW 50000, N'cellcrypt: another run holds the lock', 1;
OPEN SYMMETRIC KEY [k] DECRYPTION BY CERTIFICATE [cellcrypt_cert];
UPDATE [dbo].[contact]
  SET [emailaddress1__cellcrypt] = ENCRYPTBYKEY(KEY_GUID(N'k'), CONVERT(nvarchar(100), [emailaddress1]), ` +
  `1, CONVERT(varbinary(16), [contactid]))
  WHERE [emailaddress1] IS NOT NULL;
IF EXISTS (SELECT 1 FROM [dbo].[contact] WHERE [emailaddress1] IS NOT NULL
    AND (DECRYPTBYKEY([emailaddress1__cellcrypt], 1, CONVERT(varbinary(16), [contactid])) IS NULL
      OR DECRYPTBYKEY([emailaddress1__cellcrypt], 1, CONVERT(varbinary(16), [contactid])) ` +
  `<> CONVERT(varbinary(max), CONVERT(nvarchar(100), [emailaddress1]))))
  THROW 50001, N'cellcrypt: a cell does not round-trip', 1;
ALTER TABLE [dbo].[contact] DROP COLUMN [emailaddress1];
EXEC sp_rename N'[dbo].[contact].[emailaddress1__cellcrypt]', N'emailaddress1', N'COLUMN';
CLOSE ALL SYMMETRIC KEYS;
COMMIT TRANSACTION;
go
DROP SYMMETRIC KEY [k_retired];
GO
`;

describe('tsql-rules: a realistic cellcrypt script', function () {
  this.timeout(60_000);

  it('splits into batches that all parse and pass every rule, keys opened before use', () => {
    const batches = splitGoBatches(INSTALL_SCRIPT);
    expect(batches).to.have.length(6);
    for (const batch of batches) expect(allStatementRules(batch), batch).to.deep.equal([]);
    expect(openKeyBeforeUse(batches)).to.deep.equal([]);
  });

  it('is rejected once broken: a missing OPEN, a GO left in a batch, a 3-argument ENCRYPTBYKEY', () => {
    const withoutOpen = splitGoBatches(INSTALL_SCRIPT.replace(/^OPEN SYMMETRIC KEY .*$/m, ''));
    expect(openKeyBeforeUse(withoutOpen)).to.have.length(3);
    expect(noGoSent(INSTALL_SCRIPT)).to.have.length(6);
    const threeArgs = INSTALL_SCRIPT.replace(', 1, CONVERT(varbinary(16), [contactid]))\n  WHERE', ', 1)\n  WHERE');
    const violations = splitGoBatches(threeArgs).flatMap((batch) => allStatementRules(batch));
    expect(violations).to.have.length(1);
    // The statement is named by its first 80 characters, whitespace collapsed.
    const [problem, statement] = violations[0].split(': ');
    expect(problem).to.equal('ENCRYPTBYKEY takes 2 or 4 arguments, got 3 arguments');
    expect(statement)
      .to.equal("UPDATE [dbo].[contact] SET [emailaddress1__cellcrypt] = ENCRYPTBYKEY(KEY_GUID(N'")
      .and.have.length(80);
  });
});
