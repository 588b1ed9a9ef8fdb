-- api_keys: functions written in SQL, the C functions of the hot path, and
-- every ACL. Runs last (pgrx "finalize"). Rules (token format, scopes,
-- expiry, bounds, limits) are decided by the Rust helpers `_…` bound from
-- api-keys-core; this file only orchestrates storage: locks, lookups,
-- inserts, audit.
--
-- Every function is SECURITY DEFINER with a fixed search_path, declared in
-- its CREATE OR REPLACE FUNCTION (pgrx's `security_definer` + `#[search_path]` for the
-- Rust ones), but for the six hot-path C functions of SPEC §2's exception
-- (api_key_verify, has_scope, current_*: see below). Operators whose argument types have no exact pg_catalog match
-- are avoided or written OPERATOR(pg_catalog.…), so nothing in the body can
-- be shadowed even by an object in the api_keys schema itself. Functions are
-- written CREATE OR REPLACE so that sql/api_keys--*--*.sql can carry them
-- over verbatim.

-- Lock rows that serialise issuers of one owner, so that limits hold under
-- concurrency at every isolation level (a stale snapshot under REPEATABLE READ
-- gets a serialization failure instead of exceeding a limit).
CREATE TABLE api_keys.owner_locks (
    owner_type text NOT NULL,
    owner_id   text NOT NULL,
    touched_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (owner_type, owner_id)
);

-- Key status and revocability are core's rules (_key_status, _revocable);
-- these views apply them once for every SQL function. Views, so the planner
-- inlines them into each query.
CREATE OR REPLACE VIEW api_keys.key_statuses AS
SELECT k.*, api_keys._key_status(k.revoked_at, k.expires_at, now()) AS status
  FROM api_keys.keys k;

-- key_info rows. scopes are the key's effective scopes: stored ∩ its type's
-- current ceiling (core's rule, as verify applies it).
CREATE OR REPLACE VIEW api_keys.key_infos AS
SELECT k.id, k.owner_type, k.owner_id, k.name, k.key_type, k.environment,
       api_keys._mask_parts(k.display_prefix, k.last4) AS masked_token,
       CASE WHEN t.public THEN k.viewable_token END AS viewable_token,
       api_keys._scopes_effective(k.scopes, t.permissions) AS scopes, k.metadata, k.status,
       api_keys._revocable(t.revocable) AS revocable,
       k.created_at, k.expires_at, k.revoked_at, k.last_used_at, k.requests_count,
       k.mfa, k.replaced_by, k.imported
  FROM api_keys.key_statuses k
  LEFT JOIN api_keys.key_types t ON t.name = k.key_type;

-- The invoker's role: inside a SECURITY DEFINER function current_user is the
-- owner, but the `role` setting still names what the caller SET ROLE to.
-- The helpers below are PL/pgSQL, not SQL: a SQL function that cannot be
-- inlined (SECURITY DEFINER, SET) is parsed and planned again on every call,
-- which cost an issue about a third of its time (BENCHMARKS.md); PL/pgSQL
-- keeps its plans for the session.
CREATE OR REPLACE FUNCTION api_keys._invoker() RETURNS text
LANGUAGE plpgsql STABLE
SECURITY DEFINER SET search_path = pg_catalog, api_keys, pg_temp AS $$
BEGIN
    RETURN CASE WHEN current_setting('role') = 'none' THEN session_user::text
                ELSE current_setting('role') END;
END
$$;

CREATE OR REPLACE FUNCTION api_keys._audit(action text, key_id uuid, owner_type text, owner_id text, details jsonb DEFAULT '{}')
RETURNS void LANGUAGE plpgsql VOLATILE
SECURITY DEFINER SET search_path = pg_catalog, api_keys, pg_temp AS $$
BEGIN
    INSERT INTO api_keys.audit_log (action, key_id, owner_type, owner_id, current_user_name, details)
    VALUES (_audit.action, _audit.key_id, _audit.owner_type, _audit.owner_id, api_keys._invoker(),
            coalesce(_audit.details, '{}'));
END
$$;

CREATE OR REPLACE FUNCTION api_keys._scope_registry(OUT names text[], OUT exclusive boolean[])
LANGUAGE plpgsql STABLE
SECURITY DEFINER SET search_path = pg_catalog, api_keys, pg_temp AS $$
BEGIN
    SELECT coalesce(array_agg(s.name ORDER BY s.position), '{}'),
           coalesce(array_agg(s.exclusive ORDER BY s.position), '{}')
      INTO _scope_registry.names, _scope_registry.exclusive
      FROM api_keys.scopes s;
END
$$;

CREATE OR REPLACE FUNCTION api_keys._lock_owner(owner_type text, owner_id text) RETURNS void
LANGUAGE plpgsql VOLATILE
SECURITY DEFINER SET search_path = pg_catalog, api_keys, pg_temp AS $$
BEGIN
    INSERT INTO api_keys.owner_locks AS l (owner_type, owner_id)
    VALUES (_lock_owner.owner_type, _lock_owner.owner_id)
    ON CONFLICT ON CONSTRAINT owner_locks_pkey DO UPDATE SET touched_at = now();
END
$$;

-- Whether the owner may get one more key of this type in this environment;
-- raises (or returns false) when a limit is reached. Takes the owner lock
-- first when a limit applies, so the count stays true until commit.
CREATE OR REPLACE FUNCTION api_keys._within_limits(owner_type text, owner_id text, t api_keys.key_types,
                                        environment text, raise_error boolean)
RETURNS boolean LANGUAGE plpgsql VOLATILE
SECURITY DEFINER SET search_path = pg_catalog, api_keys, pg_temp AS $$
DECLARE
    max_keys integer;
    total bigint;
    in_bucket bigint;
BEGIN
    SELECT p.max_keys INTO max_keys FROM api_keys.owner_policies p WHERE p.owner_type = _within_limits.owner_type;
    IF max_keys IS NULL AND t.per_owner_limit IS NULL THEN
        RETURN true;
    END IF;
    PERFORM api_keys._lock_owner(owner_type, owner_id);
    SELECT count(*),
           count(*) FILTER (WHERE k.key_type = t.name AND k.environment IS NOT DISTINCT FROM _within_limits.environment)
      INTO total, in_bucket
      FROM api_keys.key_statuses k
     WHERE k.owner_type = _within_limits.owner_type AND k.owner_id = _within_limits.owner_id
       AND k.status = 'active';
    RETURN api_keys._check_limits(owner_type, owner_id, total, max_keys, t.name, environment,
                                  in_bucket, t.per_owner_limit, raise_error);
END
$$;

-- Gathers the facts (policy, key type, environment, registry, now), lets
-- core decide (_issue_plan), then locks, counts, inserts and audits.
CREATE OR REPLACE FUNCTION api_keys.api_key_issue(
    owner_type text,
    owner_id text,
    name text DEFAULT NULL,
    scopes text[] DEFAULT NULL,
    key_type text DEFAULT NULL,
    environment text DEFAULT NULL,
    expires_at timestamptz DEFAULT NULL,
    expires_in text DEFAULT NULL,
    metadata jsonb DEFAULT '{}',
    mfa boolean DEFAULT false)
RETURNS api_keys.issued_key LANGUAGE plpgsql VOLATILE
SECURITY DEFINER SET search_path = pg_catalog, api_keys, pg_temp AS $$
DECLARE
    meta jsonb := coalesce(metadata, '{}');
    wanted text;
    policy api_keys.owner_policies;
    t api_keys.key_types;
    e api_keys.environments;
    reg record;
    plan record;
    tok record;
    new_id uuid;
    now_ts timestamptz := now();
BEGIN
    PERFORM api_keys._text_check('owner_type, owner_id, name, scopes, key_type, environment or expires_in',
        owner_type, owner_id, name, array_to_string(scopes, ' '), key_type, environment, expires_in);
    wanted := coalesce(nullif(environment, ''), api_keys._current_environment());
    SELECT * INTO policy FROM api_keys.owner_policies p WHERE p.owner_type = api_key_issue.owner_type;
    SELECT * INTO t FROM api_keys.key_types kt WHERE kt.name = api_key_issue.key_type;
    SELECT * INTO e FROM api_keys.environments en WHERE en.name = wanted;
    SELECT * INTO reg FROM api_keys._scope_registry();
    SELECT * INTO plan FROM api_keys._issue_plan(
        owner_type, owner_id, name, scopes,
        key_type, t.name IS NOT NULL, t.permissions, t.revocable, t.public,
        wanted, e.name IS NOT NULL, EXISTS (SELECT 1 FROM api_keys.environments),
        expires_at, expires_in, jsonb_typeof(meta), octet_length(meta::text),
        policy.require_name, policy.default_scopes, reg.names, reg.exclusive, now_ts);
    PERFORM api_keys._mfa_flag_check(api_key_issue.mfa, api_keys._mfa_enabled(owner_type, owner_id),
                                     format('%s/%s', owner_type, owner_id));

    PERFORM api_keys._within_limits(owner_type, owner_id, t, e.name, true);

    SELECT * INTO tok FROM api_keys._token_new(coalesce(t.prefix, api_keys._token_prefix()), e.prefix_segment);
    new_id := api_keys._key_id_new();
    INSERT INTO api_keys.keys (id, owner_type, owner_id, name, key_type, environment, token_hash,
                               display_prefix, last4, scopes, metadata, viewable_token,
                               created_at, expires_at, mfa)
    VALUES (new_id, owner_type, owner_id, plan.name, t.name, e.name, tok.token_hash,
            tok.display_prefix, tok.last4, plan.scopes, meta,
            CASE WHEN plan.keep_plaintext THEN tok.token END,
            now_ts, plan.expires_at, coalesce(api_key_issue.mfa, false));
    PERFORM api_keys._audit('issue', new_id, owner_type, owner_id,
        jsonb_build_object('name', plan.name, 'key_type', t.name, 'environment', e.name,
                           'scopes', to_jsonb(plan.scopes), 'expires_at', plan.expires_at,
                           'mfa', coalesce(api_key_issue.mfa, false)));
    RETURN ROW(new_id, tok.token, tok.masked_token, owner_type, owner_id, plan.name, t.name, e.name,
               plan.scopes, plan.expires_at, now_ts)::api_keys.issued_key;
END
$$;

CREATE OR REPLACE FUNCTION api_keys.api_key_get(key_id uuid) RETURNS api_keys.key_info
LANGUAGE plpgsql STABLE
SECURITY DEFINER SET search_path = pg_catalog, api_keys, pg_temp AS $$
DECLARE
    info api_keys.key_info;
BEGIN
    SELECT i.* INTO info FROM api_keys.key_infos i WHERE i.id = key_id;
    IF NOT FOUND THEN
        PERFORM api_keys._raise('key_not_found', format('no key with id %s', coalesce(key_id::text, 'NULL')));
    END IF;
    RETURN info;
END
$$;

-- Newest first; keyset pagination: `before_id` names the last key of the
-- previous page (of this owner), `limit` the page size (NULL = all).
CREATE OR REPLACE FUNCTION api_keys.api_key_list(owner_type text, owner_id text, status text DEFAULT NULL, key_type text DEFAULT NULL,
                                      "limit" integer DEFAULT NULL, before_id uuid DEFAULT NULL)
RETURNS SETOF api_keys.key_info LANGUAGE plpgsql STABLE
SECURITY DEFINER SET search_path = pg_catalog, api_keys, pg_temp AS $$
DECLARE
    statuses text[];
    after_created timestamptz;
    after_id uuid;
BEGIN
    PERFORM api_keys._text_check('owner_type, owner_id, status or key_type', owner_type, owner_id, status, key_type);
    PERFORM api_keys._check_owner(owner_type, owner_id);
    statuses := api_keys._list_filter(status, "limit");
    PERFORM api_keys._check_targets(key_type,
        EXISTS (SELECT 1 FROM api_keys.key_types kt WHERE kt.name = api_key_list.key_type), NULL, false, false);
    IF before_id IS NOT NULL THEN
        SELECT k.created_at, k.id INTO after_created, after_id FROM api_keys.keys k
         WHERE k.id = api_key_list.before_id
           AND k.owner_type = api_key_list.owner_type AND k.owner_id = api_key_list.owner_id;
        IF NOT FOUND THEN
            PERFORM api_keys._raise('key_not_found', format('no key with id %s among the keys of this owner', before_id));
        END IF;
    END IF;
    RETURN QUERY
        SELECT i.* FROM api_keys.key_infos i
         WHERE i.owner_type = api_key_list.owner_type AND i.owner_id = api_key_list.owner_id
           AND (api_key_list.key_type IS NULL OR i.key_type = api_key_list.key_type)
           AND i.status = ANY (statuses)
           AND (after_id IS NULL OR (i.created_at, i.id) < (after_created, after_id))
         ORDER BY i.created_at DESC, i.id DESC
         LIMIT api_key_list."limit";
END
$$;

-- The key to change, locked for the rest of the transaction.
CREATE OR REPLACE FUNCTION api_keys._lock_key(key_id uuid) RETURNS api_keys.keys
LANGUAGE plpgsql VOLATILE
SECURITY DEFINER SET search_path = pg_catalog, api_keys, pg_temp AS $$
DECLARE
    k api_keys.keys;
BEGIN
    IF key_id IS NULL THEN
        PERFORM api_keys._raise('invalid_argument', 'key_id must not be NULL');
    END IF;
    SELECT * INTO k FROM api_keys.keys kk WHERE kk.id = key_id FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM api_keys._raise('key_not_found', format('no key with id %s', key_id));
    END IF;
    RETURN k;
END
$$;

CREATE OR REPLACE FUNCTION api_keys.api_key_revoke(key_id uuid) RETURNS boolean
LANGUAGE plpgsql VOLATILE
SECURITY DEFINER SET search_path = pg_catalog, api_keys, pg_temp AS $$
DECLARE
    k api_keys.keys;
    info record;
BEGIN
    k := api_keys._lock_key(key_id);
    SELECT i.revocable, i.status INTO info FROM api_keys.key_infos i WHERE i.id = key_id;
    IF NOT info.revocable THEN
        PERFORM api_keys._raise('key_not_revocable', format('key %s is of the non-revocable type %s', key_id, k.key_type));
    END IF;
    IF info.status <> 'active' THEN
        RETURN false;
    END IF;
    UPDATE api_keys.keys SET revoked_at = now() WHERE id = key_id;
    PERFORM api_keys._audit('revoke', key_id, k.owner_type, k.owner_id);
    RETURN true;
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
           AND k.id IN (SELECT i.id FROM api_keys.key_infos i
                         WHERE i.owner_type = api_key_revoke_all.owner_type
                           AND i.owner_id = api_key_revoke_all.owner_id
                           AND i.status = 'active' AND i.revocable)
        RETURNING k.id)
    SELECT coalesce(array_agg(id), '{}') INTO ids FROM revoked;
    -- Reset also ends the owner's dashboard sessions and unused links (SPEC §9).
    DELETE FROM api_keys.dashboard_sessions d
     WHERE d.owner_type = api_key_revoke_all.owner_type AND d.owner_id = api_key_revoke_all.owner_id;
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
    DELETE FROM api_keys.mfa_enrollments m
     WHERE m.owner_type = api_key_purge_owner.owner_type AND m.owner_id = api_key_purge_owner.owner_id;
    DELETE FROM api_keys.dashboard_sessions d
     WHERE d.owner_type = api_key_purge_owner.owner_type AND d.owner_id = api_key_purge_owner.owner_id;
    PERFORM api_keys._audit('purge_owner', NULL, owner_type, owner_id, jsonb_build_object('deleted', n));
    RETURN n;
END
$$;

-- Locks the key, gathers the facts, lets core decide (_update_plan), writes.
CREATE OR REPLACE FUNCTION api_keys.api_key_update(key_id uuid, name text DEFAULT NULL, scopes text[] DEFAULT NULL, metadata jsonb DEFAULT NULL,
                                                    mfa boolean DEFAULT NULL)
RETURNS api_keys.key_info LANGUAGE plpgsql VOLATILE
SECURITY DEFINER SET search_path = pg_catalog, api_keys, pg_temp AS $$
DECLARE
    k api_keys.keys;
    ceiling text[];
    require_name boolean;
    reg record;
    plan record;
BEGIN
    PERFORM api_keys._text_check('name or scopes', name, array_to_string(scopes, ' '));
    k := api_keys._lock_key(key_id);
    SELECT t.permissions INTO ceiling FROM api_keys.key_types t WHERE t.name = k.key_type;
    SELECT p.require_name INTO require_name FROM api_keys.owner_policies p WHERE p.owner_type = k.owner_type;
    SELECT * INTO reg FROM api_keys._scope_registry();
    SELECT * INTO plan FROM api_keys._update_plan(name, scopes, jsonb_typeof(metadata), octet_length(metadata::text),
        k.owner_type, k.name, k.scopes, require_name, ceiling, reg.names, reg.exclusive);
    PERFORM api_keys._mfa_flag_check(api_key_update.mfa, api_keys._mfa_enabled(k.owner_type, k.owner_id),
                                     format('%s/%s', k.owner_type, k.owner_id));
    UPDATE api_keys.keys kk
       SET name = plan.name, scopes = plan.scopes, metadata = coalesce(api_key_update.metadata, kk.metadata),
           mfa = coalesce(api_key_update.mfa, kk.mfa)
     WHERE kk.id = key_id;
    PERFORM api_keys._audit('update', key_id, k.owner_type, k.owner_id,
        jsonb_build_object('changed', to_jsonb(plan.changed), 'name', plan.name, 'scopes', to_jsonb(plan.scopes),
                           'mfa', coalesce(api_key_update.mfa, k.mfa)));
    RETURN api_keys.api_key_get(key_id);
END
$$;

-- Locks the key, lets core decide (_rotate_plan), issues the replacement
-- (exempt from limits: once the grace ends the owner has as many active
-- keys as before) and retires the old key. A concurrent rotation of the
-- same key waits for the lock, then finds replaced_by set: invalid_argument.
CREATE OR REPLACE FUNCTION api_keys.api_key_rotate(key_id uuid, grace interval DEFAULT '0 seconds', expires_in text DEFAULT NULL)
RETURNS api_keys.issued_key LANGUAGE plpgsql VOLATILE
SECURITY DEFINER SET search_path = pg_catalog, api_keys, pg_temp AS $$
DECLARE
    k api_keys.keys;
    t api_keys.key_types;
    segment text;
    plan record;
    tok record;
    new_id uuid;
    now_ts timestamptz := now();
BEGIN
    PERFORM api_keys._text_check('expires_in', expires_in);
    k := api_keys._lock_key(key_id);
    SELECT * INTO t FROM api_keys.key_types kt WHERE kt.name = k.key_type;
    SELECT * INTO plan FROM api_keys._rotate_plan(k.id, api_keys._revocable(t.revocable), k.revoked_at IS NOT NULL,
        k.created_at, k.expires_at, k.replaced_by, k.display_prefix, k.imported, grace, expires_in, now_ts);
    SELECT e.prefix_segment INTO segment FROM api_keys.environments e WHERE e.name = k.environment;
    SELECT * INTO tok FROM api_keys._token_new(coalesce(t.prefix, plan.untyped_head, api_keys._token_prefix()), segment);
    new_id := api_keys._key_id_new();
    INSERT INTO api_keys.keys (id, owner_type, owner_id, name, key_type, environment, token_hash,
                               display_prefix, last4, scopes, metadata, created_at, expires_at, mfa)
    VALUES (new_id, k.owner_type, k.owner_id, k.name, k.key_type, k.environment, tok.token_hash,
            tok.display_prefix, tok.last4, k.scopes, k.metadata, now_ts, plan.new_expires_at, k.mfa);
    UPDATE api_keys.keys kk
       SET replaced_by = new_id,
           revoked_at = CASE WHEN plan.revoke_old THEN now_ts ELSE kk.revoked_at END,
           expires_at = plan.old_expires_at
     WHERE kk.id = k.id;
    PERFORM api_keys._audit('rotate', k.id, k.owner_type, k.owner_id,
        jsonb_build_object('replaced_by', new_id, 'revoked', plan.revoke_old, 'expires_at', plan.old_expires_at));
    PERFORM api_keys._audit('issue', new_id, k.owner_type, k.owner_id,
        jsonb_build_object('name', k.name, 'key_type', k.key_type, 'environment', k.environment,
                           'scopes', to_jsonb(k.scopes), 'expires_at', plan.new_expires_at,
                           'rotated_from', k.id));
    RETURN ROW(new_id, tok.token, tok.masked_token, k.owner_type, k.owner_id, k.name, k.key_type, k.environment,
               api_keys._scopes_effective(k.scopes, t.permissions), plan.new_expires_at, now_ts)::api_keys.issued_key;
END
$$;

-- Every change to the legacy prefixes makes every backend reread them
-- (verify caches them: extension/src/legacy.rs).
CREATE OR REPLACE FUNCTION api_keys._legacy_prefixes_trigger() RETURNS trigger
LANGUAGE plpgsql VOLATILE
SECURITY DEFINER SET search_path = pg_catalog, api_keys, pg_temp AS $$
BEGIN
    PERFORM api_keys._legacy_prefixes_changed();
    RETURN NULL;
END
$$;

CREATE TRIGGER legacy_prefixes_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON api_keys.legacy_prefixes
    FOR EACH STATEMENT EXECUTE FUNCTION api_keys._legacy_prefixes_trigger();

CREATE OR REPLACE FUNCTION api_keys.api_key_legacy_prefix_define(prefix text)
RETURNS void LANGUAGE plpgsql VOLATILE
SECURITY DEFINER SET search_path = pg_catalog, api_keys, pg_temp AS $$
DECLARE
    p text;
BEGIN
    PERFORM api_keys._text_check('prefix', prefix);
    p := api_keys._legacy_prefix_check(prefix);
    INSERT INTO api_keys.legacy_prefixes AS l (prefix) VALUES (p)
    ON CONFLICT ON CONSTRAINT legacy_prefixes_pkey DO NOTHING;
    PERFORM api_keys._audit('legacy_prefix_define', NULL, NULL, NULL, jsonb_build_object('prefix', p));
END
$$;

-- A key whose plaintext is unknown, from its SHA-256 (the gem's
-- token_digest, RubyGems' hashed_key): issue's rules for owner, name, type,
-- environment and scopes (core's _import_plan), no limits, times as given.
-- A digest that is already stored is invalid_argument (ON CONFLICT, so no
-- subtransaction per row in a bulk INSERT … SELECT).
CREATE OR REPLACE FUNCTION api_keys.api_key_import(
    owner_type text,
    owner_id text,
    token_sha256 bytea,
    display_prefix text,
    last4 text,
    name text DEFAULT NULL,
    scopes text[] DEFAULT NULL,
    key_type text DEFAULT NULL,
    environment text DEFAULT NULL,
    expires_at timestamptz DEFAULT NULL,
    created_at timestamptz DEFAULT NULL,
    revoked_at timestamptz DEFAULT NULL,
    last_used_at timestamptz DEFAULT NULL,
    requests_count bigint DEFAULT 0,
    metadata jsonb DEFAULT '{}')
RETURNS api_keys.key_info LANGUAGE plpgsql VOLATILE
SECURITY DEFINER SET search_path = pg_catalog, api_keys, pg_temp AS $$
DECLARE
    meta jsonb := coalesce(metadata, '{}');
    wanted text;
    policy api_keys.owner_policies;
    t api_keys.key_types;
    e api_keys.environments;
    reg record;
    plan record;
    new_id uuid := api_keys._key_id_new();
BEGIN
    PERFORM api_keys._text_check('owner_type, owner_id, display_prefix, last4, name, scopes, key_type or environment',
        owner_type, owner_id, display_prefix, last4, name, array_to_string(scopes, ' '), key_type, environment);
    wanted := coalesce(nullif(environment, ''), api_keys._current_environment());
    SELECT * INTO policy FROM api_keys.owner_policies p WHERE p.owner_type = api_key_import.owner_type;
    SELECT * INTO t FROM api_keys.key_types kt WHERE kt.name = api_key_import.key_type;
    SELECT * INTO e FROM api_keys.environments en WHERE en.name = wanted;
    SELECT * INTO reg FROM api_keys._scope_registry();
    SELECT * INTO plan FROM api_keys._import_plan(
        owner_type, owner_id, octet_length(token_sha256), display_prefix, last4, name, scopes,
        key_type, t.name IS NOT NULL, t.permissions, t.revocable, t.public,
        wanted, e.name IS NOT NULL, EXISTS (SELECT 1 FROM api_keys.environments),
        expires_at, created_at, revoked_at, requests_count, jsonb_typeof(meta), octet_length(meta::text),
        policy.require_name, policy.default_scopes, reg.names, reg.exclusive, now());
    INSERT INTO api_keys.keys (id, owner_type, owner_id, name, key_type, environment, token_hash,
                               display_prefix, last4, scopes, metadata, created_at, expires_at,
                               revoked_at, last_used_at, requests_count, imported)
    VALUES (new_id, owner_type, owner_id, plan.name, t.name, e.name, token_sha256,
            plan.display_prefix, last4, plan.scopes, meta, plan.created_at, expires_at,
            revoked_at, last_used_at, coalesce(requests_count, 0), true)
    ON CONFLICT (token_hash) DO NOTHING;
    IF NOT FOUND THEN
        PERFORM api_keys._raise('invalid_argument', 'a key with this token_sha256 is already stored');
    END IF;
    PERFORM api_keys._audit('import', new_id, owner_type, owner_id,
        jsonb_build_object('name', plan.name, 'key_type', t.name, 'environment', e.name,
                           'scopes', to_jsonb(plan.scopes), 'expires_at', expires_at,
                           'revoked_at', revoked_at));
    RETURN api_keys.api_key_get(new_id);
END
$$;

-- Per-key MFA (SPEC §5): TOTP enrollment per owner. Core decides (the
-- Rust helpers _mfa_*); these functions keep the row, the lock and the
-- audit trail. The secret is in no audit row and no error message.
-- PL/pgSQL, not SQL: a SECURITY DEFINER SQL function with SET is never
-- inlined and is planned afresh on every call (114 µs of every issue);
-- PL/pgSQL keeps its plan for the session.
CREATE OR REPLACE FUNCTION api_keys._mfa_enabled(owner_type text, owner_id text) RETURNS boolean
LANGUAGE plpgsql STABLE
SECURITY DEFINER SET search_path = pg_catalog, api_keys, pg_temp AS $$
BEGIN
    RETURN EXISTS (SELECT 1 FROM api_keys.mfa_enrollments m
                    WHERE m.owner_type = _mfa_enabled.owner_type
                      AND m.owner_id = _mfa_enabled.owner_id AND m.enabled);
END
$$;

CREATE OR REPLACE FUNCTION api_keys.api_key_mfa_enroll(owner_type text, owner_id text, issuer text DEFAULT 'api_keys',
                                                       account text DEFAULT NULL)
RETURNS TABLE(secret text, otpauth_uri text) LANGUAGE plpgsql VOLATILE
SECURITY DEFINER SET search_path = pg_catalog, api_keys, pg_temp AS $$
DECLARE
    fresh bytea;
    shown record;
BEGIN
    PERFORM api_keys._text_check('owner_type, owner_id, issuer or account', owner_type, owner_id, issuer, account);
    PERFORM api_keys._check_owner(owner_type, owner_id);
    PERFORM api_keys._lock_owner(owner_type, owner_id);
    IF api_keys._mfa_enabled(owner_type, owner_id) THEN
        PERFORM api_keys._raise('invalid_argument',
            format('MFA is already enabled for owner %s/%s; disable it before enrolling again', owner_type, owner_id));
    END IF;
    fresh := api_keys._mfa_secret_new();
    SELECT * INTO shown FROM api_keys._mfa_enrollment(fresh, issuer,
        coalesce(account, format('%s/%s', owner_type, owner_id)));
    INSERT INTO api_keys.mfa_enrollments AS m (owner_type, owner_id, secret)
    VALUES (api_key_mfa_enroll.owner_type, api_key_mfa_enroll.owner_id, fresh)
    ON CONFLICT ON CONSTRAINT mfa_enrollments_pkey DO UPDATE
       SET secret = EXCLUDED.secret, created_at = now();
    PERFORM api_keys._audit('mfa_enroll', NULL, owner_type, owner_id);
    RETURN QUERY SELECT shown.secret, shown.otpauth_uri;
END
$$;

CREATE OR REPLACE FUNCTION api_keys.api_key_mfa_confirm(owner_type text, owner_id text, otp text) RETURNS boolean
LANGUAGE plpgsql VOLATILE
SECURITY DEFINER SET search_path = pg_catalog, api_keys, pg_temp AS $$
DECLARE
    pending api_keys.mfa_enrollments;
BEGIN
    PERFORM api_keys._text_check('owner_type, owner_id or otp', owner_type, owner_id, otp);
    PERFORM api_keys._check_owner(owner_type, owner_id);
    SELECT * INTO pending FROM api_keys.mfa_enrollments m
     WHERE m.owner_type = api_key_mfa_confirm.owner_type AND m.owner_id = api_key_mfa_confirm.owner_id
       FOR UPDATE;
    IF NOT FOUND OR pending.enabled THEN
        PERFORM api_keys._raise('invalid_argument',
            format('owner %s/%s has no pending MFA enrollment (api_key_mfa_enroll first)', owner_type, owner_id));
    END IF;
    IF NOT api_keys._mfa_accept(owner_type, owner_id, pending.secret, otp) THEN
        RETURN false;
    END IF;
    UPDATE api_keys.mfa_enrollments m SET enabled = true, enabled_at = now()
     WHERE m.owner_type = api_key_mfa_confirm.owner_type AND m.owner_id = api_key_mfa_confirm.owner_id;
    PERFORM api_keys._audit('mfa_enable', NULL, owner_type, owner_id);
    RETURN true;
END
$$;

-- Disabling keeps the keys' mfa flag: verify of such a key for a sensitive
-- scope answers otp_invalid (no code can be right) until the owner enrolls
-- again; fail closed rather than silently dropping the second factor.
CREATE OR REPLACE FUNCTION api_keys.api_key_mfa_disable(owner_type text, owner_id text) RETURNS boolean
LANGUAGE plpgsql VOLATILE
SECURITY DEFINER SET search_path = pg_catalog, api_keys, pg_temp AS $$
DECLARE
    n integer;
BEGIN
    PERFORM api_keys._text_check('owner_type or owner_id', owner_type, owner_id);
    PERFORM api_keys._check_owner(owner_type, owner_id);
    DELETE FROM api_keys.mfa_enrollments m
     WHERE m.owner_type = api_key_mfa_disable.owner_type AND m.owner_id = api_key_mfa_disable.owner_id;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n > 0 THEN
        PERFORM api_keys._audit('mfa_disable', NULL, owner_type, owner_id);
    END IF;
    RETURN n > 0;
END
$$;

CREATE OR REPLACE FUNCTION api_keys.api_key_mfa_status(owner_type text, owner_id text) RETURNS text
LANGUAGE plpgsql STABLE
SECURITY DEFINER SET search_path = pg_catalog, api_keys, pg_temp AS $$
DECLARE
    found_enabled boolean;
BEGIN
    PERFORM api_keys._text_check('owner_type or owner_id', owner_type, owner_id);
    PERFORM api_keys._check_owner(owner_type, owner_id);
    SELECT m.enabled INTO found_enabled FROM api_keys.mfa_enrollments m
     WHERE m.owner_type = api_key_mfa_status.owner_type AND m.owner_id = api_key_mfa_status.owner_id;
    RETURN CASE WHEN NOT FOUND THEN 'none' WHEN found_enabled THEN 'enabled' ELSE 'pending' END;
END
$$;

CREATE OR REPLACE FUNCTION api_keys.api_key_can_issue(owner_type text, owner_id text, key_type text DEFAULT NULL, environment text DEFAULT NULL)
RETURNS boolean LANGUAGE plpgsql VOLATILE
SECURITY DEFINER SET search_path = pg_catalog, api_keys, pg_temp AS $$
DECLARE
    t api_keys.key_types;
    e api_keys.environments;
    wanted text;
BEGIN
    PERFORM api_keys._text_check('owner_type, owner_id, key_type or environment', owner_type, owner_id, key_type, environment);
    PERFORM api_keys._check_owner(owner_type, owner_id);
    wanted := coalesce(nullif(environment, ''), api_keys._current_environment());
    SELECT * INTO t FROM api_keys.key_types kt WHERE kt.name = api_key_can_issue.key_type;
    SELECT * INTO e FROM api_keys.environments en WHERE en.name = wanted;
    PERFORM api_keys._check_targets(key_type, t.name IS NOT NULL,
        wanted, e.name IS NOT NULL, EXISTS (SELECT 1 FROM api_keys.environments));
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
    SELECT * INTO t FROM api_keys.key_types kt WHERE kt.name = api_key_available_scopes.key_type;
    PERFORM api_keys._check_targets(key_type, t.name IS NOT NULL, NULL, false, false);
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
    SELECT t.name INTO other FROM api_keys.key_types t
     WHERE t.prefix = api_key_type_define.prefix AND t.name <> api_key_type_define.name;
    SELECT * INTO reg FROM api_keys._scope_registry();
    ceiling := api_keys._key_type_check(name, prefix, permissions, revocable, public, per_owner_limit, other, reg.names);
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
    SELECT e.name INTO other FROM api_keys.environments e
     WHERE e.prefix_segment = api_key_environment_define.prefix_segment AND e.name <> api_key_environment_define.name;
    PERFORM api_keys._environment_check(name, prefix_segment, other);
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

CREATE OR REPLACE FUNCTION api_keys.api_key_scope_define(name text, description text DEFAULT NULL, exclusive boolean DEFAULT false,
                                                          mfa boolean DEFAULT false)
RETURNS void LANGUAGE plpgsql VOLATILE
SECURITY DEFINER SET search_path = pg_catalog, api_keys, pg_temp AS $$
DECLARE
    scope text;
BEGIN
    PERFORM api_keys._text_check('name or description', name, description);
    scope := api_keys._scope_check(name, description, exclusive);
    INSERT INTO api_keys.scopes AS s (name, description, exclusive, mfa)
    VALUES (scope, description, exclusive, coalesce(api_key_scope_define.mfa, false))
    ON CONFLICT ON CONSTRAINT scopes_pkey DO UPDATE
       SET description = EXCLUDED.description, exclusive = EXCLUDED.exclusive, mfa = EXCLUDED.mfa;
    PERFORM api_keys._audit('scope_define', NULL, NULL, NULL,
        jsonb_build_object('name', scope, 'exclusive', exclusive, 'mfa', coalesce(api_key_scope_define.mfa, false)));
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
    SELECT * INTO reg FROM api_keys._scope_registry();
    defaults := api_keys._owner_policy_check(owner_type, max_keys, default_scopes, reg.names);
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

-- PostgREST db-pre-request (SPEC §6): core maps the outcome to PT401 or
-- PT403 and the message (_auth_refusal), with the verify code first.
CREATE OR REPLACE FUNCTION api_keys.api_key_authenticate(required_scopes text[] DEFAULT '{}')
RETURNS void LANGUAGE plpgsql VOLATILE
SECURITY DEFINER SET search_path = pg_catalog, api_keys, pg_temp AS $$
DECLARE
    outcome text := api_keys._authenticate(current_setting('request.headers', true), coalesce(required_scopes, '{}'));
    refusal record;
BEGIN
    SELECT * INTO refusal FROM api_keys._auth_refusal(outcome);
    IF NOT FOUND THEN
        RETURN;
    END IF;
    IF refusal.lists_required THEN
        RAISE EXCEPTION USING ERRCODE = refusal.sqlstate, MESSAGE = refusal.message,
            DETAIL = format('required scopes: %s', array_to_string(required_scopes, ', '));
    END IF;
    RAISE EXCEPTION USING ERRCODE = refusal.sqlstate, MESSAGE = refusal.message;
END
$$;

-- C functions written against the raw V1 interface (extension/src/*.rs):
-- the hot path, and the functions that must never raise, which read their
-- text arguments without pgrx's conversion (it panics on text that is not
-- UTF-8, possible in SQL_ASCII and other non-UTF-8 databases).
--
-- SPEC §2's hot-path exception: api_key_verify, has_scope and the
-- current_* helpers (auth.rs) are neither SECURITY DEFINER nor SET
-- search_path, fixed per-call costs (tests/bench/run.sh measures them
-- against a copy declared with both). They resolve no
-- name through search_path (verify reads the key and its type by direct
-- index scans of relations found by name in the api_keys namespace, which
-- check no privilege, and forms its row from the declared result type;
-- the others read backend memory), and the only SQL verify may run, the
-- non-preloaded last_used_at UPDATE, qualifies every name and operator and
-- runs as the table's owner (usage.rs). Tested in hot_path.rs.
CREATE OR REPLACE FUNCTION api_keys.api_key_verify(token text, required_scopes text[] DEFAULT '{}', environment text DEFAULT NULL,
                                                    otp text DEFAULT NULL)
RETURNS api_keys.verification
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'api_key_verify_c';

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
AS 'MODULE_PATHNAME', 'api_keys_has_scope';

CREATE OR REPLACE FUNCTION api_keys._authenticate(headers text, required_scopes text[]) RETURNS text
LANGUAGE c VOLATILE
SECURITY DEFINER SET search_path = pg_catalog, api_keys, pg_temp
AS 'MODULE_PATHNAME', 'api_keys_authenticate';

CREATE OR REPLACE FUNCTION api_keys._text_check(what text, VARIADIC value text[]) RETURNS boolean
LANGUAGE c IMMUTABLE
SECURITY DEFINER SET search_path = pg_catalog, api_keys, pg_temp
AS 'MODULE_PATHNAME', 'api_keys_text_check';

-- Self-serve dashboard sessions (SPEC §9). dashboard_session_create stores a
-- hand-off link (its digest), dashboard_session_exchange turns it once into a
-- cookie session, dashboard_session_owner finds a live session and keeps it
-- alive, dashboard_session_end logs out; api_key_revoke_all and
-- api_key_purge_owner end every session of their owner. Expiry is core's rule
-- (_dashboard_link_expires_at, _dashboard_session_expires_at).
CREATE OR REPLACE FUNCTION api_keys._dashboard_hash_check(what text, hash bytea) RETURNS boolean
LANGUAGE plpgsql STABLE
SECURITY DEFINER SET search_path = pg_catalog, api_keys, pg_temp AS $$
BEGIN
    IF hash IS NULL OR octet_length(hash) <> 32 THEN
        PERFORM api_keys._raise('invalid_argument', format('%s must be a SHA-256 digest (32 bytes)', what));
    END IF;
    RETURN true;
END
$$;

CREATE OR REPLACE FUNCTION api_keys.dashboard_session_create(owner_type text, owner_id text, link_hash bytea,
    ttl_seconds integer DEFAULT NULL, return_url text DEFAULT NULL, return_text text DEFAULT NULL)
RETURNS timestamptz LANGUAGE plpgsql VOLATILE
SECURITY DEFINER SET search_path = pg_catalog, api_keys, pg_temp AS $$
DECLARE
    expires timestamptz;
BEGIN
    PERFORM api_keys._text_check('owner_type, owner_id, return_url or return_text', owner_type, owner_id, return_url, return_text);
    PERFORM api_keys._check_owner(owner_type, owner_id);
    PERFORM api_keys._dashboard_hash_check('link_hash', link_hash);
    expires := api_keys._dashboard_link_expires_at(ttl_seconds, return_url, return_text, now());
    IF EXISTS (SELECT 1 FROM api_keys.dashboard_sessions s WHERE s.link_hash = dashboard_session_create.link_hash) THEN
        PERFORM api_keys._raise('invalid_argument', 'link_hash is already in use');
    END IF;
    -- Housekeeping: links and sessions (of any owner) that can no longer be
    -- used; the table holds at most a day's sign-ins, so a scan is cheap.
    DELETE FROM api_keys.dashboard_sessions s
     WHERE CASE WHEN s.started_at IS NULL THEN s.link_expires_at <= now()
                ELSE api_keys._dashboard_session_expires_at(s.started_at, s.last_seen_at) <= now() END;
    INSERT INTO api_keys.dashboard_sessions (owner_type, owner_id, link_hash, link_expires_at, return_url, return_text)
    VALUES (owner_type, owner_id, link_hash, expires, return_url, return_text);
    PERFORM api_keys._audit('dashboard_session_create', NULL, owner_type, owner_id,
        jsonb_build_object('link_expires_at', expires));
    RETURN expires;
END
$$;

CREATE OR REPLACE FUNCTION api_keys.dashboard_session_exchange(link_hash bytea, session_hash bytea)
RETURNS TABLE(owner_type text, owner_id text, expires_at timestamptz) LANGUAGE plpgsql VOLATILE
SECURITY DEFINER SET search_path = pg_catalog, api_keys, pg_temp AS $$
DECLARE
    s api_keys.dashboard_sessions;
BEGIN
    PERFORM api_keys._dashboard_hash_check('link_hash', dashboard_session_exchange.link_hash);
    PERFORM api_keys._dashboard_hash_check('session_hash', dashboard_session_exchange.session_hash);
    IF EXISTS (SELECT 1 FROM api_keys.dashboard_sessions d WHERE d.session_hash = dashboard_session_exchange.session_hash) THEN
        PERFORM api_keys._raise('invalid_argument', 'session_hash is already in use');
    END IF;
    -- Single use: the row lock makes a concurrent second exchange re-check
    -- started_at and find the link taken.
    UPDATE api_keys.dashboard_sessions d
       SET session_hash = dashboard_session_exchange.session_hash, started_at = now(), last_seen_at = now()
     WHERE d.link_hash = dashboard_session_exchange.link_hash
       AND d.started_at IS NULL AND d.link_expires_at > now()
    RETURNING d.* INTO s;
    IF s.id IS NULL THEN
        RETURN;
    END IF;
    PERFORM api_keys._audit('dashboard_session_start', NULL, s.owner_type, s.owner_id);
    owner_type := s.owner_type;
    owner_id := s.owner_id;
    expires_at := api_keys._dashboard_session_expires_at(s.started_at, s.last_seen_at);
    RETURN NEXT;
END
$$;

CREATE OR REPLACE FUNCTION api_keys.dashboard_session_owner(session_hash bytea)
RETURNS TABLE(owner_type text, owner_id text, return_url text, return_text text, expires_at timestamptz)
LANGUAGE plpgsql VOLATILE
SECURITY DEFINER SET search_path = pg_catalog, api_keys, pg_temp AS $$
BEGIN
    PERFORM api_keys._dashboard_hash_check('session_hash', dashboard_session_owner.session_hash);
    RETURN QUERY
    UPDATE api_keys.dashboard_sessions d SET last_seen_at = now()
     WHERE d.session_hash = dashboard_session_owner.session_hash
       AND api_keys._dashboard_session_expires_at(d.started_at, d.last_seen_at) > now()
    RETURNING d.owner_type, d.owner_id, d.return_url, d.return_text,
              api_keys._dashboard_session_expires_at(d.started_at, d.last_seen_at);
END
$$;

CREATE OR REPLACE FUNCTION api_keys.dashboard_session_end(session_hash bytea) RETURNS boolean
LANGUAGE plpgsql VOLATILE
SECURITY DEFINER SET search_path = pg_catalog, api_keys, pg_temp AS $$
DECLARE
    s api_keys.dashboard_sessions;
BEGIN
    PERFORM api_keys._dashboard_hash_check('session_hash', dashboard_session_end.session_hash);
    DELETE FROM api_keys.dashboard_sessions d WHERE d.session_hash = dashboard_session_end.session_hash
    RETURNING d.* INTO s;
    IF s.id IS NULL THEN
        RETURN false;
    END IF;
    PERFORM api_keys._audit('dashboard_session_end', NULL, s.owner_type, s.owner_id);
    RETURN true;
END
$$;

-- What the dashboard's forms offer an owner: key types (and where each may
-- be issued now), environments, expiry presets, for key_type the scopes a
-- new key may hold (from the SPEC functions), and the scopes' descriptions.
CREATE OR REPLACE FUNCTION api_keys.dashboard_key_options(owner_type text, owner_id text, key_type text DEFAULT NULL)
RETURNS jsonb LANGUAGE plpgsql VOLATILE
SECURITY DEFINER SET search_path = pg_catalog, api_keys, pg_temp AS $$
DECLARE
    envs text[];
BEGIN
    PERFORM api_keys._text_check('owner_type, owner_id or key_type', owner_type, owner_id, key_type);
    PERFORM api_keys._check_owner(owner_type, owner_id);
    SELECT coalesce(array_agg(e.name ORDER BY e.name), '{}') INTO envs FROM api_keys.environments e;
    RETURN jsonb_build_object(
        'key_types', coalesce((
            SELECT jsonb_agg(jsonb_build_object(
                       'name', t.name, 'public', t.public, 'revocable', api_keys._revocable(t.revocable),
                       'issuable_in', (
                           SELECT coalesce(jsonb_agg(e.name), '[]'::jsonb)
                             FROM unnest(CASE WHEN cardinality(envs) = 0 THEN ARRAY[NULL::text] ELSE envs END) e(name)
                            WHERE api_keys.api_key_can_issue(dashboard_key_options.owner_type,
                                      dashboard_key_options.owner_id, t.name, e.name)))
                   ORDER BY t.name)
              FROM api_keys.key_types t), '[]'::jsonb),
        'environments', to_jsonb(envs),
        'presets', (SELECT jsonb_agg(jsonb_build_object('value', p.value, 'label', p.label))
                      FROM api_keys.api_key_expiration_presets() p),
        'available_scopes', to_jsonb(api_keys.api_key_available_scopes(owner_type, key_type)),
        'scope_descriptions', coalesce((SELECT jsonb_object_agg(s.name, s.description)
                                          FROM api_keys.scopes s WHERE s.description IS NOT NULL), '{}'::jsonb));
END
$$;

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

SELECT api_keys._acl_apply();

COMMENT ON FUNCTION api_keys.api_key_issue(text, text, text, text[], text, text, timestamptz, text, jsonb, boolean) IS
    'Issues a key for an owner; the only moment the plaintext token of a secret key exists.';
COMMENT ON FUNCTION api_keys.api_key_verify(text, text[], text, text) IS
    'Verifies a token: code malformed, not_found, revoked, expired, environment_mismatch, insufficient_scope, otp_required, otp_invalid or valid. Never raises for any token text.';
COMMENT ON FUNCTION api_keys.api_key_get(uuid) IS 'One key''s key_info; key_not_found if unknown.';
COMMENT ON FUNCTION api_keys.api_key_list(text, text, text, text, integer, uuid) IS
    'An owner''s keys, newest first; status filter active, inactive, expired or revoked; keyset pages by limit and before_id.';
COMMENT ON FUNCTION api_keys.api_key_revoke(uuid) IS
    'Revokes an active key: true if it was active, false if already revoked or expired.';
COMMENT ON FUNCTION api_keys.api_key_revoke_all(text, text) IS
    'Revokes every active revocable key of an owner; returns how many.';
COMMENT ON FUNCTION api_keys.api_key_purge_owner(text, text) IS
    'Deletes every key of an owner, non-revocable ones too (account deletion); audited.';
COMMENT ON FUNCTION api_keys.api_key_update(uuid, text, text[], jsonb, boolean) IS
    'Changes name, scopes (re-processed), metadata (replaced) or the MFA flag; NULL leaves a field unchanged.';
COMMENT ON FUNCTION api_keys.api_key_rotate(uuid, interval, text) IS
    'Issues a replacement for an active key (same owner, name, type, environment, scopes, metadata, mfa flag); the old key stays valid for the grace period (0 = revoked now) and names the new one in replaced_by.';
COMMENT ON FUNCTION api_keys._rotate_plan(uuid, boolean, boolean, timestamptz, timestamptz, uuid, text, boolean, interval, text, timestamptz) IS 'Internal: core''s decision for rotate (new expiry, old key revoked or expiring, prefix head).';
COMMENT ON FUNCTION api_keys.api_key_legacy_prefix_define(text) IS
    'Registers a foreign token prefix: verify looks tokens that start with it (and do not parse as ours) up by SHA-256.';
COMMENT ON FUNCTION api_keys.api_key_import(text, text, bytea, text, text, text, text[], text, text, timestamptz, timestamptz, timestamptz, timestamptz, bigint, jsonb) IS
    'Imports a key whose plaintext is unknown from the SHA-256 of its token (migration from the Rails gem, RubyGems, hand-rolled tables); exempt from limits; audited.';
COMMENT ON FUNCTION api_keys._legacy_prefixes_trigger() IS 'Internal: every change to legacy_prefixes invalidates the backends'' cached list.';
COMMENT ON FUNCTION api_keys._legacy_prefixes_changed() IS 'Internal: sends a relcache invalidation of legacy_prefixes.';
COMMENT ON FUNCTION api_keys._legacy_prefix_check(text) IS 'Internal: checks a legacy prefix; the prefix to store.';
COMMENT ON FUNCTION api_keys._import_plan(text, text, integer, text, text, text, text[], text, boolean, text[], boolean, boolean, text, boolean, boolean, timestamptz, timestamptz, timestamptz, bigint, text, integer, boolean, text[], text[], boolean[], timestamptz) IS 'Internal: core''s decision for import (name, scopes, display prefix, created_at).';
COMMENT ON FUNCTION api_keys.api_key_mfa_enroll(text, text, text, text) IS
    'Starts (or restarts) an owner''s TOTP enrollment: the secret and otpauth URI, shown once; invalid_argument if MFA is enabled.';
COMMENT ON FUNCTION api_keys.api_key_mfa_confirm(text, text, text) IS
    'Enables the owner''s pending TOTP enrollment on a valid code; false for a wrong one.';
COMMENT ON FUNCTION api_keys.api_key_mfa_disable(text, text) IS
    'Removes the owner''s TOTP enrollment; its MFA keys then fail closed for sensitive scopes.';
COMMENT ON FUNCTION api_keys.api_key_mfa_status(text, text) IS 'An owner''s MFA: none, pending or enabled.';
COMMENT ON FUNCTION api_keys._mfa_enabled(text, text) IS 'Internal: whether the owner''s MFA is enabled.';
COMMENT ON FUNCTION api_keys._mfa_secret_new() IS 'Internal: a new TOTP secret.';
COMMENT ON FUNCTION api_keys._mfa_enrollment(bytea, text, text) IS 'Internal: the secret in base32 and its otpauth URI.';
COMMENT ON FUNCTION api_keys._mfa_accept(text, text, bytea, text) IS 'Internal: checks a TOTP code and records its use (replay memory).';
COMMENT ON FUNCTION api_keys._mfa_flag_check(boolean, boolean, text) IS 'Internal: mfa_not_enabled unless the owner''s MFA is enabled.';
COMMENT ON FUNCTION api_keys.api_key_can_issue(text, text, text, text) IS
    'Whether an issue with these arguments would pass the owner''s limits now.';
COMMENT ON FUNCTION api_keys.api_key_available_scopes(text, text) IS
    'The scopes a new key of this owner type and key type may hold.';
COMMENT ON FUNCTION api_keys.api_key_expiration_presets() IS
    'Expiration presets for expires_in, in display order.';
COMMENT ON FUNCTION api_keys.api_key_mask(text) IS
    'Masked form <prefix>_••••<last 4>; NULL for a malformed token.';
COMMENT ON FUNCTION api_keys.api_key_environment_of(text) IS
    'The environment named by a token''s prefix; NULL for a malformed token or none.';
COMMENT ON FUNCTION api_keys.api_key_type_define(text, text, text[], boolean, boolean, integer) IS
    'Creates or updates a key type: token prefix, scope ceiling, revocability, public, per-owner limit.';
COMMENT ON FUNCTION api_keys.api_key_environment_define(text, text) IS
    'Creates or updates an environment and its token prefix segment.';
COMMENT ON FUNCTION api_keys.api_key_scope_define(text, text, boolean, boolean) IS
    'Registers a scope (exclusive, or sensitive: mfa); once any exists, unknown scopes are rejected.';
COMMENT ON FUNCTION api_keys.api_key_owner_policy_set(text, integer, boolean, text[]) IS
    'Sets an owner type''s policy: max active keys, required names, default scopes.';
COMMENT ON FUNCTION api_keys._raise(text, text) IS 'Internal: raises a reason with its SQLSTATE.';
COMMENT ON FUNCTION api_keys._check_owner(text, text) IS 'Internal: bounds on owner_type and owner_id.';
COMMENT ON FUNCTION api_keys._scopes_available(text[], text[], text[]) IS 'Internal: available scopes rule.';
COMMENT ON FUNCTION api_keys._check_limits(text, text, bigint, integer, text, text, bigint, integer, boolean) IS 'Internal: max_keys then per_owner_limit.';
COMMENT ON FUNCTION api_keys._key_id_new() IS 'Internal: a new UUIDv7.';
COMMENT ON FUNCTION api_keys._token_new(text, text) IS 'Internal: a new token, its hash, display prefix and last 4.';
COMMENT ON FUNCTION api_keys._token_prefix() IS 'Internal: api_keys.token_prefix, checked.';
COMMENT ON FUNCTION api_keys._current_environment() IS 'Internal: api_keys.environment, NULL when empty.';
COMMENT ON FUNCTION api_keys._mask_parts(text, text) IS 'Internal: masked form from stored parts.';
COMMENT ON FUNCTION api_keys._invoker() IS 'Internal: the calling role, for the audit trail.';
COMMENT ON FUNCTION api_keys._audit(text, uuid, text, text, jsonb) IS 'Internal: appends to the audit trail.';
COMMENT ON FUNCTION api_keys._scope_registry() IS 'Internal: registered scopes in definition order.';
COMMENT ON FUNCTION api_keys._lock_owner(text, text) IS 'Internal: serialises issuers of one owner.';
COMMENT ON FUNCTION api_keys._within_limits(text, text, api_keys.key_types, text, boolean) IS 'Internal: counts active keys under the owner lock.';


COMMENT ON FUNCTION api_keys.api_key_authenticate(text[]) IS
    'PostgREST db-pre-request: verifies x-api-key or Authorization: Bearer from request.headers; PT401/PT403 on failure; sets the transaction''s key identity.';
COMMENT ON FUNCTION api_keys._authenticate(text, text[]) IS 'Internal: verifies the request''s key and sets the identity.';
COMMENT ON FUNCTION api_keys.current_key_id() IS 'The id of the key authenticated in this transaction, else NULL.';
COMMENT ON FUNCTION api_keys.current_owner_type() IS 'The owner type of the key authenticated in this transaction, else NULL.';
COMMENT ON FUNCTION api_keys.current_owner_id() IS 'The owner id of the key authenticated in this transaction, else NULL.';
COMMENT ON FUNCTION api_keys.current_scopes() IS 'The scopes of the key authenticated in this transaction, else NULL.';
COMMENT ON FUNCTION api_keys.has_scope(text) IS 'Whether the key authenticated in this transaction holds the scope.';
COMMENT ON FUNCTION api_keys.api_key_usage_stats() IS
    'Usage tracking counters: preloaded, capacity, keys with pending counts, verifications recorded, dropped, flushed.';
COMMENT ON FUNCTION api_keys.api_key_usage_flush() IS
    'Wakes the usage flusher now; false when the library is not preloaded.';
COMMENT ON FUNCTION api_keys._lock_key(uuid) IS 'Internal: a key by id, locked FOR UPDATE, or key_not_found.';
COMMENT ON FUNCTION api_keys._check_label(text, text) IS 'Internal: a user-given name is 1-255 characters, not blank.';
COMMENT ON FUNCTION api_keys._text_check(text, text[]) IS 'Internal: invalid_argument for text that is not UTF-8 in this database.';
COMMENT ON FUNCTION api_keys._acl_apply() IS 'Internal: sets every ACL of the extension''s objects (install and updates).';
COMMENT ON FUNCTION api_keys._scopes_effective(text[], text[]) IS 'Internal: a key''s scopes within its type''s current ceiling.';
COMMENT ON FUNCTION api_keys._issue_plan(text, text, text, text[], text, boolean, text[], boolean, boolean, text, boolean, boolean, timestamptz, text, text, integer, boolean, text[], text[], boolean[], timestamptz) IS 'Internal: core''s decision for issue (name, scopes, expiry, plaintext kept).';
COMMENT ON FUNCTION api_keys._update_plan(text, text[], text, integer, text, text, text[], boolean, text[], text[], boolean[]) IS 'Internal: core''s decision for update (name, scopes, changed fields).';
COMMENT ON FUNCTION api_keys._check_targets(text, boolean, text, boolean, boolean) IS 'Internal: unknown_key_type / unknown_environment as issue would raise them.';
COMMENT ON FUNCTION api_keys._key_type_check(text, text, text[], boolean, boolean, integer, text, text[]) IS 'Internal: checks a key type definition; the ceiling to store.';
COMMENT ON FUNCTION api_keys._environment_check(text, text, text) IS 'Internal: checks an environment definition.';
COMMENT ON FUNCTION api_keys._scope_check(text, text, boolean) IS 'Internal: checks a scope definition; the name to store.';
COMMENT ON FUNCTION api_keys._owner_policy_check(text, integer, text[], text[]) IS 'Internal: checks an owner policy; the default scopes to store.';
COMMENT ON FUNCTION api_keys._key_status(timestamptz, timestamptz, timestamptz) IS 'Internal: a key''s status word: revoked, expired or active.';
COMMENT ON FUNCTION api_keys._list_filter(text, integer) IS 'Internal: the statuses api_key_list keeps for a status filter; checks the page limit.';
COMMENT ON FUNCTION api_keys._revocable(boolean) IS 'Internal: whether a key is revocable (untyped keys are).';
COMMENT ON FUNCTION api_keys._auth_refusal(text) IS 'Internal: PT401/PT403 and message for an authentication outcome.';
COMMENT ON FUNCTION api_keys.dashboard_session_create(text, text, bytea, integer, text, text) IS
    'Stores a dashboard hand-off link (SHA-256 of its secret) for an owner; returns when it expires (ttl_seconds 1-3600, default 300).';
COMMENT ON FUNCTION api_keys.dashboard_session_exchange(bytea, bytea) IS
    'Exchanges a live, unused link (by digest) for a cookie session (by digest), once; no row if the link is expired, used or unknown.';
COMMENT ON FUNCTION api_keys.dashboard_session_owner(bytea) IS
    'The owner and return link of a live dashboard session (by digest), which it keeps alive; no row if ended or expired (12 h lifetime, 1 h idle).';
COMMENT ON FUNCTION api_keys.dashboard_session_end(bytea) IS
    'Ends a dashboard session (logout); false if there was none.';
COMMENT ON FUNCTION api_keys.dashboard_key_options(text, text, text) IS
    'What the dashboard''s forms offer an owner: key types and where each may be issued now, environments, expiry presets, available scopes.';
COMMENT ON FUNCTION api_keys._dashboard_hash_check(text, bytea) IS 'Internal: invalid_argument unless a 32-byte digest.';
COMMENT ON FUNCTION api_keys._dashboard_link_expires_at(integer, text, text, timestamptz) IS 'Internal: core''s link expiry; checks ttl_seconds and the return link.';
COMMENT ON FUNCTION api_keys._dashboard_session_expires_at(timestamptz, timestamptz) IS 'Internal: core''s session end (12 h lifetime, 1 h idle).';
