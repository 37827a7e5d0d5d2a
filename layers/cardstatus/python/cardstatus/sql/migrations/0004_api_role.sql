-- Read-only login role for the API function. On RDS it authenticates with IAM tokens through
-- RDS Proxy (rds_iam), so it has no password anywhere. The name matches cdk.json
-- `database.apiUser`. Roles are cluster-wide, hence the existence checks.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'cardstatus_api') THEN
        CREATE ROLE cardstatus_api LOGIN;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'rds_iam') THEN
        GRANT rds_iam TO cardstatus_api;
    END IF;
END
$$;

GRANT USAGE ON SCHEMA public TO cardstatus_api;
GRANT SELECT ON card, card_event TO cardstatus_api;

-- A role-level timeout instead of a session SET (which would pin RDS Proxy connections).
ALTER ROLE cardstatus_api SET statement_timeout = '5s';
