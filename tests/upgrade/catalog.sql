-- Upgrade stage, check (c): a canonical text description of everything that
-- belongs to the api_keys extension in the current database, one fact per
-- line, sorted, so that an upgraded database and a fresh install can be
-- compared with diff:
--   psql -X -At -f catalog.sql DB
-- Line format: <kind> | <object> | <attribute> | <value>. Roles are printed
-- by name, never by oid; nothing depends on oids or on data.
\set ON_ERROR_STOP 1
\set QUIET 1
\pset format unaligned
\pset tuples_only on

WITH ext AS (
    SELECT e.* FROM pg_catalog.pg_extension e WHERE e.extname = 'api_keys'
),
members AS (
    SELECT d.classid, d.objid, d.objsubid
      FROM pg_catalog.pg_depend d JOIN ext ON d.refobjid = ext.oid
     WHERE d.refclassid = 'pg_catalog.pg_extension'::regclass AND d.deptype = 'e'
),
procs AS (
    SELECT p.*, l.lanname
      FROM pg_catalog.pg_proc p
      JOIN members m ON m.classid = 'pg_catalog.pg_proc'::regclass AND m.objid = p.oid
      JOIN pg_catalog.pg_language l ON l.oid = p.prolang
),
types AS (
    SELECT t.*
      FROM pg_catalog.pg_type t
      JOIN members m ON m.classid = 'pg_catalog.pg_type'::regclass AND m.objid = t.oid
),
member_rels AS (
    SELECT c.oid
      FROM pg_catalog.pg_class c
      JOIN members m ON m.classid = 'pg_catalog.pg_class'::regclass AND m.objid = c.oid
),
-- member relations, and sequences that belong to member tables (identity
-- and serial columns) even if they are not members themselves
rels AS (
    SELECT c.*, c.oid::regclass::text AS ident
      FROM pg_catalog.pg_class c
     WHERE c.oid IN (SELECT oid FROM member_rels)
        OR (c.relkind = 'S' AND EXISTS (
              SELECT 1 FROM pg_catalog.pg_depend d
               WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid
                 AND d.refclassid = 'pg_catalog.pg_class'::regclass
                 AND d.refobjid IN (SELECT oid FROM member_rels) AND d.deptype IN ('a', 'i')))
),
schemas AS (
    SELECT n.*
      FROM pg_catalog.pg_namespace n
     WHERE n.oid IN (SELECT objid FROM members WHERE classid = 'pg_catalog.pg_namespace'::regclass)
        OR n.oid = (SELECT extnamespace FROM ext)
),
lines(line) AS (
    -- the extension itself
    SELECT format('extension | %s | %s | %s', e.extname, a.k, a.v)
      FROM ext e
     CROSS JOIN LATERAL (VALUES
        ('version', e.extversion),
        ('relocatable', e.extrelocatable::text),
        ('schema', e.extnamespace::regnamespace::text),
        ('owner', pg_catalog.pg_get_userbyid(e.extowner)),
        ('comment', coalesce(pg_catalog.obj_description(e.oid, 'pg_extension'), '<none>'))) AS a(k, v)
    UNION ALL
    SELECT format('extension | %s | config | %s condition %L', e.extname, c.tab::regclass, c.cond)
      FROM ext e
     CROSS JOIN LATERAL unnest(e.extconfig, e.extcondition) AS c(tab, cond)
    UNION ALL
    -- every member object
    SELECT format('member | %s', pg_catalog.pg_describe_object(m.classid, m.objid, m.objsubid))
      FROM members m

    -- schemas
    UNION ALL
    SELECT format('schema | %s | %s | %s', n.nspname, a.k, a.v)
      FROM schemas n
     CROSS JOIN LATERAL (VALUES
        ('owner', pg_catalog.pg_get_userbyid(n.nspowner)),
        ('comment', coalesce(pg_catalog.obj_description(n.oid, 'pg_namespace'), '<none>')),
        ('acl entries', coalesce(pg_catalog.cardinality(coalesce(n.nspacl, pg_catalog.acldefault('n', n.nspowner))), 0)::text)
     ) AS a(k, v)
    UNION ALL
    SELECT format('schema | %s | acl | %s', n.nspname, acl.txt)
      FROM schemas n
     CROSS JOIN LATERAL (
        SELECT format('%s: %s%s (grantor %s)',
                      CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE pg_catalog.pg_get_userbyid(x.grantee) END,
                      x.privilege_type, CASE WHEN x.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END,
                      pg_catalog.pg_get_userbyid(x.grantor)) AS txt
          FROM pg_catalog.aclexplode(coalesce(n.nspacl, pg_catalog.acldefault('n', n.nspowner))) x) acl

    -- functions and procedures
    UNION ALL
    SELECT format('function | %s | %s | %s', p.oid::regprocedure, a.k, a.v)
      FROM procs p
     CROSS JOIN LATERAL (VALUES
        ('kind', p.prokind::text),
        ('arguments', pg_catalog.pg_get_function_arguments(p.oid)),
        ('result', coalesce(pg_catalog.pg_get_function_result(p.oid), '<none>')),
        ('language', p.lanname::text),
        ('security definer', p.prosecdef::text),
        ('config', coalesce(p.proconfig::text, '<none>')),
        ('volatility', p.provolatile::text),
        ('strict', p.proisstrict::text),
        ('parallel', p.proparallel::text),
        ('returns set', p.proretset::text),
        ('leakproof', p.proleakproof::text),
        ('cost', p.procost::text),
        ('rows', p.prorows::text),
        ('support', p.prosupport::text),
        ('owner', pg_catalog.pg_get_userbyid(p.proowner)),
        ('source', CASE WHEN p.lanname IN ('c', 'internal') THEN p.prosrc
                        ELSE format('md5 %s (%s chars)', pg_catalog.md5(p.prosrc), pg_catalog.length(p.prosrc)) END),
        ('sql body', CASE WHEN p.prosqlbody IS NULL THEN '<none>'
                          ELSE 'md5 ' || pg_catalog.md5(pg_catalog.pg_get_function_sqlbody(p.oid)) END),
        ('binary', coalesce(p.probin, '<none>')),
        ('comment', coalesce(pg_catalog.replace(pg_catalog.obj_description(p.oid, 'pg_proc'), E'\n', '\n'), '<none>')),
        ('acl entries', coalesce(pg_catalog.cardinality(coalesce(p.proacl, pg_catalog.acldefault('f', p.proowner))), 0)::text)
     ) AS a(k, v)
    UNION ALL
    SELECT format('function | %s | acl | %s', p.oid::regprocedure, acl.txt)
      FROM procs p
     CROSS JOIN LATERAL (
        SELECT format('%s: %s%s (grantor %s)',
                      CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE pg_catalog.pg_get_userbyid(x.grantee) END,
                      x.privilege_type, CASE WHEN x.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END,
                      pg_catalog.pg_get_userbyid(x.grantor)) AS txt
          FROM pg_catalog.aclexplode(coalesce(p.proacl, pg_catalog.acldefault('f', p.proowner))) x) acl

    -- types created by the extension (composite, enum, domain, base, range)
    UNION ALL
    SELECT format('type | %s | %s | %s', t.oid::regtype, a.k, a.v)
      FROM types t
     CROSS JOIN LATERAL (VALUES
        ('kind', t.typtype::text),
        ('owner', pg_catalog.pg_get_userbyid(t.typowner)),
        ('comment', coalesce(pg_catalog.replace(pg_catalog.obj_description(t.oid, 'pg_type'), E'\n', '\n'), '<none>')),
        ('base type', CASE WHEN t.typtype = 'd' THEN pg_catalog.format_type(t.typbasetype, t.typtypmod) ELSE '<none>' END),
        ('not null', t.typnotnull::text),
        ('default', coalesce(t.typdefault, '<none>')),
        ('acl entries', coalesce(pg_catalog.cardinality(coalesce(t.typacl, pg_catalog.acldefault('T', t.typowner))), 0)::text)
     ) AS a(k, v)
    UNION ALL
    SELECT format('type | %s | attribute %s | %s', t.oid::regtype, pg_catalog.lpad(att.attnum::text, 3, '0'),
                  CASE WHEN att.attisdropped THEN '<dropped>'
                       ELSE format('%s %s%s', att.attname, pg_catalog.format_type(att.atttypid, att.atttypmod),
                                   CASE WHEN att.attcollation <> 0 AND att.attcollation <> 'pg_catalog.default'::regcollation
                                        THEN ' COLLATE ' || att.attcollation::regcollation::text ELSE '' END) END)
      FROM types t
      JOIN pg_catalog.pg_attribute att ON att.attrelid = t.typrelid AND att.attnum > 0
     WHERE t.typtype = 'c'
    UNION ALL
    SELECT format('type | %s | label %s | %s', t.oid::regtype,
                  pg_catalog.lpad((pg_catalog.row_number() OVER (PARTITION BY t.oid ORDER BY en.enumsortorder))::text, 3, '0'),
                  en.enumlabel)
      FROM types t JOIN pg_catalog.pg_enum en ON en.enumtypid = t.oid
    UNION ALL
    SELECT format('type | %s | constraint %s | %s', t.oid::regtype, con.conname, pg_catalog.pg_get_constraintdef(con.oid))
      FROM types t JOIN pg_catalog.pg_constraint con ON con.contypid = t.oid
    UNION ALL
    SELECT format('type | %s | acl | %s', t.oid::regtype, acl.txt)
      FROM types t
     CROSS JOIN LATERAL (
        SELECT format('%s: %s%s (grantor %s)',
                      CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE pg_catalog.pg_get_userbyid(x.grantee) END,
                      x.privilege_type, CASE WHEN x.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END,
                      pg_catalog.pg_get_userbyid(x.grantor)) AS txt
          FROM pg_catalog.aclexplode(coalesce(t.typacl, pg_catalog.acldefault('T', t.typowner))) x) acl

    -- relations: tables, views, sequences, ...
    UNION ALL
    SELECT format('relation | %s | %s | %s', r.ident, a.k, a.v)
      FROM rels r
     CROSS JOIN LATERAL (VALUES
        ('kind', r.relkind::text),
        ('persistence', r.relpersistence::text),
        ('owner', pg_catalog.pg_get_userbyid(r.relowner)),
        ('row level security', r.relrowsecurity::text),
        ('force row level security', r.relforcerowsecurity::text),
        ('replica identity', r.relreplident::text),
        ('options', coalesce(r.reloptions::text, '<none>')),
        ('access method', coalesce((SELECT am.amname::text FROM pg_catalog.pg_am am WHERE am.oid = r.relam), '<none>')),
        ('inherits', coalesce((SELECT pg_catalog.string_agg(i.inhparent::regclass::text, ', ' ORDER BY i.inhseqno)
                                 FROM pg_catalog.pg_inherits i WHERE i.inhrelid = r.oid), '<none>')),
        ('comment', coalesce(pg_catalog.replace(pg_catalog.obj_description(r.oid, 'pg_class'), E'\n', '\n'), '<none>')),
        ('acl entries', coalesce(pg_catalog.cardinality(coalesce(r.relacl, pg_catalog.acldefault(
                          (CASE WHEN r.relkind = 'S' THEN 's' ELSE 'r' END)::"char", r.relowner))), 0)::text)
     ) AS a(k, v)
    UNION ALL
    -- columns in physical order (a dropped column leaves a hole a fresh install does not have)
    SELECT format('relation | %s | column %s | %s', r.ident, pg_catalog.lpad(att.attnum::text, 3, '0'),
                  CASE WHEN att.attisdropped THEN '<dropped>'
                       ELSE pg_catalog.concat_ws(' ', att.attname, pg_catalog.format_type(att.atttypid, att.atttypmod),
                            CASE WHEN att.attnotnull THEN 'NOT NULL' END,
                            CASE WHEN att.attcollation <> 0 AND att.attcollation <> 'pg_catalog.default'::regcollation
                                 THEN 'COLLATE ' || att.attcollation::regcollation::text END,
                            CASE WHEN att.attidentity = 'a' THEN 'GENERATED ALWAYS AS IDENTITY'
                                 WHEN att.attidentity = 'd' THEN 'GENERATED BY DEFAULT AS IDENTITY' END,
                            CASE WHEN att.attgenerated = 's'
                                 THEN 'GENERATED ALWAYS AS (' || pg_catalog.pg_get_expr(ad.adbin, ad.adrelid) || ') STORED'
                                 WHEN ad.adbin IS NOT NULL
                                 THEN 'DEFAULT ' || pg_catalog.pg_get_expr(ad.adbin, ad.adrelid) END,
                            CASE WHEN att.attstattarget >= 0 THEN 'STATISTICS ' || att.attstattarget END,
                            CASE WHEN att.attstorage <> t.typstorage THEN 'STORAGE ' || att.attstorage::text END,
                            -- this server stores a per-relation pg_attver=<number> in every
                            -- column's attoptions; it says nothing about the column
                            (SELECT 'OPTIONS ' || pg_catalog.array_agg(o ORDER BY o)::text
                               FROM unnest(att.attoptions) o WHERE o NOT LIKE 'pg\_attver=%')) END)
      FROM rels r
      JOIN pg_catalog.pg_attribute att ON att.attrelid = r.oid AND att.attnum > 0
      LEFT JOIN pg_catalog.pg_type t ON t.oid = att.atttypid
      LEFT JOIN pg_catalog.pg_attrdef ad ON ad.adrelid = att.attrelid AND ad.adnum = att.attnum
    UNION ALL
    SELECT format('relation | %s | column %s comment | %s', r.ident, att.attname,
                  pg_catalog.replace(pg_catalog.col_description(r.oid, att.attnum), E'\n', '\n'))
      FROM rels r
      JOIN pg_catalog.pg_attribute att ON att.attrelid = r.oid AND att.attnum > 0 AND NOT att.attisdropped
     WHERE pg_catalog.col_description(r.oid, att.attnum) IS NOT NULL
    UNION ALL
    SELECT format('relation | %s | column %s acl | %s', r.ident, att.attname, acl.txt)
      FROM rels r
      JOIN pg_catalog.pg_attribute att ON att.attrelid = r.oid AND att.attnum > 0 AND att.attacl IS NOT NULL
     CROSS JOIN LATERAL (
        SELECT format('%s: %s%s (grantor %s)',
                      CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE pg_catalog.pg_get_userbyid(x.grantee) END,
                      x.privilege_type, CASE WHEN x.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END,
                      pg_catalog.pg_get_userbyid(x.grantor)) AS txt
          FROM pg_catalog.aclexplode(att.attacl) x) acl
    UNION ALL
    SELECT format('relation | %s | constraint %s | %s', r.ident, con.conname, pg_catalog.pg_get_constraintdef(con.oid))
      FROM rels r JOIN pg_catalog.pg_constraint con ON con.conrelid = r.oid
    UNION ALL
    SELECT format('relation | %s | index %s | %s%s', r.ident, ic.relname, pg_catalog.pg_get_indexdef(i.indexrelid),
                  CASE WHEN i.indisclustered THEN ' (clustered)' ELSE '' END)
      FROM rels r
      JOIN pg_catalog.pg_index i ON i.indrelid = r.oid
      JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
    UNION ALL
    SELECT format('relation | %s | trigger %s | %s (enabled %s)', r.ident, tg.tgname,
                  pg_catalog.pg_get_triggerdef(tg.oid), tg.tgenabled)
      FROM rels r JOIN pg_catalog.pg_trigger tg ON tg.tgrelid = r.oid AND NOT tg.tgisinternal
    UNION ALL
    SELECT format('relation | %s | policy %s | %s %s to %s using (%s) with check (%s)', r.ident, pol.polname,
                  CASE WHEN pol.polpermissive THEN 'PERMISSIVE' ELSE 'RESTRICTIVE' END, pol.polcmd,
                  (SELECT pg_catalog.string_agg(rn, ', ' ORDER BY rn COLLATE "C")
                     FROM (SELECT CASE WHEN ro = 0 THEN 'PUBLIC' ELSE pg_catalog.pg_get_userbyid(ro)::text END
                             FROM unnest(pol.polroles) ro) AS roles(rn)),
                  coalesce(pg_catalog.pg_get_expr(pol.polqual, pol.polrelid), ''),
                  coalesce(pg_catalog.pg_get_expr(pol.polwithcheck, pol.polrelid), ''))
      FROM rels r JOIN pg_catalog.pg_policy pol ON pol.polrelid = r.oid
    UNION ALL
    SELECT format('relation | %s | rule %s | %s', r.ident, rw.rulename,
                  pg_catalog.regexp_replace(pg_catalog.pg_get_ruledef(rw.oid), '\s+', ' ', 'g'))
      FROM rels r JOIN pg_catalog.pg_rewrite rw ON rw.ev_class = r.oid AND rw.rulename <> '_RETURN'
    UNION ALL
    SELECT format('relation | %s | definition | %s', r.ident,
                  pg_catalog.regexp_replace(pg_catalog.pg_get_viewdef(r.oid), '\s+', ' ', 'g'))
      FROM rels r WHERE r.relkind IN ('v', 'm')
    UNION ALL
    SELECT format('relation | %s | sequence | %s start %s increment %s min %s max %s cache %s%s', r.ident,
                  pg_catalog.format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement, s.seqmin, s.seqmax,
                  s.seqcache, CASE WHEN s.seqcycle THEN ' cycle' ELSE '' END)
      FROM rels r JOIN pg_catalog.pg_sequence s ON s.seqrelid = r.oid
    UNION ALL
    SELECT format('relation | %s | owned by | %s.%s (%s)', r.ident, d.refobjid::regclass, att.attname, d.deptype)
      FROM rels r
      JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = r.oid
                                 AND d.refclassid = 'pg_catalog.pg_class'::regclass AND d.deptype IN ('a', 'i')
                                 AND d.refobjsubid > 0
      JOIN pg_catalog.pg_attribute att ON att.attrelid = d.refobjid AND att.attnum = d.refobjsubid
     WHERE r.relkind = 'S'
    UNION ALL
    SELECT format('relation | %s | acl | %s', r.ident, acl.txt)
      FROM rels r
     CROSS JOIN LATERAL (
        SELECT format('%s: %s%s (grantor %s)',
                      CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE pg_catalog.pg_get_userbyid(x.grantee) END,
                      x.privilege_type, CASE WHEN x.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END,
                      pg_catalog.pg_get_userbyid(x.grantor)) AS txt
          FROM pg_catalog.aclexplode(coalesce(r.relacl, pg_catalog.acldefault(
                 (CASE WHEN r.relkind = 'S' THEN 's' ELSE 'r' END)::"char", r.relowner))) x) acl
)
SELECT line FROM lines ORDER BY line COLLATE "C";
