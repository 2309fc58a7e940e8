import { readFileSync } from 'node:fs';
import { maxPlaintextBytes } from '../cellcrypt';
import { refuse } from '../common/errors';

/**
 * Version-2 blobs (SQL Server 2017+) may carry a 32-byte integrity hash (the facts file cannot
 * confirm SHA-1 or SHA-256), so every cell size and limit is computed with the larger one.
 */
export const REGISTRY_HASH = { authenticator: true, hashLength: 32 } as const;

/**
 * The widest nvarchar(n) a registry may name: every value of it (2n bytes of UTF-16) fits one
 * ENCRYPTBYKEY cell of at most 8000 bytes with a 32-byte hash (7911 plaintext bytes: n = 3955
 * gives a 7988-byte cell, n = 3956 would give 8004, more than varbinary(n) allows). Review BR6.
 */
export const MAX_REGISTRY_LENGTH = Math.floor(maxPlaintextBytes(REGISTRY_HASH) / 2);

/**
 * The sensitive columns cellcrypt encrypts. It ships exactly Dynamics 365's documented five;
 * CELLCRYPT_REGISTRY names a JSON file `{ "columns": [ ...same fields... ] }` that adds more.
 */
export interface SensitiveColumn {
  readonly entity: string;
  readonly attribute: string;
  readonly table: string;
  readonly column: string;
  /** A uniqueidentifier primary key: its 16 bytes authenticate every cell of the row. */
  readonly primaryKey: string;
  /** nvarchar(maxLength), in UTF-16 code units. */
  readonly maxLength: number;
}

export const DYNAMICS_DEFAULT_COLUMNS: readonly SensitiveColumn[] = Object.freeze([
  {
    entity: 'EmailServerProfile',
    attribute: 'IncomingPassword',
    table: 'EmailServerProfileBase',
    column: 'IncomingPassword',
    primaryKey: 'EmailServerProfileId',
    maxLength: 250,
  },
  {
    entity: 'EmailServerProfile',
    attribute: 'OutgoingPassword',
    table: 'EmailServerProfileBase',
    column: 'OutgoingPassword',
    primaryKey: 'EmailServerProfileId',
    maxLength: 250,
  },
  {
    entity: 'Mailbox',
    attribute: 'Password',
    table: 'MailboxBase',
    column: 'Password',
    primaryKey: 'MailboxId',
    maxLength: 200,
  },
  {
    entity: 'Queue',
    attribute: 'EmailPassword',
    table: 'QueueBase',
    column: 'EmailPassword',
    primaryKey: 'QueueId',
    maxLength: 200,
  },
  {
    entity: 'UserSettings',
    attribute: 'EmailPassword',
    table: 'UserSettingsBase',
    column: 'EmailPassword',
    primaryKey: 'SystemUserId',
    maxLength: 200,
  },
]);

const FIELDS = ['entity', 'attribute', 'table', 'column', 'primaryKey'] as const;

export function loadRegistry(file?: string): SensitiveColumn[] {
  const columns = [...DYNAMICS_DEFAULT_COLUMNS];
  if (!file) return columns;
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (cause) {
    throw refuse(
      'CellcryptRegistryInvalid',
      `CELLCRYPT_REGISTRY ${file}: not readable JSON (${(cause as Error).message})`,
      undefined,
      cause,
    );
  }
  const extra = (parsed as { columns?: unknown })?.columns;
  if (!Array.isArray(extra))
    throw refuse('CellcryptRegistryInvalid', `CELLCRYPT_REGISTRY ${file}: expected { "columns": [ ... ] }`);
  const problems: string[] = [];
  extra.forEach((entry, index) => {
    const missing = FIELDS.filter((field) => typeof entry?.[field] !== 'string' || entry[field].length === 0);
    const length = entry?.maxLength;
    if (missing.length) problems.push(`columns[${index}]: missing or empty ${missing.join(', ')}`);
    if (!Number.isInteger(length) || length < 1 || length > MAX_REGISTRY_LENGTH)
      problems.push(
        `columns[${index}]: maxLength must be a whole number from 1 to ${MAX_REGISTRY_LENGTH} (nvarchar(n): ` +
          `a longer value does not fit one 8000-byte cell)`,
      );
    if (!missing.length && columns.some((c) => c.table === entry.table && c.column === entry.column)) {
      problems.push(`columns[${index}]: ${entry.table}.${entry.column} is registered twice`);
    }
    if (!missing.length && !problems.length) columns.push(Object.freeze({ ...entry }) as SensitiveColumn);
  });
  if (problems.length)
    throw refuse(
      'CellcryptRegistryInvalid',
      `CELLCRYPT_REGISTRY ${file}:\n${problems.map((p) => `  - ${p}`).join('\n')}`,
    );
  return columns;
}

export const columnLabel = (column: Pick<SensitiveColumn, 'table' | 'column'>): string =>
  `${column.table}.${column.column}`;
