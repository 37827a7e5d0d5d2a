-- The api role's only writes are the lookup audit rows (0019) and the lookup mismatch budget
-- (0012), one short transaction per lookup. With synchronous commit each of them waited for
-- the WAL flush (measured: +2 ms at p50 per lookup, bench/api_bench.py `audit_p50_ms`). Off
-- for this role only (a role-level setting: no session SET, which would pin RDS Proxy
-- connections): a commit returns before the flush, and only a crash of the database server
-- itself can lose the last fraction of a second of audit rows (wal_writer_delay, 200 ms by
-- default, times three at worst). Reads, and every other role, are unaffected.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'cardstatus_api') THEN
        ALTER ROLE cardstatus_api SET synchronous_commit = off;
    END IF;
END
$$;
