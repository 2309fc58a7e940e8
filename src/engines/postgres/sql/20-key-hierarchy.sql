-- The SQL Server key hierarchy as rows: master key (wrapped by its password), certificates
-- (wrapped by the master key), one symmetric key per key generation (wrapped by a certificate).
-- A dump of these tables without the master-key password reveals no key.
--
-- "Opening" a key puts its bytes in a transaction-local setting (set_config(..., true)): like
-- SQL Server's OPEN SYMMETRIC KEY it is an explicit call, but it ends with the transaction, so a
-- pooled connection can never hand an open key to the next user. The bytes stay in this
-- backend's memory only; nothing is written to disk.
--
-- Errors carry SQLSTATEs named after the Dynamics codes (CC519 = 0x80048519, ...); the engine
-- maps them back.

create table if not exists cellcrypt.master_key (
  id smallint primary key default 1 check (id = 1),
  wrapped bytea not null,
  created_at timestamptz not null default now()
);

create table if not exists cellcrypt.certificates (
  name text primary key,
  subject text not null,
  wrapped bytea not null,
  created_at timestamptz not null default now()
);

create table if not exists cellcrypt.symmetric_keys (
  name text primary key,
  key_guid bytea not null unique check (octet_length(key_guid) = 16),
  algorithm text not null check (algorithm in ('AES_128', 'AES_192', 'AES_256')),
  derivation text not null check (derivation in ('sql2016', 'sql2017')),
  certificate text not null references cellcrypt.certificates (name),
  wrapped bytea not null,
  created_at timestamptz not null default now()
);

-- Random keys are wrapped with OpenPGP symmetric encryption: AES-256 plus an integrity check, so
-- a wrong parent key raises instead of returning garbage.
create or replace function cellcrypt.wrap_key(child bytea, parent bytea) returns bytea
language sql volatile strict as $$
  select {{pgcrypto}}.pgp_sym_encrypt_bytea(child, encode(parent, 'hex'), 'cipher-algo=aes256, s2k-mode=1')
$$;

create or replace function cellcrypt.unwrap_key(wrapped bytea, parent bytea) returns bytea
language sql immutable strict as $$
  select {{pgcrypto}}.pgp_sym_decrypt_bytea(wrapped, encode(parent, 'hex'))
$$;

-- PARALLEL SAFE (as current_setting is): parallel workers start with the leader's settings, so
-- a census over a large table can decrypt on every core (the open key never leaves memory).
create or replace function cellcrypt.opened(setting text) returns bytea
language sql stable parallel safe as $$
  select decode(nullif(current_setting(setting, true), ''), 'hex')
$$;

create or replace function cellcrypt.key_setting(key_guid bytea) returns text
language sql immutable strict parallel safe as $$ select 'cellcrypt.k' || encode(key_guid, 'hex') $$;

create or replace function cellcrypt.create_master_key(password text) returns void
language plpgsql volatile as $$
begin
  if exists (select 1 from cellcrypt.master_key) then
    raise exception 'cellcrypt: a database master key already exists' using errcode = 'CCDUP';
  end if;
  -- s2k-mode 3: iterated and salted, so the password is costly to guess from a dump.
  insert into cellcrypt.master_key (wrapped)
  values ({{pgcrypto}}.pgp_sym_encrypt_bytea({{pgcrypto}}.gen_random_bytes(32), password, 'cipher-algo=aes256, s2k-mode=3'));
end $$;

create or replace function cellcrypt.open_master_key(password text) returns void
language plpgsql volatile as $$
declare
  wrapped_key bytea;
  master bytea;
begin
  select wrapped into wrapped_key from cellcrypt.master_key where id = 1;
  if wrapped_key is null then
    raise exception 'cellcrypt: the database master key does not exist' using errcode = 'CC519';
  end if;
  begin
    master := {{pgcrypto}}.pgp_sym_decrypt_bytea(wrapped_key, password);
  exception when others then
    raise exception 'cellcrypt: the password does not open the database master key' using errcode = 'CC51A';
  end;
  perform set_config('cellcrypt.dmk', encode(master, 'hex'), true);
  -- Every key transaction opens the master key first. Its statements run pgcrypto and PL/pgSQL
  -- per cell, which JIT cannot speed up, while compiling each large statement cost 0.1-0.5 s
  -- (issue 7 profile); transaction-local like the keys.
  perform set_config('jit', 'off', true);
end $$;

create or replace function cellcrypt.open_certificate(certificate text) returns bytea
language plpgsql volatile as $$
declare
  master bytea := cellcrypt.opened('cellcrypt.dmk');
  wrapped_cert bytea;
begin
  if master is null then
    raise exception 'cellcrypt: the database master key is not open' using errcode = 'CC51A';
  end if;
  select wrapped into wrapped_cert from cellcrypt.certificates where name = certificate;
  if wrapped_cert is null then
    raise exception 'cellcrypt: certificate "%" does not exist', certificate using errcode = 'CC51D';
  end if;
  return cellcrypt.unwrap_key(wrapped_cert, master);
end $$;

create or replace function cellcrypt.create_certificate(certificate text, subject text) returns void
language plpgsql volatile as $$
declare
  master bytea := cellcrypt.opened('cellcrypt.dmk');
begin
  if master is null then
    raise exception 'cellcrypt: the database master key is not open' using errcode = 'CC51A';
  end if;
  insert into cellcrypt.certificates (name, subject, wrapped)
  values (certificate, subject, cellcrypt.wrap_key({{pgcrypto}}.gen_random_bytes(32), master));
end $$;

-- KEY_SOURCE and IDENTITY_VALUE semantics of CREATE SYMMETRIC KEY: the same phrases give the same
-- key bytes and GUID on every engine, so cells stay readable after a move or a rebuild.
create or replace function cellcrypt.create_symmetric_key(
  key_name text, algorithm text, key_source text, identity_value text, certificate text,
  derivation text default 'sql2017'
) returns bytea
language plpgsql volatile as $$
declare
  cert bytea := cellcrypt.open_certificate(certificate);
  guid bytea := cellcrypt.key_guid_for_identity(identity_value);
begin
  if exists (select 1 from cellcrypt.symmetric_keys k where k.key_guid = guid) then
    raise exception 'cellcrypt: a symmetric key with this IDENTITY_VALUE already exists' using errcode = 'CCDUP';
  end if;
  insert into cellcrypt.symmetric_keys (name, key_guid, algorithm, derivation, certificate, wrapped)
  values (key_name, guid, algorithm, derivation, certificate,
          cellcrypt.wrap_key(cellcrypt.derive_key(key_source, derivation, algorithm), cert));
  return guid;
end $$;

create or replace function cellcrypt.open_symmetric_key(key_name text, certificate text) returns bytea
language plpgsql volatile as $$
declare
  k cellcrypt.symmetric_keys;
  cert bytea;
  key_bytes bytea;
begin
  select * into k from cellcrypt.symmetric_keys where name = key_name;
  if not found then
    raise exception 'cellcrypt: symmetric key "%" does not exist', key_name using errcode = 'CC520';
  end if;
  if k.certificate <> certificate then
    raise exception 'cellcrypt: symmetric key "%" is not protected by certificate "%"', key_name, certificate using errcode = 'CC52F';
  end if;
  cert := cellcrypt.open_certificate(certificate);
  begin
    key_bytes := cellcrypt.unwrap_key(k.wrapped, cert);
  exception when others then
    raise exception 'cellcrypt: symmetric key "%" cannot be opened with certificate "%"', key_name, certificate using errcode = 'CC52F';
  end;
  perform set_config(cellcrypt.key_setting(k.key_guid), encode(key_bytes, 'hex'), true);
  return k.key_guid;
end $$;

create or replace function cellcrypt.close_all_symmetric_keys() returns void
language sql volatile as $$
  select set_config(cellcrypt.key_setting(key_guid), '', true) from cellcrypt.symmetric_keys;
  select set_config('cellcrypt.dmk', '', true);
$$;

create or replace function cellcrypt.drop_symmetric_key(key_name text) returns void
language plpgsql volatile as $$
begin
  delete from cellcrypt.symmetric_keys where name = key_name;
  if not found then
    raise exception 'cellcrypt: symmetric key "%" does not exist', key_name using errcode = 'CC520';
  end if;
end $$;

-- rewrap, step 1 of 3: ALTER SYMMETRIC KEY k ADD ENCRYPTION BY CERTIFICATE new, then DROP
-- ENCRYPTION BY CERTIFICATE old, in one call (a row here holds one wrapping). As on SQL Server
-- the key must be open: its bytes come from the open setting, and must be the bytes its current
-- wrapping holds. The new wrapping is unwrapped again before it replaces the old one, so a key is
-- never left wrapped around anything but its own bytes. Cells are not touched.
create or replace function cellcrypt.move_symmetric_key(key_name text, from_certificate text, to_certificate text)
returns void
language plpgsql volatile as $$
declare
  k cellcrypt.symmetric_keys;
  key_bytes bytea;
  from_cert bytea;
  to_cert bytea;
  wrapped_bytes bytea;
  rewrapped bytea;
begin
  select * into k from cellcrypt.symmetric_keys where name = key_name for update;
  if not found then
    raise exception 'cellcrypt: symmetric key "%" does not exist', key_name using errcode = 'CC520';
  end if;
  if k.certificate <> from_certificate then
    raise exception 'cellcrypt: symmetric key "%" is not protected by certificate "%"', key_name, from_certificate using errcode = 'CC52F';
  end if;
  key_bytes := cellcrypt.opened(cellcrypt.key_setting(k.key_guid));
  if key_bytes is null then
    raise exception 'cellcrypt: symmetric key "%" is not open in this transaction', key_name using errcode = 'CC520';
  end if;
  from_cert := cellcrypt.open_certificate(from_certificate);
  to_cert := cellcrypt.open_certificate(to_certificate);
  begin
    wrapped_bytes := cellcrypt.unwrap_key(k.wrapped, from_cert);
  exception when others then
    raise exception 'cellcrypt: symmetric key "%" cannot be opened with certificate "%"', key_name, from_certificate using errcode = 'CC52F';
  end;
  rewrapped := cellcrypt.wrap_key(key_bytes, to_cert);
  if wrapped_bytes <> key_bytes or cellcrypt.unwrap_key(rewrapped, to_cert) <> key_bytes then
    raise exception 'cellcrypt: symmetric key "%" did not re-wrap to the same key bytes', key_name using errcode = 'CC52F';
  end if;
  update cellcrypt.symmetric_keys set certificate = to_certificate, wrapped = rewrapped where name = key_name;
end $$;

-- rewrap, step 2: DROP CERTIFICATE, refused while a key is still protected by it (SQL Server
-- refuses too: a certificate is dropped only when nothing is encrypted by it).
create or replace function cellcrypt.drop_certificate(certificate_name text) returns void
language plpgsql volatile as $$
begin
  if exists (select 1 from cellcrypt.symmetric_keys where certificate = certificate_name) then
    raise exception 'cellcrypt: certificate "%" still protects a symmetric key', certificate_name using errcode = 'CCUSE';
  end if;
  delete from cellcrypt.certificates where name = certificate_name;
  if not found then
    raise exception 'cellcrypt: certificate "%" does not exist', certificate_name using errcode = 'CC51D';
  end if;
end $$;

-- rewrap, step 3: ALTER MASTER KEY ADD ENCRYPTION BY PASSWORD = new; DROP ENCRYPTION BY
-- PASSWORD = old. The master key's bytes are kept (so is everything wrapped by them); only the
-- password that wraps them changes, after the new wrapping has been opened once.
create or replace function cellcrypt.change_master_key_password(old_password text, new_password text) returns void
language plpgsql volatile as $$
declare
  wrapped_key bytea;
  master bytea;
  rewrapped bytea;
begin
  select wrapped into wrapped_key from cellcrypt.master_key where id = 1 for update;
  if wrapped_key is null then
    raise exception 'cellcrypt: the database master key does not exist' using errcode = 'CC519';
  end if;
  begin
    master := {{pgcrypto}}.pgp_sym_decrypt_bytea(wrapped_key, old_password);
  exception when others then
    raise exception 'cellcrypt: the password does not open the database master key' using errcode = 'CC51A';
  end;
  rewrapped := {{pgcrypto}}.pgp_sym_encrypt_bytea(master, new_password, 'cipher-algo=aes256, s2k-mode=3');
  if {{pgcrypto}}.pgp_sym_decrypt_bytea(rewrapped, new_password) <> master then
    raise exception 'cellcrypt: the new password did not re-wrap the database master key' using errcode = 'CC51A';
  end if;
  update cellcrypt.master_key set wrapped = rewrapped where id = 1;
end $$;

-- ENCRYPTBYKEY / DECRYPTBYKEY: NULL when the key is not open or the cell does not check out,
-- never an error (callers must check for new NULLs, as on SQL Server).
-- A single SELECT of one expression, so the planner inlines it into the calling statement (a
-- FROM clause made it a function call per cell: measured in the issue 7 profile).
-- encrypt_cell gives NULL for a NULL (not open) key.
create or replace function cellcrypt.encrypt_by_key(key_guid bytea, plaintext bytea, authenticator bytea) returns bytea
language sql volatile as $$
  select cellcrypt.encrypt_cell(cellcrypt.opened(cellcrypt.key_setting(key_guid)), key_guid, plaintext, authenticator, {{pgcrypto}}.gen_random_bytes(16))
$$;

create or replace function cellcrypt.decrypt_by_key(blob bytea, authenticator bytea) returns bytea
language sql stable parallel safe as $$
  select cellcrypt.decrypt_cell(cellcrypt.opened(cellcrypt.key_setting(cellcrypt.cell_key_guid(blob))), blob, authenticator)
$$;

-- The bytes of an open key, for statements that must not run without it: raises instead of
-- returning NULL, because a NULL key would turn every cell it writes into NULL. Called once per
-- statement (as an uncorrelated subquery), not per cell.
create or replace function cellcrypt.open_key_bytes(key_guid bytea) returns bytea
language plpgsql stable parallel safe as $$
declare
  key_bytes bytea := cellcrypt.opened(cellcrypt.key_setting(key_guid));
begin
  if key_bytes is null or length(key_bytes) not in (16, 24, 32) then
    raise exception 'cellcrypt: symmetric key % is not open in this transaction', encode(key_guid, 'hex') using errcode = 'CC520';
  end if;
  return key_bytes;
end $$;

-- The nvarchar + uniqueidentifier-authenticator forms every registered column uses.
create or replace function cellcrypt.encrypt_text(key_guid bytea, value text, row_id uuid) returns bytea
language sql volatile as $$
  select cellcrypt.encrypt_by_key(key_guid, cellcrypt.utf16le(value), cellcrypt.guid_bytes(row_id))
$$;

create or replace function cellcrypt.decrypt_text(blob bytea, row_id uuid) returns text
language sql stable parallel safe as $$
  select cellcrypt.from_utf16le(cellcrypt.decrypt_by_key(blob, cellcrypt.guid_bytes(row_id)))
$$;

-- Secrets reach these functions as bind parameters, and a server that logs statements
-- (log_statement, log_min_duration_statement) also logs their parameters. Called before every
-- call that carries a secret: stops parameter logging for the rest of this transaction.
-- log_parameter_max_length needs superuser (or SET privilege); without it, returns false and
-- the caller warns when the server's settings would log parameters.
create or replace function cellcrypt.hide_parameters_from_logs() returns boolean
language plpgsql volatile as $$
begin
  perform set_config('log_parameter_max_length_on_error', '0', true);
  begin
    perform set_config('log_parameter_max_length', '0', true);
    return true;
  exception when insufficient_privilege then
    return current_setting('log_statement') in ('none', 'ddl') and current_setting('log_min_duration_statement')::int < 0;
  end;
end $$;
