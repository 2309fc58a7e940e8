import { CERTIFICATE_NAME, KEY_PREFIX } from '../../common/key-names';
import { tsqlLiteral } from './quote';

/**
 * WHERE conditions that tell cellcrypt's own keys and certificates from anyone else's, in T-SQL
 * (key-names.ts in TypeScript). Each takes the column to test, `name` by default, so it also
 * serves in a join.
 */

export const MASTER_KEY_NAME = '##MS_DatabaseMasterKey##';

/** A LIKE pattern matching `text` literally (`_`, `%` and brackets are LIKE wildcards). */
export const likeEscape = (text: string): string => text.replace(/[[\]_%]/g, '[$&]');

/** Our certificates: `cellcrypt_certificate` and its generations `cellcrypt_certificate_<digits>`. */
export const ourCertificates = (name = 'name'): string =>
  `(${name} = ${tsqlLiteral(CERTIFICATE_NAME)} OR (${name} LIKE ` +
  `${tsqlLiteral(`${likeEscape(CERTIFICATE_NAME)}[_][0-9]%`)} ` +
  `AND SUBSTRING(${name}, ${CERTIFICATE_NAME.length + 2}, 128) NOT LIKE N'%[^0-9]%'))`;

/** Our key generations: `cellcrypt_key_<digits>` (generationOf). */
export const ourKeys = (name = 'name'): string =>
  `(${name} LIKE ${tsqlLiteral(`${likeEscape(KEY_PREFIX)}[0-9]%`)} ` +
  `AND SUBSTRING(${name}, ${KEY_PREFIX.length + 1}, 128) NOT LIKE N'%[^0-9]%')`;

/** The generation of a name `ourKeys` matched, as a number to order by (newest first: DESC). */
export const keyGeneration = (name = 'name'): string =>
  `TRY_CONVERT(bigint, SUBSTRING(${name}, ${KEY_PREFIX.length + 1}, 128))`;
