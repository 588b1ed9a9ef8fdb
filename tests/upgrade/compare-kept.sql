-- Upgrade stage, check (b): the update keeps every key (requests_count and
-- last_used_at included), the configuration and every audit row, unchanged.
-- Columns the update adds are ignored; rows the update adds to audit_log are
-- allowed. Prints one line per difference, nothing when all is kept.
\set ON_ERROR_STOP 1
SELECT line FROM (
    SELECT upgrade_fixture.kept_diff('upgrade_fixture.keys_before', 'api_keys.keys', 'id')
    UNION ALL
    SELECT 'api_keys.keys: ' || count(*) || ' rows that were not there before the update'
      FROM api_keys.keys k
     WHERE NOT EXISTS (SELECT 1 FROM upgrade_fixture.keys_before b WHERE b.id = k.id)
    HAVING count(*) > 0
    UNION ALL
    SELECT upgrade_fixture.kept_diff('upgrade_fixture.key_types_before', 'api_keys.key_types', 'name')
    UNION ALL
    SELECT upgrade_fixture.kept_diff('upgrade_fixture.environments_before', 'api_keys.environments', 'name')
    UNION ALL
    SELECT upgrade_fixture.kept_diff('upgrade_fixture.scopes_before', 'api_keys.scopes', 'name')
    UNION ALL
    SELECT upgrade_fixture.kept_diff('upgrade_fixture.owner_policies_before', 'api_keys.owner_policies', 'owner_type')
    UNION ALL
    SELECT upgrade_fixture.kept_diff('upgrade_fixture.audit_before', 'api_keys.audit_log', 'id')
) d(line)
ORDER BY 1;
