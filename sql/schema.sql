-- api_keys: storage, types and roles. Runs first (pgrx "bootstrap").
-- Nothing here is granted to PUBLIC; applications reach the data only through
-- SECURITY DEFINER functions (sql/functions.sql sets every ACL at the end).

-- The schema must be ours alone: CREATE EXTENSION uses an existing schema
-- of this name, and whoever owns it (or planted objects in it) could shadow
-- operators and functions inside our SECURITY DEFINER bodies. Refuse a
-- schema owned by a role that is neither the installer nor a superuser, and
-- any schema that already holds objects.
DO $guard$
DECLARE
    nsp oid;
    owner_name name;
    owner_trusted boolean;
    objects text;
BEGIN
    SELECT n.oid, r.rolname, (r.rolsuper OR r.rolname OPERATOR(pg_catalog.=) current_user)
      INTO nsp, owner_name, owner_trusted
      FROM pg_catalog.pg_namespace n JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) n.nspowner
     WHERE n.nspname OPERATOR(pg_catalog.=) 'api_keys';
    IF NOT owner_trusted THEN
        RAISE EXCEPTION 'api_keys: the schema api_keys already exists and is owned by %, who is neither the installing role (%) nor a superuser', owner_name, current_user
            USING ERRCODE = '42501',
                  HINT = 'Drop or rename that schema (after checking what is in it), then CREATE EXTENSION api_keys again.';
    END IF;
    SELECT pg_catalog.string_agg(o.what, ', ') INTO objects FROM (
        SELECT pg_catalog.format('relation %s', c.relname) AS what FROM pg_catalog.pg_class c WHERE c.relnamespace OPERATOR(pg_catalog.=) nsp
        UNION ALL SELECT pg_catalog.format('function %s', p.proname) FROM pg_catalog.pg_proc p WHERE p.pronamespace OPERATOR(pg_catalog.=) nsp
        UNION ALL SELECT pg_catalog.format('type %s', t.typname) FROM pg_catalog.pg_type t WHERE t.typnamespace OPERATOR(pg_catalog.=) nsp
        UNION ALL SELECT pg_catalog.format('operator %s', o.oprname) FROM pg_catalog.pg_operator o WHERE o.oprnamespace OPERATOR(pg_catalog.=) nsp
        UNION ALL SELECT pg_catalog.format('collation %s', c.collname) FROM pg_catalog.pg_collation c WHERE c.collnamespace OPERATOR(pg_catalog.=) nsp
        UNION ALL SELECT pg_catalog.format('conversion %s', c.conname) FROM pg_catalog.pg_conversion c WHERE c.connamespace OPERATOR(pg_catalog.=) nsp
        UNION ALL SELECT pg_catalog.format('operator class %s', c.opcname) FROM pg_catalog.pg_opclass c WHERE c.opcnamespace OPERATOR(pg_catalog.=) nsp
        UNION ALL SELECT pg_catalog.format('operator family %s', f.opfname) FROM pg_catalog.pg_opfamily f WHERE f.opfnamespace OPERATOR(pg_catalog.=) nsp
        UNION ALL SELECT pg_catalog.format('text search configuration %s', c.cfgname) FROM pg_catalog.pg_ts_config c WHERE c.cfgnamespace OPERATOR(pg_catalog.=) nsp
        UNION ALL SELECT pg_catalog.format('text search dictionary %s', d.dictname) FROM pg_catalog.pg_ts_dict d WHERE d.dictnamespace OPERATOR(pg_catalog.=) nsp
        UNION ALL SELECT pg_catalog.format('text search parser %s', p.prsname) FROM pg_catalog.pg_ts_parser p WHERE p.prsnamespace OPERATOR(pg_catalog.=) nsp
        UNION ALL SELECT pg_catalog.format('text search template %s', t.tmplname) FROM pg_catalog.pg_ts_template t WHERE t.tmplnamespace OPERATOR(pg_catalog.=) nsp
        UNION ALL SELECT pg_catalog.format('statistics object %s', s.stxname) FROM pg_catalog.pg_statistic_ext s WHERE s.stxnamespace OPERATOR(pg_catalog.=) nsp
        UNION ALL SELECT 'default privileges' FROM pg_catalog.pg_default_acl d WHERE d.defaclnamespace OPERATOR(pg_catalog.=) nsp
    ) o;
    IF objects IS NOT NULL THEN
        RAISE EXCEPTION 'api_keys: the schema api_keys already exists and is not empty: %', pg_catalog.left(objects, 500)
            USING ERRCODE = '42501',
                  HINT = 'CREATE EXTENSION api_keys needs a schema of its own; drop or rename that schema, then try again.';
    END IF;
END
$guard$;

DO $roles$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'api_keys_verifier') THEN
        CREATE ROLE api_keys_verifier NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'api_keys_admin') THEN
        CREATE ROLE api_keys_admin NOLOGIN;
    END IF;
    IF NOT pg_catalog.pg_has_role('api_keys_admin', 'api_keys_verifier', 'MEMBER') THEN
        GRANT api_keys_verifier TO api_keys_admin;
    END IF;
END
$roles$;


-- Key types: prefix and scope ceiling (permissions NULL = every scope).
CREATE TABLE api_keys.key_types (
    name            text PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 255),
    prefix          text NOT NULL UNIQUE,
    permissions     text[],
    revocable       boolean NOT NULL DEFAULT true,
    public          boolean NOT NULL DEFAULT false,
    per_owner_limit integer CHECK (per_owner_limit >= 0),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (NOT public OR (NOT revocable AND permissions IS NOT NULL))
);

CREATE TABLE api_keys.environments (
    name           text PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 255),
    prefix_segment text NOT NULL UNIQUE,
    created_at     timestamptz NOT NULL DEFAULT now()
);

-- The scope registry; once it has a row, unknown scopes are refused.
CREATE TABLE api_keys.scopes (
    name        text PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 200),
    description text,
    exclusive   boolean NOT NULL DEFAULT false,
    position    bigint GENERATED ALWAYS AS IDENTITY,
    created_at  timestamptz NOT NULL DEFAULT now(),
    -- 0.2.0: a sensitive scope; an MFA key needs a TOTP code for it
    mfa         boolean NOT NULL DEFAULT false
);

CREATE TABLE api_keys.owner_policies (
    owner_type     text PRIMARY KEY CHECK (length(owner_type) BETWEEN 1 AND 255),
    max_keys       integer CHECK (max_keys >= 0),
    require_name   boolean NOT NULL DEFAULT false,
    default_scopes text[],
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- One row per key. token_hash = sha256(token); the plaintext is kept only
-- for keys of a public type (publishable keys are meant to be shown again).
CREATE TABLE api_keys.keys (
    id             uuid PRIMARY KEY,
    owner_type     text NOT NULL,
    owner_id       text NOT NULL,
    name           text,
    key_type       text REFERENCES api_keys.key_types (name),
    environment    text REFERENCES api_keys.environments (name),
    token_hash     bytea NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    display_prefix text NOT NULL,
    last4          text NOT NULL,
    scopes         text[] NOT NULL DEFAULT '{}',
    metadata       jsonb NOT NULL DEFAULT '{}',
    viewable_token text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz,
    revoked_at     timestamptz,
    last_used_at   timestamptz,
    requests_count bigint NOT NULL DEFAULT 0,
    -- 0.2.0 (at the end, where ALTER TABLE … ADD COLUMN puts them):
    -- the key's MFA flag, the key a rotation issued for it, and whether it
    -- was imported from a digest (api_key_import).
    mfa            boolean NOT NULL DEFAULT false,
    replaced_by    uuid,
    imported       boolean NOT NULL DEFAULT false
);
CREATE INDEX keys_owner_idx ON api_keys.keys (owner_type, owner_id, created_at DESC, id DESC);

-- Foreign token prefixes (0.2.0, api_key_legacy_prefix_define): verify looks
-- a token that does not parse as ours up by its SHA-256 only when it starts
-- with one of these (an imported key, api_key_import).
CREATE TABLE api_keys.legacy_prefixes (
    prefix     text PRIMARY KEY CHECK (length(prefix) BETWEEN 1 AND 64),
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Per-owner TOTP enrollment (0.2.0). The secret is readable by no role:
-- nothing is granted on this table; SECURITY DEFINER functions and verify
-- (as the table's owner) read it. It is shown once by api_key_mfa_enroll
-- and never audited, logged or put in an error.
CREATE TABLE api_keys.mfa_enrollments (
    owner_type text NOT NULL,
    owner_id   text NOT NULL,
    secret     bytea NOT NULL,
    enabled    boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    enabled_at timestamptz,
    PRIMARY KEY (owner_type, owner_id)
);

-- Append-only trail of changes to keys: who, what, when; never a token.
CREATE TABLE api_keys.audit_log (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at                timestamptz NOT NULL DEFAULT clock_timestamp(),
    action            text NOT NULL,
    key_id            uuid,
    owner_type        text,
    owner_id          text,
    session_user_name text NOT NULL DEFAULT session_user,
    current_user_name text NOT NULL,
    details           jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_key_idx ON api_keys.audit_log (key_id);

CREATE TYPE api_keys.issued_key AS (
    id           uuid,
    token        text,
    masked_token text,
    owner_type   text,
    owner_id     text,
    name         text,
    key_type     text,
    environment  text,
    scopes       text[],
    expires_at   timestamptz,
    created_at   timestamptz
);

CREATE TYPE api_keys.verification AS (
    valid       boolean,
    code        text,
    key_id      uuid,
    owner_type  text,
    owner_id    text,
    name        text,
    key_type    text,
    environment text,
    scopes      text[],
    metadata    jsonb,
    expires_at  timestamptz
);

CREATE TYPE api_keys.key_info AS (
    id             uuid,
    owner_type     text,
    owner_id       text,
    name           text,
    key_type       text,
    environment    text,
    masked_token   text,
    viewable_token text,
    scopes         text[],
    metadata       jsonb,
    status         text,
    revocable      boolean,
    created_at     timestamptz,
    expires_at     timestamptz,
    revoked_at     timestamptz,
    last_used_at   timestamptz,
    requests_count bigint,
    mfa            boolean,
    replaced_by    uuid,
    imported       boolean
);

-- Self-serve dashboard sessions (SPEC §9): one row per hand-off link, which
-- becomes a cookie session when exchanged. Only SHA-256 digests of the link
-- and session secrets are kept (core hashes them in the admin service; the
-- secrets never reach the database). Deliberately not in pg_dump: a session
-- is worth nothing after 12 hours, and a restored backup should not revive one.
CREATE TABLE api_keys.dashboard_sessions (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner_type      text NOT NULL,
    owner_id        text NOT NULL,
    link_hash       bytea NOT NULL UNIQUE CHECK (length(link_hash) = 32),
    link_expires_at timestamptz NOT NULL,
    session_hash    bytea UNIQUE CHECK (length(session_hash) = 32),
    return_url      text,
    return_text     text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    started_at      timestamptz,
    last_seen_at    timestamptz,
    CHECK ((session_hash IS NULL) = (started_at IS NULL) AND (started_at IS NULL) = (last_seen_at IS NULL))
);
CREATE INDEX dashboard_sessions_owner_idx ON api_keys.dashboard_sessions (owner_type, owner_id);

-- Extension tables are left out of pg_dump unless registered: without this a
-- backup would silently lose every key and setting.
SELECT pg_catalog.pg_extension_config_dump('api_keys.key_types', '');
SELECT pg_catalog.pg_extension_config_dump('api_keys.environments', '');
SELECT pg_catalog.pg_extension_config_dump('api_keys.scopes', '');
SELECT pg_catalog.pg_extension_config_dump('api_keys.owner_policies', '');
SELECT pg_catalog.pg_extension_config_dump('api_keys.keys', '');
SELECT pg_catalog.pg_extension_config_dump('api_keys.audit_log', '');
SELECT pg_catalog.pg_extension_config_dump('api_keys.legacy_prefixes', '');
SELECT pg_catalog.pg_extension_config_dump('api_keys.mfa_enrollments', '');
SELECT pg_catalog.pg_extension_config_dump('api_keys.audit_log_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('api_keys.scopes_position_seq', '');
