-- api_keys 0.1.0 -> 0.2.0. Brings a 0.1.0 database to what a fresh 0.2.0
-- install creates (the upgrade stage, scripts/upgrade-test.sh, compares the
-- two catalogs). Runs inside ALTER EXTENSION api_keys UPDATE, as the
-- extension's owner (a superuser).
\echo Use "ALTER EXTENSION api_keys UPDATE" to load this file. \quit

-- Rust helpers new in 0.2.0 (their CREATE FUNCTION is what pgrx generates
-- for a fresh install).
CREATE FUNCTION api_keys._scope_definition(
	"name" TEXT,
	"description" TEXT
) RETURNS TEXT
IMMUTABLE SECURITY DEFINER
SET search_path TO pg_catalog, api_keys, pg_temp
LANGUAGE c
AS 'MODULE_PATHNAME', '_scope_definition_wrapper';

CREATE FUNCTION api_keys._scopes_effective(
	"scopes" TEXT[],
	"ceiling" TEXT[]
) RETURNS TEXT[]
IMMUTABLE SECURITY DEFINER PARALLEL SAFE
SET search_path TO pg_catalog, api_keys, pg_temp
LANGUAGE c
AS 'MODULE_PATHNAME', '_scopes_effective_wrapper';

-- Functions whose body or binding changed (sql/functions.sql has the same
-- text): text that is not UTF-8 is refused before any Rust helper sees it,
-- operators are written without relying on search_path, key_info scopes are
-- the effective ones, concurrent defines map to invalid_argument, and the
-- never-raise functions read their arguments without pgrx's conversion.

-- key_info rows. scopes are the key's effective scopes: stored ∩ its type's
-- current ceiling (core's rule, as verify applies it).
CREATE OR REPLACE VIEW api_keys.key_infos AS
SELECT k.id, k.owner_type, k.owner_id, k.name, k.key_type, k.environment,
       api_keys._mask_parts(k.display_prefix, k.last4) AS masked_token,
       CASE WHEN t.public THEN k.viewable_token END AS viewable_token,
       api_keys._scopes_effective(k.scopes, t.permissions) AS scopes, k.metadata, k.status,
       coalesce(t.revocable, true) AS revocable,
       k.created_at, k.expires_at, k.revoked_at, k.last_used_at, k.requests_count
  FROM api_keys.key_statuses k
  LEFT JOIN api_keys.key_types t ON t.name = k.key_type;

CREATE OR REPLACE FUNCTION api_keys.api_key_issue(
    owner_type text,
    owner_id text,
    name text DEFAULT NULL,
    scopes text[] DEFAULT NULL,
    key_type text DEFAULT NULL,
    environment text DEFAULT NULL,
    expires_at timestamptz DEFAULT NULL,
    expires_in text DEFAULT NULL,
    metadata jsonb DEFAULT '{}')
RETURNS api_keys.issued_key LANGUAGE plpgsql VOLATILE
SECURITY DEFINER SET search_path = pg_catalog, api_keys, pg_temp AS $$
DECLARE
    meta jsonb := coalesce(metadata, '{}');
    key_name text := nullif(btrim(name), '');
    policy api_keys.owner_policies;
    t api_keys.key_types;
    e api_keys.environments;
    reg record;
    granted text[];
    expiry timestamptz;
    days integer;
    tok record;
    new_id uuid;
    now_ts timestamptz := now();
BEGIN
    PERFORM api_keys._text_check('owner_type, owner_id, name, scopes, key_type, environment or expires_in',
        owner_type, owner_id, name, array_to_string(scopes, ' '), key_type, environment, expires_in);
    PERFORM api_keys._check_key_args(owner_type, owner_id, name, jsonb_typeof(meta), octet_length(meta::text));
    SELECT * INTO policy FROM api_keys.owner_policies p WHERE p.owner_type = api_key_issue.owner_type;
    IF coalesce(policy.require_name, false) AND key_name IS NULL THEN
        PERFORM api_keys._raise('name_required', format('owner type %s requires a key name', left(owner_type, 100)));
    END IF;
    t := api_keys._resolve_type(key_type);
    e := api_keys._resolve_environment(environment);

    IF expires_in IS NOT NULL THEN
        days := api_keys._expires_in_days(expires_in);
        expiry := CASE WHEN days IS NULL THEN NULL ELSE now_ts + pg_catalog.make_interval(days => days) END;
    ELSIF expires_at IS NOT NULL THEN
        IF expires_at <= now_ts THEN
            PERFORM api_keys._raise('invalid_expiry', 'expires_at must be in the future');
        END IF;
        expiry := expires_at;
    END IF;
    IF expiry IS NOT NULL AND NOT coalesce(t.revocable, true) THEN
        PERFORM api_keys._raise('invalid_expiry', format('keys of the non-revocable type %s cannot expire', t.name));
    END IF;

    SELECT * INTO reg FROM api_keys._scope_registry();
    granted := api_keys._scopes_process(coalesce(scopes, policy.default_scopes, '{}'),
                                        reg.names, reg.exclusive, t.permissions);

    PERFORM api_keys._within_limits(owner_type, owner_id, t, e.name, true);

    SELECT * INTO tok FROM api_keys._token_new(coalesce(t.prefix, api_keys._token_prefix()), e.prefix_segment);
    new_id := api_keys._key_id_new();
    INSERT INTO api_keys.keys (id, owner_type, owner_id, name, key_type, environment, token_hash,
                               display_prefix, last4, scopes, metadata, viewable_token,
                               created_at, expires_at)
    VALUES (new_id, owner_type, owner_id, key_name, t.name, e.name, tok.token_hash,
            tok.display_prefix, tok.last4, granted, meta,
            CASE WHEN coalesce(t.public, false) THEN tok.token END,
            now_ts, expiry);
    PERFORM api_keys._audit('issue', new_id, owner_type, owner_id,
        jsonb_build_object('name', key_name, 'key_type', t.name, 'environment', e.name,
                           'scopes', to_jsonb(granted), 'expires_at', expiry));
    RETURN ROW(new_id, tok.token, tok.masked_token, owner_type, owner_id, key_name, t.name, e.name,
               granted, expiry, now_ts)::api_keys.issued_key;
END
$$;

CREATE OR REPLACE FUNCTION api_keys.api_key_list(owner_type text, owner_id text, status text DEFAULT NULL, key_type text DEFAULT NULL)
RETURNS SETOF api_keys.key_info LANGUAGE plpgsql STABLE
SECURITY DEFINER SET search_path = pg_catalog, api_keys, pg_temp AS $$
BEGIN
    PERFORM api_keys._text_check('owner_type, owner_id, status or key_type', owner_type, owner_id, status, key_type);
    PERFORM api_keys._check_owner(owner_type, owner_id);
    IF status IS NOT NULL AND status NOT IN ('active', 'inactive', 'expired', 'revoked') THEN
        PERFORM api_keys._raise('invalid_argument',
            format('status must be one of active, inactive, expired, revoked, got %s', left(status, 40)));
    END IF;
    PERFORM api_keys._resolve_type(key_type);
    RETURN QUERY
        SELECT i.* FROM api_keys.key_infos i
         WHERE i.owner_type = api_key_list.owner_type AND i.owner_id = api_key_list.owner_id
           AND (api_key_list.key_type IS NULL OR i.key_type = api_key_list.key_type)
           AND (api_key_list.status IS NULL
                OR i.status = api_key_list.status
                OR (api_key_list.status = 'inactive' AND i.status <> 'active'))
         ORDER BY i.created_at DESC, i.id DESC;
END
$$;

CREATE OR REPLACE FUNCTION api_keys.api_key_revoke_all(owner_type text, owner_id text) RETURNS integer
LANGUAGE plpgsql VOLATILE
SECURITY DEFINER SET search_path = pg_catalog, api_keys, pg_temp AS $$
DECLARE
    ids uuid[];
BEGIN
    PERFORM api_keys._text_check('owner_type or owner_id', owner_type, owner_id);
    PERFORM api_keys._check_owner(owner_type, owner_id);
    WITH revoked AS (
        UPDATE api_keys.keys k SET revoked_at = now()
         WHERE k.owner_type = api_key_revoke_all.owner_type AND k.owner_id = api_key_revoke_all.owner_id
           AND k.id IN (SELECT s.id FROM api_keys.key_statuses s
                         WHERE s.owner_type = api_key_revoke_all.owner_type
                           AND s.owner_id = api_key_revoke_all.owner_id AND s.status = 'active')
           AND NOT EXISTS (SELECT 1 FROM api_keys.key_types t WHERE t.name = k.key_type AND NOT t.revocable)
        RETURNING k.id)
    SELECT coalesce(array_agg(id), '{}') INTO ids FROM revoked;
    PERFORM api_keys._audit('revoke_all', NULL, owner_type, owner_id,
        jsonb_build_object('revoked', cardinality(ids), 'key_ids', to_jsonb(ids)));
    RETURN cardinality(ids);
END
$$;

CREATE OR REPLACE FUNCTION api_keys.api_key_purge_owner(owner_type text, owner_id text) RETURNS integer
LANGUAGE plpgsql VOLATILE
SECURITY DEFINER SET search_path = pg_catalog, api_keys, pg_temp AS $$
DECLARE
    n integer;
BEGIN
    PERFORM api_keys._text_check('owner_type or owner_id', owner_type, owner_id);
    PERFORM api_keys._check_owner(owner_type, owner_id);
    DELETE FROM api_keys.keys k
     WHERE k.owner_type = api_key_purge_owner.owner_type AND k.owner_id = api_key_purge_owner.owner_id;
    GET DIAGNOSTICS n = ROW_COUNT;
    DELETE FROM api_keys.owner_locks l
     WHERE l.owner_type = api_key_purge_owner.owner_type AND l.owner_id = api_key_purge_owner.owner_id;
    PERFORM api_keys._audit('purge_owner', NULL, owner_type, owner_id, jsonb_build_object('deleted', n));
    RETURN n;
END
$$;

CREATE OR REPLACE FUNCTION api_keys.api_key_update(key_id uuid, name text DEFAULT NULL, scopes text[] DEFAULT NULL, metadata jsonb DEFAULT NULL)
RETURNS api_keys.key_info LANGUAGE plpgsql VOLATILE
SECURITY DEFINER SET search_path = pg_catalog, api_keys, pg_temp AS $$
DECLARE
    k api_keys.keys;
    t api_keys.key_types;
    reg record;
    new_name text;
    new_scopes text[];
    changed text[] := '{}';
BEGIN
    PERFORM api_keys._text_check('name or scopes', name, array_to_string(scopes, ' '));
    k := api_keys._lock_key(key_id);
    PERFORM api_keys._check_key_args(k.owner_type, k.owner_id, name, jsonb_typeof(metadata), octet_length(metadata::text));
    new_name := k.name;
    IF name IS NOT NULL THEN
        new_name := nullif(btrim(name), '');
        IF new_name IS NULL AND EXISTS (SELECT 1 FROM api_keys.owner_policies p
                                         WHERE p.owner_type = k.owner_type AND p.require_name) THEN
            PERFORM api_keys._raise('name_required', format('owner type %s requires a key name', left(k.owner_type, 100)));
        END IF;
        changed := pg_catalog.array_append(changed, 'name'::text);
    END IF;
    new_scopes := k.scopes;
    IF scopes IS NOT NULL THEN
        t := api_keys._resolve_type(k.key_type);
        SELECT * INTO reg FROM api_keys._scope_registry();
        new_scopes := api_keys._scopes_process(scopes, reg.names, reg.exclusive, t.permissions);
        changed := pg_catalog.array_append(changed, 'scopes'::text);
    END IF;
    IF metadata IS NOT NULL THEN
        changed := pg_catalog.array_append(changed, 'metadata'::text);
    END IF;
    UPDATE api_keys.keys kk
       SET name = new_name, scopes = new_scopes, metadata = coalesce(api_key_update.metadata, kk.metadata)
     WHERE kk.id = key_id;
    PERFORM api_keys._audit('update', key_id, k.owner_type, k.owner_id,
        jsonb_build_object('changed', to_jsonb(changed), 'name', new_name, 'scopes', to_jsonb(new_scopes)));
    RETURN api_keys.api_key_get(key_id);
END
$$;

CREATE OR REPLACE FUNCTION api_keys.api_key_can_issue(owner_type text, owner_id text, key_type text DEFAULT NULL, environment text DEFAULT NULL)
RETURNS boolean LANGUAGE plpgsql VOLATILE
SECURITY DEFINER SET search_path = pg_catalog, api_keys, pg_temp AS $$
DECLARE
    t api_keys.key_types;
    e api_keys.environments;
BEGIN
    PERFORM api_keys._text_check('owner_type, owner_id, key_type or environment', owner_type, owner_id, key_type, environment);
    PERFORM api_keys._check_owner(owner_type, owner_id);
    t := api_keys._resolve_type(key_type);
    e := api_keys._resolve_environment(environment);
    RETURN api_keys._within_limits(owner_type, owner_id, t, e.name, false);
END
$$;

CREATE OR REPLACE FUNCTION api_keys.api_key_available_scopes(owner_type text, key_type text DEFAULT NULL)
RETURNS text[] LANGUAGE plpgsql STABLE
SECURITY DEFINER SET search_path = pg_catalog, api_keys, pg_temp AS $$
DECLARE
    t api_keys.key_types;
    reg record;
    defaults text[];
BEGIN
    PERFORM api_keys._text_check('owner_type or key_type', owner_type, key_type);
    PERFORM api_keys._check_label('owner_type', owner_type);
    t := api_keys._resolve_type(key_type);
    SELECT * INTO reg FROM api_keys._scope_registry();
    SELECT p.default_scopes INTO defaults FROM api_keys.owner_policies p WHERE p.owner_type = api_key_available_scopes.owner_type;
    RETURN api_keys._scopes_available(defaults, reg.names, t.permissions);
END
$$;

CREATE OR REPLACE FUNCTION api_keys.api_key_type_define(
    name text, prefix text, permissions text[] DEFAULT NULL, revocable boolean DEFAULT true,
    public boolean DEFAULT false, per_owner_limit integer DEFAULT NULL)
RETURNS void LANGUAGE plpgsql VOLATILE
SECURITY DEFINER SET search_path = pg_catalog, api_keys, pg_temp AS $$
DECLARE
    reg record;
    ceiling text[];
    other text;
BEGIN
    PERFORM api_keys._text_check('name, prefix or permissions', name, prefix, array_to_string(permissions, ' '));
    PERFORM api_keys._check_label('key type name', name);
    PERFORM api_keys._check_segment('key type prefix', prefix);
    IF revocable IS NULL OR public IS NULL THEN
        PERFORM api_keys._raise('invalid_argument', 'revocable and public must not be NULL');
    END IF;
    IF per_owner_limit < 0 THEN
        PERFORM api_keys._raise('invalid_argument', 'per_owner_limit must be >= 0');
    END IF;
    IF public AND (revocable OR permissions IS NULL) THEN
        PERFORM api_keys._raise('invalid_argument',
            'a public key type must be non-revocable and have a scope ceiling (permissions)');
    END IF;
    IF permissions IS NOT NULL THEN
        SELECT * INTO reg FROM api_keys._scope_registry();
        ceiling := api_keys._scopes_known(permissions, reg.names);
    END IF;
    SELECT t.name INTO other FROM api_keys.key_types t WHERE t.prefix = api_key_type_define.prefix AND t.name <> api_key_type_define.name;
    IF FOUND THEN
        PERFORM api_keys._raise('invalid_argument', format('prefix %s is already used by key type %s', prefix, other));
    END IF;
    BEGIN
        INSERT INTO api_keys.key_types AS t (name, prefix, permissions, revocable, public, per_owner_limit)
        VALUES (name, prefix, ceiling, revocable, public, per_owner_limit)
        ON CONFLICT ON CONSTRAINT key_types_pkey DO UPDATE
           SET prefix = EXCLUDED.prefix, permissions = EXCLUDED.permissions, revocable = EXCLUDED.revocable,
               public = EXCLUDED.public, per_owner_limit = EXCLUDED.per_owner_limit, updated_at = now();
    EXCEPTION WHEN unique_violation THEN
        -- a concurrent define took the prefix between our check and the insert
        PERFORM api_keys._raise('invalid_argument', format('prefix %s is already used by another key type', prefix));
    END;
    IF NOT public THEN
        -- a type that stops being public stops keeping plaintexts
        UPDATE api_keys.keys k SET viewable_token = NULL
         WHERE k.key_type = api_key_type_define.name AND k.viewable_token IS NOT NULL;
    END IF;
    PERFORM api_keys._audit('type_define', NULL, NULL, NULL,
        jsonb_build_object('name', name, 'prefix', prefix, 'permissions', to_jsonb(ceiling),
                           'revocable', revocable, 'public', public, 'per_owner_limit', per_owner_limit));
END
$$;

CREATE OR REPLACE FUNCTION api_keys.api_key_environment_define(name text, prefix_segment text)
RETURNS void LANGUAGE plpgsql VOLATILE
SECURITY DEFINER SET search_path = pg_catalog, api_keys, pg_temp AS $$
DECLARE
    other text;
BEGIN
    PERFORM api_keys._text_check('name or prefix_segment', name, prefix_segment);
    PERFORM api_keys._check_label('environment name', name);
    PERFORM api_keys._check_segment('environment prefix_segment', prefix_segment);
    SELECT e.name INTO other FROM api_keys.environments e
     WHERE e.prefix_segment = api_key_environment_define.prefix_segment AND e.name <> api_key_environment_define.name;
    IF FOUND THEN
        PERFORM api_keys._raise('invalid_argument',
            format('prefix segment %s is already used by environment %s', prefix_segment, other));
    END IF;
    BEGIN
        INSERT INTO api_keys.environments AS e (name, prefix_segment) VALUES (name, prefix_segment)
        ON CONFLICT ON CONSTRAINT environments_pkey DO UPDATE SET prefix_segment = EXCLUDED.prefix_segment;
    EXCEPTION WHEN unique_violation THEN
        -- a concurrent define took the segment between our check and the insert
        PERFORM api_keys._raise('invalid_argument',
            format('prefix segment %s is already used by another environment', prefix_segment));
    END;
    PERFORM api_keys._audit('environment_define', NULL, NULL, NULL,
        jsonb_build_object('name', name, 'prefix_segment', prefix_segment));
END
$$;

CREATE OR REPLACE FUNCTION api_keys.api_key_scope_define(name text, description text DEFAULT NULL, exclusive boolean DEFAULT false)
RETURNS void LANGUAGE plpgsql VOLATILE
SECURITY DEFINER SET search_path = pg_catalog, api_keys, pg_temp AS $$
DECLARE
    scope text;
BEGIN
    PERFORM api_keys._text_check('name or description', name, description);
    scope := api_keys._scope_definition(name, description);
    IF exclusive IS NULL THEN
        PERFORM api_keys._raise('invalid_argument', 'exclusive must not be NULL');
    END IF;
    INSERT INTO api_keys.scopes AS s (name, description, exclusive) VALUES (scope, description, exclusive)
    ON CONFLICT ON CONSTRAINT scopes_pkey DO UPDATE
       SET description = EXCLUDED.description, exclusive = EXCLUDED.exclusive;
    PERFORM api_keys._audit('scope_define', NULL, NULL, NULL,
        jsonb_build_object('name', scope, 'exclusive', exclusive));
END
$$;

CREATE OR REPLACE FUNCTION api_keys.api_key_owner_policy_set(owner_type text, max_keys integer DEFAULT NULL,
                                                  require_name boolean DEFAULT false, default_scopes text[] DEFAULT NULL)
RETURNS void LANGUAGE plpgsql VOLATILE
SECURITY DEFINER SET search_path = pg_catalog, api_keys, pg_temp AS $$
DECLARE
    reg record;
    defaults text[];
BEGIN
    PERFORM api_keys._text_check('owner_type or default_scopes', owner_type, array_to_string(default_scopes, ' '));
    PERFORM api_keys._check_label('owner_type', owner_type);
    IF max_keys < 0 THEN
        PERFORM api_keys._raise('invalid_argument', 'max_keys must be >= 0');
    END IF;
    IF default_scopes IS NOT NULL THEN
        SELECT * INTO reg FROM api_keys._scope_registry();
        defaults := api_keys._scopes_known(default_scopes, reg.names);
    END IF;
    INSERT INTO api_keys.owner_policies AS p (owner_type, max_keys, require_name, default_scopes)
    VALUES (owner_type, max_keys, coalesce(require_name, false), defaults)
    ON CONFLICT ON CONSTRAINT owner_policies_pkey DO UPDATE
       SET max_keys = EXCLUDED.max_keys, require_name = EXCLUDED.require_name,
           default_scopes = EXCLUDED.default_scopes, updated_at = now();
    PERFORM api_keys._audit('owner_policy_set', NULL, owner_type, NULL,
        jsonb_build_object('max_keys', max_keys, 'require_name', coalesce(require_name, false),
                           'default_scopes', to_jsonb(defaults)));
END
$$;

CREATE OR REPLACE FUNCTION api_keys.api_key_mask(token text) RETURNS text
LANGUAGE c IMMUTABLE PARALLEL SAFE
SECURITY DEFINER SET search_path = pg_catalog, api_keys, pg_temp
AS 'MODULE_PATHNAME', 'api_keys_mask';

CREATE OR REPLACE FUNCTION api_keys.api_key_environment_of(token text) RETURNS text
LANGUAGE c STABLE PARALLEL SAFE
SECURITY DEFINER SET search_path = pg_catalog, api_keys, pg_temp
AS 'MODULE_PATHNAME', 'api_keys_environment_of';

CREATE OR REPLACE FUNCTION api_keys.has_scope(scope text) RETURNS boolean
LANGUAGE c STABLE PARALLEL RESTRICTED
SECURITY DEFINER SET search_path = pg_catalog, api_keys, pg_temp
AS 'MODULE_PATHNAME', 'api_keys_has_scope';

CREATE OR REPLACE FUNCTION api_keys._authenticate(headers text, required_scopes text[]) RETURNS text
LANGUAGE c VOLATILE
SECURITY DEFINER SET search_path = pg_catalog, api_keys, pg_temp
AS 'MODULE_PATHNAME', 'api_keys_authenticate';

CREATE OR REPLACE FUNCTION api_keys._text_check(what text, VARIADIC value text[]) RETURNS boolean
LANGUAGE c IMMUTABLE
SECURITY DEFINER SET search_path = pg_catalog, api_keys, pg_temp
AS 'MODULE_PATHNAME', 'api_keys_text_check';

-- Every ACL of the extension, set explicitly: first every privilege held by
-- anyone but the owner is revoked from every object in the schema (so
-- default privileges in force at CREATE EXTENSION, or left by an earlier
-- version, count for nothing), then the grants below are made. Install and
-- every update script end with a call, so the result is the same whatever
-- the database's default privileges are.
CREATE OR REPLACE FUNCTION api_keys._acl_apply() RETURNS void
LANGUAGE plpgsql VOLATILE
SECURITY DEFINER SET search_path = pg_catalog, api_keys, pg_temp AS $$
DECLARE
    nsp oid := 'api_keys'::regnamespace;
    r record;
    verifier_functions text[] := ARRAY[
        'api_key_verify', 'api_key_mask', 'api_key_environment_of', 'api_key_expiration_presets',
        'api_key_authenticate', 'current_key_id', 'current_owner_type', 'current_owner_id',
        'current_scopes', 'has_scope'];
BEGIN
    FOR r IN
        SELECT 'SCHEMA' AS kind, 'api_keys'::text AS obj, a.grantee
          FROM pg_catalog.pg_namespace n,
               pg_catalog.aclexplode(coalesce(n.nspacl, pg_catalog.acldefault('n', n.nspowner))) a
         WHERE n.oid OPERATOR(pg_catalog.=) nsp AND a.grantee OPERATOR(pg_catalog.<>) n.nspowner
        UNION
        SELECT CASE WHEN c.relkind OPERATOR(pg_catalog.=) 'S' THEN 'SEQUENCE' ELSE 'TABLE' END,
               pg_catalog.format('api_keys.%I', c.relname), a.grantee
          FROM pg_catalog.pg_class c,
               pg_catalog.aclexplode(coalesce(c.relacl, pg_catalog.acldefault(
                   CASE WHEN c.relkind OPERATOR(pg_catalog.=) 'S' THEN 's'::"char" ELSE 'r'::"char" END, c.relowner))) a
         WHERE c.relnamespace OPERATOR(pg_catalog.=) nsp AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
           AND a.grantee OPERATOR(pg_catalog.<>) c.relowner
        UNION
        SELECT 'FUNCTION', pg_catalog.format('api_keys.%I(%s)', p.proname,
                                             pg_catalog.pg_get_function_identity_arguments(p.oid)), a.grantee
          FROM pg_catalog.pg_proc p,
               pg_catalog.aclexplode(coalesce(p.proacl, pg_catalog.acldefault('f', p.proowner))) a
         WHERE p.pronamespace OPERATOR(pg_catalog.=) nsp AND a.grantee OPERATOR(pg_catalog.<>) p.proowner
        UNION
        SELECT 'TYPE', pg_catalog.format('api_keys.%I', t.typname), a.grantee
          FROM pg_catalog.pg_type t,
               pg_catalog.aclexplode(coalesce(t.typacl, pg_catalog.acldefault('T', t.typowner))) a
         WHERE t.typnamespace OPERATOR(pg_catalog.=) nsp AND t.typcategory OPERATOR(pg_catalog.<>) 'A'
           AND (t.typrelid OPERATOR(pg_catalog.=) 0
                OR EXISTS (SELECT 1 FROM pg_catalog.pg_class c
                            WHERE c.oid OPERATOR(pg_catalog.=) t.typrelid AND c.relkind OPERATOR(pg_catalog.=) 'c'))
           AND a.grantee OPERATOR(pg_catalog.<>) t.typowner
    LOOP
        EXECUTE pg_catalog.format('REVOKE ALL ON %s %s FROM %s', r.kind, r.obj,
            CASE WHEN r.grantee OPERATOR(pg_catalog.=) 0 THEN 'PUBLIC'
                 ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(r.grantee)) END);
    END LOOP;

    GRANT USAGE ON SCHEMA api_keys TO api_keys_verifier, api_keys_admin;
    GRANT USAGE ON TYPE api_keys.issued_key, api_keys.verification, api_keys.key_info
       TO api_keys_verifier, api_keys_admin;
    GRANT SELECT ON api_keys.audit_log TO api_keys_admin;
    -- verifiers: verify, authenticate and the identity helpers; admins
    -- (members of verifier): every other public function. Internal helpers
    -- (`_…`) are executable by no one but the owner.
    FOR r IN
        SELECT pg_catalog.format('api_keys.%I(%s)', p.proname,
                                 pg_catalog.pg_get_function_identity_arguments(p.oid)) AS fn,
               CASE WHEN p.proname OPERATOR(pg_catalog.=) ANY (verifier_functions)
                    THEN 'api_keys_verifier' ELSE 'api_keys_admin' END AS grantee
          FROM pg_catalog.pg_proc p
         WHERE p.pronamespace OPERATOR(pg_catalog.=) nsp
           AND pg_catalog.left(p.proname, 1) OPERATOR(pg_catalog.<>) '_'
    LOOP
        EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION %s TO %s', r.fn, r.grantee);
    END LOOP;
END
$$;

-- Every ACL set explicitly, as a fresh install does (0.1.0 left types
-- usable by PUBLIC and honoured default privileges).
SELECT api_keys._acl_apply();

COMMENT ON FUNCTION api_keys._text_check(text, text[]) IS 'Internal: invalid_argument for text that is not UTF-8 in this database.';
COMMENT ON FUNCTION api_keys._acl_apply() IS 'Internal: sets every ACL of the extension''s objects (install and updates).';
COMMENT ON FUNCTION api_keys._scope_definition(text, text) IS 'Internal: checks a scope definition; the name to store.';
COMMENT ON FUNCTION api_keys._scopes_effective(text[], text[]) IS 'Internal: a key''s scopes within its type''s current ceiling.';
