import { inspect } from 'node:util';

/**
 * A secret value (passphrase, master-key password, key-store secret) that cannot leak by
 * accident: JSON.stringify, template literals, util.inspect and console.log all print `***`.
 * The value itself is only reachable through `reveal()`, so every place that uses it is
 * greppable. The field is non-enumerable (knex `lib/util/security.js` does the same for
 * connection passwords) so spreading or logging the holder shows nothing.
 */
export class Secret {
  static readonly MASK = '***';
  declare private readonly value: string;

  constructor(value: string) {
    Object.defineProperty(this, 'value', { value, enumerable: false, writable: false });
  }

  reveal(): string {
    return this.value;
  }

  get length(): number {
    return this.value.length;
  }

  equals(other: Secret): boolean {
    return this.value === other.value;
  }

  toString(): string {
    return Secret.MASK;
  }

  toJSON(): string {
    return Secret.MASK;
  }

  [inspect.custom](): string {
    return 'Secret(***)';
  }
}

/** Replace every occurrence of each secret in `text` by `***` (for messages built from SQL or driver errors). */
export function redact(text: string, secrets: ReadonlyArray<Secret | undefined>): string {
  let out = text;
  for (const secret of secrets) {
    const value = secret?.reveal();
    if (value) out = out.split(value).join(Secret.MASK);
  }
  return out;
}
