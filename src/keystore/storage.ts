/**
 * Where sealed key-store values live. The whole contract is three methods (umzug's storage
 * model), so the unit tests run on the in-memory version below and the real one is a table in
 * the config database (knex-storage.ts).
 */
export interface SecretStorage {
  read(orgId: string, name: string): Promise<Buffer | undefined>;
  write(orgId: string, name: string, sealed: Buffer): Promise<void>;
  remove(orgId: string, name: string): Promise<void>;
  /** The names of this organization's values. */
  names(orgId: string): Promise<string[]>;
  /** Any one value of another organization: proves the key-store secret when this org has none. */
  anyOther(orgId: string): Promise<{ orgId: string; name: string; sealed: Buffer } | undefined>;
}

export function memoryStorage(): SecretStorage & { rows: Map<string, Buffer> } {
  const rows = new Map<string, Buffer>();
  const key = (orgId: string, name: string) => `${orgId}\u0000${name}`;
  return {
    rows,
    async read(orgId, name) {
      return rows.get(key(orgId, name));
    },
    async write(orgId, name, sealed) {
      rows.set(key(orgId, name), sealed);
    },
    async remove(orgId, name) {
      rows.delete(key(orgId, name));
    },
    async names(orgId) {
      return [...rows.keys()]
        .map((id) => id.split('\u0000'))
        .filter(([owner]) => owner === orgId)
        .map(([, n]) => n);
    },
    async anyOther(orgId) {
      for (const [id, sealed] of rows) {
        const [owner, name] = id.split('\u0000');
        if (owner !== orgId) return { orgId: owner, name, sealed };
      }
      return undefined;
    },
  };
}
