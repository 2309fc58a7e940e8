import { randomBytes, randomUUID } from 'node:crypto';
import type { Knex } from 'knex';
import {
  DERIVATIONS,
  cipherLength,
  diagnoseCell,
  encryptByKey,
  guidStringToBytes,
  nvarcharBytes,
  nvarcharText,
  type CellKey,
} from '../../cellcrypt';
import { encryptedColumnBytes } from '../column-state';
import { requireActive, withOpenKeys, type KeyAccess } from '../key-access';
import { columnLabel } from '../registry';
import { fail, ok, type CheckContext, type Verdict } from './types';

/**
 * What cellcrypt assumes about the server's cells, checked against the TypeScript codec: the
 * key bytes the server derived are `deriveKey`'s, cells cross in both directions with and
 * without an authenticator, the version and hash the server writes, and the two edge values
 * (the empty string, the longest value a column allows). None of the probes is a secret.
 */
const probeText = () => `cellcrypt selftest ☃ 😀 ${randomBytes(4).toString('hex')}`;
const anyRow = () => guidStringToBytes(randomUUID());

async function opened<T>(ctx: CheckContext, work: (trx: Knex.Transaction, access: KeyAccess) => Promise<T>) {
  const { access } = await requireActive(ctx.tk);
  return withOpenKeys(ctx.tk, access, (trx) => work(trx, access));
}

/** The current key as Node sees it: its GUID and `deriveKey` of the key store's passphrase. */
async function nodeKey(ctx: CheckContext): Promise<{ key: CellKey; access: KeyAccess }> {
  const { access } = await requireActive(ctx.tk);
  const key = {
    keyGuid: guidStringToBytes(access.current.keyGuid),
    key: ctx.deriveKey(access.passphrase.reveal(), access.current.derivation),
  };
  return { key, access };
}

export async function keyMaterialCheck(ctx: CheckContext): Promise<Verdict> {
  const { access } = await requireActive(ctx.tk);
  const material = await opened(ctx, (trx) => ctx.ops.keyMaterial(trx, access.current.name, access.certificate));
  if (!material) return fail(`the server gave no key material for ${access.current.name} (NULL)`);
  const found = DERIVATIONS.map((derivation) => ({
    derivation,
    at: material.indexOf(ctx.deriveKey(access.passphrase.reveal(), derivation)),
  }));
  const expected = found.find((f) => f.derivation === access.current.derivation)!;
  const others = found.filter((f) => f !== expected && f.at >= 0).map((f) => f.derivation);
  if (expected.at < 0) {
    return fail(
      `the key the server holds for ${access.current.name} (${material.length} bytes) is not ` +
        `deriveKey(${expected.derivation}) of its KEY_SOURCE` +
        (others.length ? `; it is deriveKey(${others.join(', ')})` : ''),
      'cells written here would not decrypt offline or on another engine: report this server version',
    );
  }
  return ok(
    `deriveKey(${expected.derivation}) at offset ${expected.at} of the ${material.length} bytes the server ` +
      `holds for ${access.current.name}; the other derivation does not match`,
  );
}

export async function serverCellsInNode(ctx: CheckContext): Promise<Verdict> {
  const { key, access } = await nodeKey(ctx);
  const text = probeText();
  const row = anyRow();
  const [withRow, without] = await opened(ctx, async (trx) => [
    await ctx.ops.encrypt(trx, access.current.keyGuid, { text }, row),
    await ctx.ops.encrypt(trx, access.current.keyGuid, { text }),
  ]);
  const problems: string[] = [];
  for (const [label, cell, authenticator] of [
    ['with an authenticator', withRow, row],
    ['without', without, undefined],
  ] as const) {
    if (!cell) problems.push(`${label}: the server returned NULL`);
    else {
      const diagnosis = diagnoseCell(cell, key, authenticator);
      if (!diagnosis.ok) problems.push(`${label}: ${diagnosis.reason} (${diagnosis.detail})`);
      else if (nvarcharText(diagnosis.plaintext) !== text) problems.push(`${label}: decrypts to other text`);
    }
  }
  if (problems.length) return fail(`a cell the server wrote does not decrypt in Node: ${problems.join('; ')}`);
  return ok('ENCRYPTBYKEY cells, with and without an authenticator, decrypt in Node to the same text');
}

export async function nodeCellsInServer(ctx: CheckContext): Promise<Verdict> {
  const { key } = await nodeKey(ctx);
  const text = probeText();
  const row = anyRow();
  const withRow = encryptByKey(key, nvarcharBytes(text), { authenticator: row });
  const without = encryptByKey(key, nvarcharBytes(text));
  const [a, b, wrongRow] = await opened(ctx, async (trx) => [
    await ctx.ops.decrypt(trx, withRow, row),
    await ctx.ops.decrypt(trx, without),
    await ctx.ops.decrypt(trx, withRow, anyRow()),
  ]);
  const problems = [
    ...(a && nvarcharText(a) === text ? [] : [`with an authenticator: ${a ? 'other text' : 'NULL'}`]),
    ...(b && nvarcharText(b) === text ? [] : [`without: ${b ? 'other text' : 'NULL'}`]),
    ...(wrongRow === null ? [] : ["another row's authenticator also decrypted it"]),
  ];
  if (problems.length) return fail(`a cell Node wrote does not decrypt in the server: ${problems.join('; ')}`);
  return ok(
    "DECRYPTBYKEY reads Node's cells (version 1, SHA-1) with and without an authenticator, " +
      "and refuses another row's authenticator",
  );
}

export async function cellFormat(ctx: CheckContext): Promise<Verdict> {
  const { key, access } = await nodeKey(ctx);
  const text = probeText();
  const row = anyRow();
  const cell = await opened(ctx, (trx) => ctx.ops.encrypt(trx, access.current.keyGuid, { text }, row));
  if (!cell) return fail('the server returned NULL for a cell with an authenticator');
  const diagnosis = diagnoseCell(cell, key, row);
  if (!diagnosis.ok) return fail(`the server's cell does not open in Node: ${diagnosis.reason}`);
  const hashLength = diagnosis.integrity === 'sha256' ? 32 : 20;
  const expected = cipherLength(nvarcharBytes(text).length, { authenticator: true, hashLength });
  if (cell.length !== expected)
    return fail(`the server's cell is ${cell.length} bytes; the size formula gives ${expected}`);
  return ok(
    `the server writes version ${diagnosis.version} cells with a ${diagnosis.integrity.toUpperCase()} integrity ` +
      `hash (${hashLength} bytes) when given an authenticator; ${cell.length} bytes, as the size formula says`,
  );
}

export async function emptyString(ctx: CheckContext): Promise<Verdict> {
  const { access } = await requireActive(ctx.tk);
  const row = anyRow();
  const [cell, plain] = await opened(ctx, async (trx) => {
    const encrypted = await ctx.ops.encrypt(trx, access.current.keyGuid, { text: '' }, row);
    return [encrypted, encrypted && (await ctx.ops.decrypt(trx, encrypted, row))];
  });
  if (!cell) return fail("ENCRYPTBYKEY of N'' returned NULL: every empty value would fail the conversion's proof");
  if (plain === null) return fail(`ENCRYPTBYKEY of N'' gave ${cell.length} bytes, and DECRYPTBYKEY of them NULL`);
  if (plain.length !== 0) return fail(`N'' came back as ${plain.length} bytes`);
  return ok(`ENCRYPTBYKEY of N'' gives a ${cell.length}-byte cell; DECRYPTBYKEY gives 0x (0 bytes), not NULL`);
}

export async function longestValue(ctx: CheckContext): Promise<Verdict> {
  const { key, access } = await nodeKey(ctx);
  const column = [...ctx.tk.registry].sort((a, b) => b.maxLength - a.maxLength)[0];
  // Non-ASCII, so the bytes are the nvarchar's 2 per character whatever the collation.
  const text = 'Ω'.repeat(column.maxLength);
  const huge = 'x'.repeat(4000); // nvarchar(4000): 8000 bytes, more than one cell can hold
  const row = anyRow();
  const cell = await opened(ctx, (trx) => ctx.ops.encrypt(trx, access.current.keyGuid, { text }, row));
  // Its own transaction: an error here must not doom the one above (XACT_ABORT, PostgreSQL's abort).
  const beyond = await opened(ctx, (trx) => ctx.ops.encrypt(trx, access.current.keyGuid, { text: huge }, row)).catch(
    (error: Error) => error,
  );
  const size = encryptedColumnBytes(column);
  if (!cell) return fail(`ENCRYPTBYKEY of ${column.maxLength} characters (${columnLabel(column)}) returned NULL`);
  const opened_ = diagnoseCell(cell, key, row);
  if (!opened_.ok || nvarcharText(opened_.plaintext) !== text)
    return fail(`the longest value of ${columnLabel(column)} does not decrypt in Node back to itself`);
  if (cell.length > size)
    return fail(`${column.maxLength} characters gave ${cell.length} bytes; the column is varbinary(${size})`);
  const past =
    beyond instanceof Error
      ? `an error (${beyond.message.replace(/^[^]* - (?=\S)/, '').slice(0, 120)})`
      : beyond
        ? `${beyond.length} bytes`
        : 'NULL';
  return ok(
    `${column.maxLength} characters (${columnLabel(column)}, the longest registered) give ${cell.length} of ` +
      `varbinary(${size}) and decrypt back; 4000 characters (8000 bytes, past one cell) give ${past}`,
  );
}
