-- SQL Server's ENCRYPTBYKEY cell format, written and read by PostgreSQL on pgcrypto, byte for
-- byte (reference/sqlserver-cell-encryption.md sections 1-3):
--   blob  = key_guid(16) | version(4, LE) | iv(16) | AES-CBC(key, iv, PKCS7(inner))
--   inner = 0D F0 AD BA | integrity length (LE16) | plaintext length (LE16) | integrity | plaintext
-- {{pgcrypto}} is replaced by the schema that holds pgcrypto: never rely on search_path.
--
-- Per-row functions are PL/pgSQL on purpose: a LANGUAGE sql function that the planner cannot
-- inline (a FROM clause, a STABLE call inside an IMMUTABLE function, an expensive argument used
-- twice) runs its own executor per call and costs 5-10x more than a PL/pgSQL simple expression.
-- Backslashes in literals are written as E'' strings so that standard_conforming_strings = off
-- cannot change their meaning. convert_to/convert_from are only used with 'UTF8' (the database
-- encoding, checked by the engine): conversions to other encodings load modules that PGlite lacks.
create schema if not exists cellcrypt;

-- nvarchar bytes. PostgreSQL has no UTF-16 conversion. Pure ASCII (most passwords and e-mail
-- addresses) is hex-encoded and a 00 byte appended to each byte in one regexp pass, the fastest
-- of the variants measured (set_byte loop, string_to_array + escape decoding, capture groups).
-- Other text goes code point by code point, each unit written as 4 hex digits low byte first
-- (to_hex of 0x1xxxx always gives 5 digits); appending to one text stays fast on 4000-character
-- values, where set_byte on a preallocated buffer copies the whole buffer per character.
create or replace function cellcrypt.utf16le(t text) returns bytea
language plpgsql immutable strict parallel safe as $$
declare
  hex text;
  ch text;
  cp int;
  hi int;
  lo int;
begin
  if octet_length(t) = char_length(t) then
    return decode(regexp_replace(encode(convert_to(t, 'UTF8'), 'hex'), '..', E'\\&00', 'g'), 'hex');
  end if;
  hex := '';
  foreach ch in array string_to_array(t, null) loop
    cp := ascii(ch);
    if cp < 65536 then
      hex := hex || substr(to_hex(65536 | ((cp & 255) << 8) | (cp >> 8)), 2);
    else
      hi := 55296 + ((cp - 65536) >> 10);
      lo := 56320 + ((cp - 65536) & 1023);
      hex := hex || substr(to_hex(65536 | ((hi & 255) << 8) | (hi >> 8)), 2)
                 || substr(to_hex(65536 | ((lo & 255) << 8) | (lo >> 8)), 2);
    end if;
  end loop;
  return decode(hex, 'hex');
end $$;

-- The inverse, NULL (never an error) for anything that is not valid UTF-16LE text: odd length,
-- lone or misordered surrogates, and U+0000, which PostgreSQL text cannot hold. A column
-- decrypted with the wrong type or a damaged cell must read as NULL, as CONVERT would fail.
-- ASCII fast path: the regexp (no capture groups: those make PostgreSQL's regexp engine
-- backtrack, 15x slower) proves every unit is 01..7F 00; escape encoding then shows each zero
-- byte as the 4 characters \000, which cannot start inside another escape, so replace() drops
-- exactly the high bytes.
create or replace function cellcrypt.from_utf16le(b bytea) returns text
language plpgsql immutable strict parallel safe as $$
declare
  units int;
  i int;
  u int;
  lo int;
  chars text[];
begin
  if length(b) % 2 = 1 then
    return null;
  end if;
  if encode(b, 'hex') ~ '^(?:(?:0[1-9a-f]|[1-7][0-9a-f])00)*$' then
    return convert_from(decode(replace(encode(b, 'escape'), E'\\000', ''), 'escape'), 'UTF8');
  end if;
  units := length(b) / 2;
  i := 0;
  chars := '{}';
  while i < units loop
    u := get_byte(b, 2 * i) | (get_byte(b, 2 * i + 1) << 8);
    if u = 0 or u between 56320 and 57343 then
      return null;
    end if;
    if u between 55296 and 56319 then
      if i + 1 >= units then
        return null;
      end if;
      lo := get_byte(b, 2 * i + 2) | (get_byte(b, 2 * i + 3) << 8);
      if lo not between 56320 and 57343 then
        return null;
      end if;
      u := 65536 + ((u - 55296) << 10) + (lo - 56320);
      i := i + 1;
    end if;
    chars := chars || chr(u);
    i := i + 1;
  end loop;
  return array_to_string(chars, '');
end $$;

-- CONVERT(varbinary(16), uniqueidentifier) stores the first three groups little-endian and the
-- last eight bytes as written (.NET Guid.ToByteArray); uuid_send is big-endian throughout.
create or replace function cellcrypt.guid_bytes(u uuid) returns bytea
language plpgsql immutable strict parallel safe as $$
declare
  b bytea := uuid_send(u);
begin
  return set_byte(set_byte(set_byte(set_byte(set_byte(set_byte(set_byte(set_byte(b,
           0, get_byte(b, 3)), 1, get_byte(b, 2)), 2, get_byte(b, 1)), 3, get_byte(b, 0)),
           4, get_byte(b, 5)), 5, get_byte(b, 4)), 6, get_byte(b, 7)), 7, get_byte(b, 6));
end $$;

-- The same byte swap is its own inverse. NULL unless exactly 16 bytes.
create or replace function cellcrypt.guid_from_bytes(b bytea) returns uuid
language plpgsql immutable strict parallel safe as $$
begin
  if length(b) <> 16 then
    return null;
  end if;
  return encode(set_byte(set_byte(set_byte(set_byte(set_byte(set_byte(set_byte(set_byte(b,
           0, get_byte(b, 3)), 1, get_byte(b, 2)), 2, get_byte(b, 1)), 3, get_byte(b, 0)),
           4, get_byte(b, 5)), 5, get_byte(b, 4)), 6, get_byte(b, 7)), 7, get_byte(b, 6)), 'hex')::uuid;
end $$;

-- One of CryptDeriveKey's 64-byte HMAC-style pads (0x36 inner, 0x5C outer) with the SHA-1 of the
-- passphrase XORed into its first bytes.
create or replace function cellcrypt.xor_pad(h bytea, pad int) returns bytea
language plpgsql immutable strict parallel safe as $$
declare
  block bytea := decode(repeat(lpad(to_hex(pad), 2, '0'), 64), 'hex');
begin
  for i in 0 .. length(h) - 1 loop
    block := set_byte(block, i, get_byte(block, i) # get_byte(h, i));
  end loop;
  return block;
end $$;

-- KEY_SOURCE -> key bytes. SQL Server 2017 changed the derivation (SHA-512) from 2016's SHA-1
-- CryptDeriveKey, which is why one passphrase gives two different keys; the caller says which.
create or replace function cellcrypt.derive_key(passphrase text, derivation text default 'sql2017', algorithm text default 'AES_256') returns bytea
language plpgsql immutable strict parallel safe as $$
declare
  n int := case upper(algorithm) when 'AES_128' then 16 when 'AES_192' then 24 when 'AES_256' then 32 end;
  h bytea;
begin
  if n is null then
    raise exception 'cellcrypt: unsupported algorithm % (AES_128, AES_192 or AES_256)', algorithm using errcode = '22023';
  end if;
  if derivation = 'sql2017' then
    return substring({{pgcrypto}}.digest(cellcrypt.utf16le(passphrase), 'sha512') from 1 for n);
  elsif derivation = 'sql2016' then
    h := {{pgcrypto}}.digest(cellcrypt.utf16le(passphrase), 'sha1');
    return substring({{pgcrypto}}.digest(cellcrypt.xor_pad(h, 54), 'sha1')
                  || {{pgcrypto}}.digest(cellcrypt.xor_pad(h, 92), 'sha1') from 1 for n);
  end if;
  raise exception 'cellcrypt: unknown key derivation % (sql2016 or sql2017)', derivation using errcode = '22023';
end $$;

-- IDENTITY_VALUE -> the 16 stored GUID bytes. Deterministic, so a key re-created from the same
-- phrases (restore, move between engines) still matches the GUID in every old cell.
create or replace function cellcrypt.key_guid_for_identity(identity_value text) returns bytea
language plpgsql immutable strict parallel safe as $$
begin
  return set_byte(decode(md5(cellcrypt.utf16le(identity_value)), 'hex'), 0, 0);
end $$;

-- Which key a cell needs, without decrypting it (what KEY_GUID comparisons and key counts use).
-- Deliberately not STRICT (NULL still gives NULL): the planner inlines a LANGUAGE sql function
-- only if its body is as strict as its declaration, and CASE is not; inlined, a key count over
-- 100k cells takes a third of the time.
create or replace function cellcrypt.cell_key_guid(blob bytea) returns bytea
language sql immutable parallel safe as $$
  select case when length(blob) >= 16 then substring(blob from 1 for 16) end
$$;

-- ENCRYPTBYKEY with an explicit key and IV (the caller draws the IV: immutable given it).
-- Always version 1 with SHA-1 integrity, which every server version reads. Not STRICT: a NULL
-- authenticator means "no integrity hash". A NULL key gives NULL, as ENCRYPTBYKEY does with a
-- key that is not open. Lengths are checked because pgcrypto zero-pads or cuts a key or IV of
-- the wrong length without complaint, which would write cells nobody can read.
create or replace function cellcrypt.encrypt_cell(key bytea, key_guid bytea, plaintext bytea, authenticator bytea, iv bytea) returns bytea
language plpgsql immutable parallel safe as $$
declare
  header bytea;
begin
  if plaintext is null or key is null then
    return null;
  end if;
  if length(key) not in (16, 24, 32) then
    raise exception 'cellcrypt: an AES key is 16, 24 or 32 bytes, got %', length(key) using errcode = '22023';
  end if;
  if length(key_guid) is distinct from 16 or length(iv) is distinct from 16 then
    raise exception 'cellcrypt: key GUID and IV must be 16 bytes each, got % and %', length(key_guid), length(iv) using errcode = '22023';
  end if;
  -- Fixed header with the plaintext length patched in; the integrity length fits one byte (0 or 20).
  header := set_byte(set_byte(E'\\x0df0adba00000000'::bytea, 6, length(plaintext) & 255), 7, length(plaintext) >> 8);
  if authenticator is null then
    if length(plaintext) > 7943 then
      raise exception 'cellcrypt: a plaintext of % bytes does not fit in one 8000-byte cell (at most 7943)', length(plaintext) using errcode = '22001';
    end if;
    return key_guid || E'\\x01000000'::bytea || iv
        || {{pgcrypto}}.encrypt_iv(header || plaintext, key, iv, 'aes-cbc/pad:pkcs');
  end if;
  if length(plaintext) > 7923 then
    raise exception 'cellcrypt: a plaintext of % bytes does not fit in one 8000-byte cell with an authenticator (at most 7923)', length(plaintext) using errcode = '22001';
  end if;
  return key_guid || E'\\x01000000'::bytea || iv
      || {{pgcrypto}}.encrypt_iv(set_byte(header, 4, 20) || {{pgcrypto}}.digest(plaintext || authenticator, 'sha1') || plaintext,
                                 key, iv, 'aes-cbc/pad:pkcs');
end $$;

-- DECRYPTBYKEY with an explicit key: NULL for any cell that does not check out, never an error,
-- as SQL Server does (the caller picked the key by cell_key_guid, so the GUID is not compared).
-- No EXCEPTION block: that would start a subtransaction per row. pad:none cannot fail on whole
-- blocks, so the PKCS7 padding is checked here; a wrong key fails it or the magic.
-- A key of the wrong length is the caller's bug, not a bad cell: it raises (see encrypt_cell).
create or replace function cellcrypt.decrypt_cell(key bytea, blob bytea, authenticator bytea) returns bytea
language plpgsql immutable parallel safe as $$
declare
  n int;
  body bytea;
  pad int;
  integrity_length int;
  plaintext bytea;
begin
  if key is null or blob is null then
    return null;
  end if;
  if length(key) not in (16, 24, 32) then
    raise exception 'cellcrypt: an AES key is 16, 24 or 32 bytes, got %', length(key) using errcode = '22023';
  end if;
  n := length(blob);
  -- 36 header bytes and at least one cipher block; versions 1 and 2 as LE uint32.
  if n < 52 or (n - 36) % 16 <> 0 or get_byte(blob, 17) <> 0 or get_byte(blob, 18) <> 0 or get_byte(blob, 19) <> 0
     or get_byte(blob, 16) not in (1, 2) then
    return null;
  end if;
  body := {{pgcrypto}}.decrypt_iv(substring(blob from 37), key, substring(blob from 21 for 16), 'aes-cbc/pad:none');
  n := length(body);
  pad := get_byte(body, n - 1);
  if pad < 1 or pad > 16 or substring(body from n - pad + 1) <> decode(repeat(lpad(to_hex(pad), 2, '0'), pad), 'hex') then
    return null;
  end if;
  n := n - pad;
  integrity_length := get_byte(body, 4) | (get_byte(body, 5) << 8);
  if n < 8 or substring(body from 1 for 4) <> E'\\x0df0adba'::bytea
     or integrity_length not in (0, 20, 32)
     or 8 + integrity_length + (get_byte(body, 6) | (get_byte(body, 7) << 8)) <> n then
    return null;
  end if;
  plaintext := substring(body from 9 + integrity_length for n - 8 - integrity_length);
  if integrity_length = 0 then
    if authenticator is null then
      return plaintext;
    end if;
    return null;
  end if;
  if authenticator is null
     or substring(body from 9 for integrity_length)
        <> {{pgcrypto}}.digest(plaintext || authenticator, case integrity_length when 20 then 'sha1' else 'sha256' end) then
    return null;
  end if;
  return plaintext;
end $$;

-- A cell moved to another key without being parsed: everything inside the AES layer (magic,
-- lengths, integrity hash over plaintext and authenticator, plaintext, padding) stays byte for
-- byte what it was; only the key GUID, the IV and the AES layer change. The version is kept,
-- as it says which integrity hash is inside.
-- CBC with a random IV is CBC with a zero IV over one more, random, leading block: decrypting
-- iv || ciphertext under a zero IV gives one garbage block and then the plaintext; encrypting
-- random || plaintext under a zero IV gives a first block that is the cipher of a random value
-- (a sound IV: NIST SP 800-38A, appendix C) and then the ciphertext chained from it. So each key
-- goes into exactly one pgcrypto call and every argument but the cell is used once, which lets
-- the planner inline this into the UPDATE: two pgcrypto calls per cell and no PL/pgSQL (the
-- issue 7 profile measured the decrypt-parse-hash-encrypt form at 4x the cost).
-- Unchecked on purpose: the caller passes only cells of a well-formed length (36 + 16k, k >= 1)
-- and keys from open_key_bytes, and proves every moved cell by fully decrypting it with its
-- authenticator before commit; a cell that did not decrypt before still does not after.
create or replace function cellcrypt.reencrypt_cell(blob bytea, from_key bytea, to_key bytea, to_guid bytea) returns bytea
language sql volatile as $$
  select to_guid || substring(blob from 17 for 4)
      || {{pgcrypto}}.encrypt_iv(
           {{pgcrypto}}.gen_random_bytes(16)
             || substring({{pgcrypto}}.decrypt_iv(substring(blob from 21), from_key, E'\\x00000000000000000000000000000000'::bytea, 'aes-cbc/pad:none') from 17),
           to_key, E'\\x00000000000000000000000000000000'::bytea, 'aes-cbc/pad:none')
$$;
