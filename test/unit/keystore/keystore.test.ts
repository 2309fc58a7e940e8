import { expect } from 'chai';
import { Secret } from '../../../src/common/secret';
import { CellcryptError } from '../../../src/common/errors';
import { KeyStore } from '../../../src/keystore/keystore';
import { createSealer } from '../../../src/keystore/sealing';
import { memoryStorage } from '../../../src/keystore/storage';

describe('key store', () => {
  const secret = new Secret('keystore-secret-for-tests');
  const passphrase = new Secret("Pä55 ' ] ? ; -- 😀 word");

  it('round-trips values and stores no plaintext', async () => {
    const storage = memoryStorage();
    const store = new KeyStore(storage, createSealer(secret), 'org-1');
    await store.put('passphrase', passphrase);
    expect((await store.get('passphrase'))!.reveal()).to.equal(passphrase.reveal());
    const sealed = [...storage.rows.values()][0];
    expect(sealed.includes(Buffer.from(passphrase.reveal(), 'utf8'))).to.equal(false);
    expect(await store.get('master-key-password')).to.equal(undefined);
  });

  it('refuses a wrong key-store secret (exit 2, no secret in the message)', async () => {
    const storage = memoryStorage();
    await new KeyStore(storage, createSealer(secret), 'org-1').put('passphrase', passphrase);
    try {
      await new KeyStore(storage, createSealer(new Secret('another-secret-entirely')), 'org-1').get('passphrase');
      expect.fail('opened with the wrong secret');
    } catch (error) {
      expect(error).to.be.instanceOf(CellcryptError);
      expect((error as CellcryptError).code).to.equal('CellcryptKeyStoreLocked');
      expect((error as CellcryptError).message).not.to.contain('keystore-secret');
    }
  });

  it('binds a sealed value to its organization and name (a copied row does not open)', async () => {
    const storage = memoryStorage();
    const sealer = createSealer(secret);
    await new KeyStore(storage, sealer, 'org-1').put('passphrase', passphrase);
    const sealed = (await storage.read('org-1', 'passphrase'))!;
    await storage.write('org-2', 'passphrase', sealed);
    await storage.write('org-1', 'master-key-password', sealed);
    for (const [org, name] of [
      ['org-2', 'passphrase'],
      ['org-1', 'master-key-password'],
    ] as const) {
      const error = await new KeyStore(storage, sealer, org).get(name).catch((e) => e);
      expect(error).to.be.instanceOf(CellcryptError).with.property('code', 'CellcryptKeyStoreLocked');
    }
  });

  it('detects a flipped byte in a sealed value', async () => {
    const storage = memoryStorage();
    const store = new KeyStore(storage, createSealer(secret), 'org-1');
    await store.put('passphrase', passphrase);
    const sealed = Buffer.from((await storage.read('org-1', 'passphrase'))!);
    for (const index of [1, 20, 40, sealed.length - 1]) {
      const damaged = Buffer.from(sealed);
      damaged[index] ^= 0x01;
      await storage.write('org-1', 'passphrase', damaged);
      expect(await store.get('passphrase').catch((e) => e)).to.be.instanceOf(CellcryptError);
    }
  });
  it('one process derives one sealing key per secret: the salt is shared, every IV is fresh', () => {
    const secret = new Secret(`per-process salt ${Math.random()}`);
    const a = createSealer(secret).seal('first value', 'org/a');
    const b = createSealer(new Secret(secret.reveal())).seal('second value', 'org/b');
    const salt = (sealed: Buffer) => sealed.subarray(1, 17).toString('hex');
    const iv = (sealed: Buffer) => sealed.subarray(17, 29).toString('hex');
    expect(salt(a)).to.equal(salt(b));
    expect(iv(a)).to.not.equal(iv(b));
    const other = createSealer(new Secret(`another secret ${Math.random()}`)).seal('x', 'org/a');
    expect(salt(other)).to.not.equal(salt(a));
    expect(createSealer(secret).unseal(b, 'org/b')).to.equal('second value');
  });
});
