import type { CellcryptCommand } from '../command';
import decryptOffline from './decrypt-offline';
import demo from './demo';
import doctor from './doctor';
import install from './install';
import migrate from './migrate';
import changeKey from './change-key';
import activate from './activate';
import showKey from './show-key';
import status from './status';
import verify from './verify';
import script from './script';
import rewrap from './rewrap';
import keys from './keys';
import selftest from './selftest';

/** Every command of the CLI, one module each. */
export const COMMANDS: readonly CellcryptCommand[] = [
  install,
  migrate,
  status,
  verify,
  doctor,
  showKey,
  changeKey,
  activate,
  rewrap,
  keys,
  decryptOffline,
  script,
  demo,
  selftest,
];
