/**
 * One error type for everything cellcrypt refuses or fails to do.
 *
 * `code` is stable (scripts match on it): the Dynamics 365 names where Dynamics has one,
 * otherwise a `Cellcrypt*` name. `exitCode` follows the CLI contract (README, "Commands"):
 * 1 = the operation failed and nothing was changed, 2 = refused before any change (usage,
 * configuration, input), 3 = cells that do not decrypt or are still plaintext.
 * Messages say what failed, where, and the command that gets the user out (`hint`).
 */

/** Dynamics 365 data-encryption error codes (reference/dynamics-data-encryption.md). */
export const DYNAMICS_CODES = {
  SqlEncryptionDatabaseMasterKeyDoesNotExist: 0x80048519,
  SqlEncryptionCannotOpenSymmetricKeyBecauseDatabaseMasterKeyDoesNotExistOrIsNotOpened: 0x8004851a,
  SqlEncryptionCertificateDoesNotExist: 0x8004851d,
  SqlEncryptionSymmetricKeyDoesNotExist: 0x80048520,
  SqlEncryptionEncryptionDecryptionTestError: 0x80048523,
  SqlEncryptionKeyCannotDecryptExistingData: 0x80048524,
  SqlEncryptionIsActiveCannotRestoreEncryptionKey: 0x80048525,
  SqlEncryptionIsInactiveCannotChangeEncryptionKey: 0x80048527,
  SqlEncryptionEncryptionKeyValidationError: 0x80048528,
  SqlEncryptionChangeEncryptionKeyExceededQuotaForTheInterval: 0x80048529,
  SqlEncryptionSetEncryptionKeyIsAlreadyRunningCannotRunItInParallel: 0x8004852a,
  SqlEncryptionRestoreEncryptionKeyCannotDecryptExistingData: 0x8004852b,
  SqlEncryptionSymmetricKeySourceDoesNotExistInConfigDB: 0x8004852d,
  SqlEncryptionSymmetricKeyPasswordDoesNotExistInConfigDB: 0x8004852e,
  SqlEncryptionSymmetricKeyDoesNotExistOrNoPermission: 0x8004852f,
} as const;

/** cellcrypt's own codes, for failures Dynamics has no name for. */
export const CELLCRYPT_CODES = [
  'CellcryptUsage',
  'CellcryptConfigInvalid',
  'CellcryptRegistryInvalid',
  'CellcryptValueTooLong',
  'CellcryptUnsupportedColumn',
  'CellcryptKeyFileInvalid',
  'CellcryptKeyStoreLocked',
  'CellcryptKeyStoreUnavailable',
  'CellcryptEngineUnsupported',
  'CellcryptDataDirectoryBusy',
  'CellcryptCellsNotDecryptable',
  'CellcryptPermissionDenied',
  'CellcryptKeyChangeInProgress',
  'CellcryptConversionFailed',
  'CellcryptEncryptionCannotBeDisabled',
  'CellcryptDatabaseUnavailable',
  'CellcryptSchemaOutdated',
  'CellcryptOrganizationCopy',
  'CellcryptSecretsWouldBeLogged',
  /** activate would drop a master key or certificate that objects not cellcrypt's depend on. */
  'CellcryptKeyHierarchyInUse',
  /** Ctrl-C stopped the operation at its current step (the CLI exits 130). */
  'CellcryptInterrupted',
  'CellcryptInternal',
] as const;

export type DynamicsCode = keyof typeof DYNAMICS_CODES;
export type CellcryptCode = (typeof CELLCRYPT_CODES)[number];
export type ErrorCode = DynamicsCode | CellcryptCode;

export type ExitCode = 1 | 2 | 3;

export interface CellcryptErrorOptions {
  /** 1 (failed, nothing changed), 2 (refused before any change) or 3 (cells do not decrypt). */
  exitCode?: ExitCode;
  /** The command or step that gets the user out, e.g. "run `cellcrypt activate --key-file F`". */
  hint?: string;
  cause?: unknown;
}

export class CellcryptError extends Error {
  readonly code: ErrorCode;
  readonly exitCode: ExitCode;
  readonly hint?: string;

  constructor(code: ErrorCode, message: string, options: CellcryptErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'CellcryptError';
    this.code = code;
    this.exitCode = options.exitCode ?? 1;
    this.hint = options.hint;
  }

  /** "0x80048528" for Dynamics codes, undefined for cellcrypt's own. */
  get hresult(): string | undefined {
    const value = (DYNAMICS_CODES as Record<string, number>)[this.code];
    return value === undefined ? undefined : `0x${value.toString(16).toUpperCase().padStart(8, '0')}`;
  }

  toJSON(): { code: ErrorCode; hresult?: string; message: string; hint?: string } {
    return { code: this.code, hresult: this.hresult, message: this.message, hint: this.hint };
  }
}

/** Shorthand for refusals before any change (exit 2). */
export function refuse(code: ErrorCode, message: string, hint?: string, cause?: unknown): CellcryptError {
  return new CellcryptError(code, message, { exitCode: 2, hint, cause });
}

export function isCellcryptError(error: unknown): error is CellcryptError {
  return error instanceof CellcryptError;
}
