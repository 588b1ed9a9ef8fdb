-- The bench schema shared by tests/bench/run.sh (pgbench) and
-- tests/bench/instructions.sh (callgrind): hand-written baselines and
-- differently declared copies of api_key_verify's C symbol.
CREATE EXTENSION api_keys;
CREATE SCHEMA bench;
CREATE TABLE bench.tokens (i int PRIMARY KEY, token text NOT NULL);

-- What users write today: hash, look up, check revoked/expired/scopes.
CREATE FUNCTION bench.plpgsql_verify(p_token text, p_required text[] DEFAULT '{}')
RETURNS api_keys.verification LANGUAGE plpgsql STABLE AS $$
DECLARE
    k api_keys.keys;
    v api_keys.verification;
BEGIN
    v.valid := false;
    SELECT * INTO k FROM api_keys.keys WHERE token_hash = sha256(convert_to(p_token, 'UTF8'));
    IF NOT FOUND THEN
        v.code := 'not_found';
    ELSIF k.revoked_at IS NOT NULL THEN
        v.code := 'revoked';
    ELSIF k.expires_at <= now() THEN
        v.code := 'expired';
    ELSE
        v.code := CASE WHEN k.scopes @> p_required THEN 'valid' ELSE 'insufficient_scope' END;
        v.valid := v.code = 'valid';
        v.key_id := k.id; v.owner_type := k.owner_type; v.owner_id := k.owner_id; v.name := k.name;
        v.key_type := k.key_type; v.environment := k.environment; v.scopes := k.scopes;
        v.metadata := k.metadata; v.expires_at := k.expires_at;
    END IF;
    RETURN v;
END
$$;

-- api_key_verify's C symbol declared as before SPEC §2's hot-path exception
-- (SECURITY DEFINER + SET search_path), and with SECURITY DEFINER alone: the
-- fixed cost of each, measured in the same run as the shipped declaration.
CREATE FUNCTION bench.verify_definer_set(token text, required_scopes text[] DEFAULT '{}', environment text DEFAULT NULL)
RETURNS api_keys.verification LANGUAGE c VOLATILE
SECURITY DEFINER SET search_path = pg_catalog, api_keys, pg_temp
AS '$libdir/api_keys', 'api_key_verify_c';
CREATE FUNCTION bench.verify_definer(token text, required_scopes text[] DEFAULT '{}', environment text DEFAULT NULL)
RETURNS api_keys.verification LANGUAGE c VOLATILE
SECURITY DEFINER
AS '$libdir/api_keys', 'api_key_verify_c';

-- The same, plus a write per verify: the tracker api_keys avoids.
CREATE FUNCTION bench.naive_verify(p_token text, p_required text[] DEFAULT '{}')
RETURNS api_keys.verification LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v api_keys.verification := bench.plpgsql_verify(p_token, p_required);
BEGIN
    IF v.valid THEN
        UPDATE api_keys.keys SET last_used_at = now(), requests_count = requests_count + 1
         WHERE id = v.key_id;
    END IF;
    RETURN v;
END
$$;
