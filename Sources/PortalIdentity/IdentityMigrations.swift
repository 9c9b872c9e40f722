import PortalStorage

/// The identity database schema, one migration per change.
enum IdentityMigrations {
    static let all: [SQLMigration] = [
        SQLMigration(
            version: 1, name: "organizations, members, invites, sessions, outbox",
            statements: [
                """
                CREATE TABLE organizations (
                    id TEXT PRIMARY KEY,
                    name TEXT NOT NULL,
                    idempotency_key TEXT NOT NULL UNIQUE,
                    first_invite_id TEXT NOT NULL,
                    created_at BIGINT NOT NULL
                )
                """,
                """
                CREATE TABLE members (
                    id TEXT PRIMARY KEY,
                    org_id TEXT NOT NULL REFERENCES organizations(id),
                    email TEXT NOT NULL,
                    email_key TEXT NOT NULL,
                    first_name TEXT NOT NULL,
                    last_name TEXT NOT NULL,
                    phone TEXT NOT NULL,
                    role TEXT NOT NULL,
                    password_hash TEXT NOT NULL,
                    created_at BIGINT NOT NULL
                )
                """,
                "CREATE UNIQUE INDEX members_org_email ON members (org_id, email_key)",
                """
                CREATE TABLE invites (
                    id TEXT PRIMARY KEY,
                    org_id TEXT NOT NULL REFERENCES organizations(id),
                    email TEXT NOT NULL,
                    email_key TEXT NOT NULL,
                    phone TEXT NOT NULL,
                    role TEXT NOT NULL,
                    secret_hash BLOB NOT NULL UNIQUE,
                    added_on BIGINT NOT NULL,
                    expires_at BIGINT NOT NULL,
                    invited_by TEXT NOT NULL,
                    invited_by_member_id TEXT NOT NULL,
                    state TEXT NOT NULL
                )
                """,
                "CREATE UNIQUE INDEX invites_pending_email ON invites (org_id, email_key) WHERE state = 'pending'",
                "CREATE INDEX invites_org_state ON invites (org_id, state, added_on)",
                """
                CREATE TABLE sessions (
                    token_hash BLOB PRIMARY KEY,
                    member_id TEXT NOT NULL REFERENCES members(id) ON DELETE CASCADE,
                    org_id TEXT NOT NULL,
                    created_at BIGINT NOT NULL,
                    expires_at BIGINT NOT NULL,
                    last_seen_at BIGINT NOT NULL
                )
                """,
                "CREATE INDEX sessions_member ON sessions (member_id)",
            ] + Outbox.schema,
            postgres: [
                """
                CREATE TABLE organizations (
                    id TEXT PRIMARY KEY,
                    name TEXT NOT NULL,
                    idempotency_key TEXT NOT NULL UNIQUE,
                    first_invite_id TEXT NOT NULL,
                    created_at BIGINT NOT NULL
                )
                """,
                """
                CREATE TABLE members (
                    id TEXT PRIMARY KEY,
                    org_id TEXT NOT NULL REFERENCES organizations(id),
                    email TEXT NOT NULL,
                    email_key TEXT NOT NULL,
                    first_name TEXT NOT NULL,
                    last_name TEXT NOT NULL,
                    phone TEXT NOT NULL,
                    role TEXT NOT NULL,
                    password_hash TEXT NOT NULL,
                    created_at BIGINT NOT NULL
                )
                """,
                "CREATE UNIQUE INDEX members_org_email ON members (org_id, email_key)",
                """
                CREATE TABLE invites (
                    id TEXT PRIMARY KEY,
                    org_id TEXT NOT NULL REFERENCES organizations(id),
                    email TEXT NOT NULL,
                    email_key TEXT NOT NULL,
                    phone TEXT NOT NULL,
                    role TEXT NOT NULL,
                    secret_hash BYTEA NOT NULL UNIQUE,
                    added_on BIGINT NOT NULL,
                    expires_at BIGINT NOT NULL,
                    invited_by TEXT NOT NULL,
                    invited_by_member_id TEXT NOT NULL,
                    state TEXT NOT NULL
                )
                """,
                "CREATE UNIQUE INDEX invites_pending_email ON invites (org_id, email_key) WHERE state = 'pending'",
                "CREATE INDEX invites_org_state ON invites (org_id, state, added_on)",
                """
                CREATE TABLE sessions (
                    token_hash BYTEA PRIMARY KEY,
                    member_id TEXT NOT NULL REFERENCES members(id) ON DELETE CASCADE,
                    org_id TEXT NOT NULL,
                    created_at BIGINT NOT NULL,
                    expires_at BIGINT NOT NULL,
                    last_seen_at BIGINT NOT NULL
                )
                """,
                "CREATE INDEX sessions_member ON sessions (member_id)",
            ] + Outbox.postgresSchema),
        SQLMigration(
            version: 2, name: "sign-in by email alone: organization choices, members by email",
            statements: [
                // One row per organization a sign-in may continue in; the token is stored only hashed,
                // works once, and is dropped once it has expired.
                """
                CREATE TABLE login_choices (
                    token_hash BLOB NOT NULL,
                    org_id TEXT NOT NULL,
                    member_id TEXT NOT NULL REFERENCES members(id) ON DELETE CASCADE,
                    expires_at BIGINT NOT NULL,
                    PRIMARY KEY (token_hash, org_id)
                )
                """,
                "CREATE INDEX login_choices_expiry ON login_choices (expires_at)",
                "CREATE INDEX login_choices_member ON login_choices (member_id)",
                "CREATE INDEX members_email ON members (email_key)",
            ],
            postgres: [
                """
                CREATE TABLE login_choices (
                    token_hash BYTEA NOT NULL,
                    org_id TEXT NOT NULL,
                    member_id TEXT NOT NULL REFERENCES members(id) ON DELETE CASCADE,
                    expires_at BIGINT NOT NULL,
                    PRIMARY KEY (token_hash, org_id)
                )
                """,
                "CREATE INDEX login_choices_expiry ON login_choices (expires_at)",
                "CREATE INDEX login_choices_member ON login_choices (member_id)",
                "CREATE INDEX members_email ON members (email_key)",
            ]),
        SQLMigration(
            version: 3, name: "outbox messages carry the trace context of the change they record",
            statements: Outbox.traceContextColumn),
        SQLMigration(
            version: 4, name: "notices mailed to Admins, by id",
            statements: [
                "CREATE TABLE notices (notice_id TEXT PRIMARY KEY, org_id TEXT NOT NULL, received_at BIGINT NOT NULL)"
            ]),
    ]
}
