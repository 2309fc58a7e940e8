-- The application contract (README, "For applications"): the same two names as on SQL Server,
-- so an application never names a key generation (change-key drops cellcrypt_key_<n>).
--
--   select cellcrypt.open_keys($1);                       -- the master-key password, bound
--   ... cellcrypt.encrypt_text(cellcrypt.current_key_guid(), $2, $3::uuid) ...
--   ... cellcrypt.decrypt_text(column, primary_key) ...
--
-- in ONE transaction: as every key here, the opened keys end with it.

-- The GUID of the key new writes use: the highest generation cellcrypt_key_<digits> (during a
-- batched key change both exist and the new one is current). bytea, the form encrypt_text and
-- encrypt_by_key take as their first argument. STABLE: one value per statement.
create or replace function cellcrypt.current_key_guid() returns bytea
language sql stable as $$
  select key_guid from cellcrypt.symmetric_keys
  where name ~ '^cellcrypt_key_[0-9]+$'
  order by substring(name from 15)::numeric desc
  limit 1
$$;

-- OPEN MASTER KEY and OPEN SYMMETRIC KEY for every cellcrypt key, through the certificate that
-- protects it, for the rest of the current transaction. PostgreSQL has no service master key, so
-- the master-key password is the caller's to give (bind it as a parameter; see README, "Security
-- notes", on servers that log parameters). A wrong password raises CC51A, as open_master_key does.
create or replace function cellcrypt.open_keys(master_key_password text) returns void
language plpgsql volatile as $$
declare
  k record;
begin
  perform cellcrypt.open_master_key(master_key_password);
  for k in select name, certificate from cellcrypt.symmetric_keys where name ~ '^cellcrypt_key_[0-9]+$' loop
    perform cellcrypt.open_symmetric_key(k.name, k.certificate);
  end loop;
end $$;

-- A role an application may be put in, as on SQL Server: when a DBA has created it
-- (`create role cellcrypt_application`), every prepare (each `cellcrypt install`) grants it what
-- the two names read. The tables hold only wrapped keys; the master-key password opens them.
do $$
begin
  if exists (select 1 from pg_roles where rolname = 'cellcrypt_application') then
    grant usage on schema cellcrypt to cellcrypt_application;
    grant select on cellcrypt.master_key, cellcrypt.certificates, cellcrypt.symmetric_keys to cellcrypt_application;
  end if;
end $$;
