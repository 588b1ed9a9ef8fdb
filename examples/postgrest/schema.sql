-- A small multi-tenant schema served by PostgREST and protected by API keys.
--
-- Organisations own todos. A request is authenticated by the pre-request
-- function api_keys.api_key_authenticate(), which reads the key from the
-- request headers and sets the key's identity for the transaction;
-- row-level security then keeps every organisation inside its own rows.
--
-- Run as a superuser in a database that has `CREATE EXTENSION api_keys`.
-- Idempotent: running it again changes nothing.
--
-- The three roles PostgREST needs are cluster-wide and named authenticator,
-- anon and api here. (The test suite loads this file with those three role
-- names replaced, as whole words, by per-test names.)

-- Roles ----------------------------------------------------------------------

DO $roles$
BEGIN
    -- The role PostgREST logs in as. NOINHERIT: on its own it can do nothing,
    -- it only switches (SET LOCAL ROLE) to anon or api for each request.
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'authenticator') THEN
        CREATE ROLE authenticator LOGIN NOINHERIT NOCREATEDB NOCREATEROLE NOSUPERUSER;
    END IF;
    -- db-anon-role: PostgREST uses it for every request without a JWT, which
    -- is every request that authenticates with an API key.
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'anon') THEN
        CREATE ROLE anon NOLOGIN;
    END IF;
    -- The application role for callers that switch role themselves (a backend
    -- such as client.py) or carry a JWT whose role claim names it.
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'api') THEN
        CREATE ROLE api NOLOGIN;
    END IF;
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO authenticator', current_database());
END
$roles$;

-- GRANT of a role membership that already exists is a no-op (a NOTICE).
GRANT anon, api TO authenticator;
-- Executes api_key_authenticate, current_owner_id(), has_scope(), ... and
-- nothing else of the extension: no table, no admin function.
GRANT api_keys_verifier TO anon, api;

-- Tables ---------------------------------------------------------------------

CREATE SCHEMA IF NOT EXISTS app;

CREATE TABLE IF NOT EXISTS app.todos (
    id     bigserial PRIMARY KEY,
    -- The owning organisation: the owner_id of the keys issued to it with
    -- owner_type 'org'. A POST that leaves it out gets the caller's.
    org_id text NOT NULL DEFAULT api_keys.current_owner_id(),
    title  text NOT NULL,
    done   boolean NOT NULL DEFAULT false
);
CREATE INDEX IF NOT EXISTS todos_org_id_idx ON app.todos (org_id);

-- Row-level security ---------------------------------------------------------
--
-- Enabled and forced (the table owner is filtered too; superusers bypass RLS
-- as always). Without an authenticated key in the transaction,
-- current_owner_id() is NULL and has_scope() is false, so no row matches.
-- The owner type is checked as well: a key issued to ('user', '42') must not
-- open the rows of organisation '42'.

ALTER TABLE app.todos ENABLE ROW LEVEL SECURITY;
ALTER TABLE app.todos FORCE ROW LEVEL SECURITY;

-- Each call is wrapped in (SELECT …): an initplan, evaluated once per
-- statement instead of once per row (the identity helpers are plain C
-- calls, without SECURITY DEFINER or SET search_path, but once per
-- statement is still cheaper than once per row).
DROP POLICY IF EXISTS todos_select ON app.todos;
CREATE POLICY todos_select ON app.todos FOR SELECT
    USING (org_id = (SELECT api_keys.current_owner_id())
           AND (SELECT api_keys.current_owner_type()) = 'org'
           AND (SELECT api_keys.has_scope('todos:read')));

DROP POLICY IF EXISTS todos_insert ON app.todos;
CREATE POLICY todos_insert ON app.todos FOR INSERT
    WITH CHECK (org_id = (SELECT api_keys.current_owner_id())
                AND (SELECT api_keys.current_owner_type()) = 'org'
                AND (SELECT api_keys.has_scope('todos:write')));

DROP POLICY IF EXISTS todos_update ON app.todos;
CREATE POLICY todos_update ON app.todos FOR UPDATE
    USING (org_id = (SELECT api_keys.current_owner_id())
           AND (SELECT api_keys.current_owner_type()) = 'org'
           AND (SELECT api_keys.has_scope('todos:write')))
    WITH CHECK (org_id = (SELECT api_keys.current_owner_id())
                AND (SELECT api_keys.current_owner_type()) = 'org'
                AND (SELECT api_keys.has_scope('todos:write')));

-- No DELETE policy and no DELETE grant: todos are closed with done = true.

-- Grants ---------------------------------------------------------------------

GRANT USAGE ON SCHEMA app TO anon, api;
GRANT SELECT, INSERT, UPDATE ON app.todos TO anon, api;
GRANT USAGE ON SEQUENCE app.todos_id_seq TO anon, api;

-- Optional: per-route scopes as a PT403 ------------------------------------
--
-- PostgREST calls db-pre-request with no arguments, so
-- api_keys.api_key_authenticate() as the pre-request only checks that the key
-- is valid; the policies above do the per-scope filtering. To answer a
-- request whose key lacks the scope with 403 before any query runs, use this
-- wrapper as the pre-request instead:
--     db-pre-request = "app_private.authenticate_request"
-- It lives outside the exposed schema "app", so it is not an /rpc endpoint.

CREATE SCHEMA IF NOT EXISTS app_private;
GRANT USAGE ON SCHEMA app_private TO anon, api;

CREATE OR REPLACE FUNCTION app_private.authenticate_request() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog AS $fn$
DECLARE
    method text := upper(coalesce(current_setting('request.method', true), ''));
    path text := coalesce(current_setting('request.path', true), '');
    required text[] := '{}';
BEGIN
    IF path = '/todos' OR path LIKE '/todos/%' THEN
        required := CASE WHEN method IN ('GET', 'HEAD') THEN ARRAY['todos:read']
                         ELSE ARRAY['todos:write'] END;
    END IF;
    PERFORM api_keys.api_key_authenticate(required);
END
$fn$;

REVOKE ALL ON FUNCTION app_private.authenticate_request() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app_private.authenticate_request() TO anon, api;
