/**
 * The SQL Server cell format in pure TypeScript (node:crypto only): derive keys and GUIDs the
 * way SQL Server does, write and read ENCRYPTBYKEY blobs byte for byte. Used offline (verify,
 * activate checks, disaster recovery) and as the reference the database engines are tested against.
 */
export { AES_ALGORITHMS, type AesAlgorithm } from './algorithm';
export { DERIVATIONS, deriveKey, keyGuidFromIdentity, type Derivation } from './derivation';
export { guidBytesToString, guidStringToBytes } from './guid';
export type { CellKey } from './cell-key';
export { encryptByKey, type EncryptOptions } from './encrypt';
export { decryptByKey, diagnoseCell, type CellDiagnosis, type CellFailure, type DiagnoseOptions } from './decrypt';
export { MAX_CELL_BYTES, cipherLength, maxPlaintextBytes, type CipherLengthOptions } from './format';
export { nvarcharBytes, nvarcharText } from './nvarchar';
export { varcharText } from './varchar';
export { trialDecrypt, trialKeys, type TrialKey, type TrialResult } from './trial';
