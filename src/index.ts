/**
 * The programmatic API: the same operations the CLI runs, for installers and other tools.
 *
 *   const tk = await openToolkit(loadSettings({ databaseUrl }));
 *   try { await install(tk); console.log(await readStatus(tk)); } finally { await tk.close(); }
 */
export { loadSettings, type Settings } from './config/settings';
export { Secret } from './common/secret';
export { CellcryptError, DYNAMICS_CODES, type ErrorCode } from './common/errors';
export { openToolkit } from './open-toolkit';
export { createToolkit, type Toolkit } from './core/toolkit';
export { install, type InstallResult } from './core/install';
export { convertColumns, planConversion } from './core/convert';
export { provisionKeys } from './core/provision';
export { readStatus, needsAttention, type StatusReport } from './core/status';
export { verify, type VerifyReport } from './core/verify';
export { seedDemo } from './core/demo-seed';
export { readCurrentKey, writeKeyFile } from './core/show-key';
export { DYNAMICS_DEFAULT_COLUMNS, loadRegistry, type SensitiveColumn } from './core/registry';
export * as codec from './cellcrypt';
