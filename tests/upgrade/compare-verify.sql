-- Upgrade stage, check (a): every verify call answers after the update
-- exactly what it answered before (the whole verification row). Prints one
-- line per difference, nothing when all are equal.
\set ON_ERROR_STOP 1
SELECT format('%s, required_scopes %s, environment %s, strict isolation %s: before %s, after %s',
              coalesce(b.token_label, a.token_label),
              coalesce(v.required_scopes::text, 'NULL'), coalesce(v.environment, 'NULL'),
              CASE WHEN coalesce(b.strict, a.strict) THEN 'on' ELSE 'off' END,
              coalesce(b.row_text, '(no call)'), coalesce(a.row_text, '(no call)'))
  FROM upgrade_fixture.verify_before b
  FULL JOIN upgrade_fixture.verify_after a USING (token_label, args_id, strict)
  LEFT JOIN upgrade_fixture.verify_args v ON v.args_id = coalesce(b.args_id, a.args_id)
 WHERE b.row_text IS DISTINCT FROM a.row_text
    OR b.token_label IS NULL OR a.token_label IS NULL
 ORDER BY 1;
