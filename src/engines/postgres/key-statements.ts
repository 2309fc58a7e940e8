/**
 * The SQL of the key hierarchy on PostgreSQL/PGlite (calls to the functions of
 * sql/20-key-hierarchy.sql), shared by the engine, which binds the values (secrets only ever as
 * parameters), and `--dry-run`, which prints them with every secret as `'***'`.
 */
export const keyStatements = {
  /** Values: password. */
  createMasterKey: 'select cellcrypt.create_master_key(?::text)',
  /** Values: password. */
  openMasterKey: 'select cellcrypt.open_master_key(?::text)',
  /** Values: name, subject. */
  createCertificate: 'select cellcrypt.create_certificate(?::text, ?::text)',
  /** Values: name, key source, identity value, certificate, derivation. */
  createSymmetricKey:
    `select cellcrypt.create_symmetric_key(?::text, ` + `'AES_256', ?::text, ?::text, ?::text, ?::text) as key_guid`,
  /** Values: name, certificate. */
  openSymmetricKey: 'select cellcrypt.open_symmetric_key(?::text, ?::text)',
  /** Values: name. */
  dropSymmetricKey: 'select cellcrypt.drop_symmetric_key(?::text)',
  /** Values: key name, certificate it is under, certificate it moves to. */
  moveSymmetricKey: 'select cellcrypt.move_symmetric_key(?::text, ?::text, ?::text)',
  /** Values: name. */
  dropCertificate: 'select cellcrypt.drop_certificate(?::text)',
  /** Values: old password, new password. */
  changeMasterKeyPassword: 'select cellcrypt.change_master_key_password(?::text, ?::text)',
  /** Values: cell. */
  decrypt: 'select cellcrypt.decrypt_by_key(?::bytea, null::bytea) as plain',
  reset: [
    'delete from cellcrypt.symmetric_keys',
    'delete from cellcrypt.certificates',
    'delete from cellcrypt.master_key',
  ],
} as const;
