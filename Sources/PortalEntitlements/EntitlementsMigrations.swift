import PortalStorage

/// The entitlements database schema.
enum EntitlementsMigrations {
    static let all: [SQLMigration] = [
        SQLMigration(
            version: 1, name: "catalog, entitlements, lines, activations, outbox",
            statements: [
                """
                CREATE TABLE products (
                    id TEXT PRIMARY KEY,
                    name TEXT NOT NULL,
                    license_type TEXT NOT NULL,
                    description TEXT NOT NULL,
                    deployment_type TEXT NOT NULL,
                    updated_at BIGINT NOT NULL
                )
                """,
                """
                CREATE TABLE entitlements (
                    id TEXT PRIMARY KEY,
                    org_id TEXT NOT NULL,
                    sales_order TEXT NOT NULL,
                    po_number TEXT NOT NULL,
                    order_date BIGINT NOT NULL,
                    expiration_date BIGINT,
                    transferred_at BIGINT NOT NULL,
                    expiry_recorded_at BIGINT
                )
                """,
                "CREATE INDEX entitlements_org_order ON entitlements (org_id, order_date, id)",
                "CREATE INDEX entitlements_expiry ON entitlements (expiry_recorded_at, expiration_date)",
                """
                CREATE TABLE entitlement_lines (
                    entitlement_id TEXT NOT NULL REFERENCES entitlements(id),
                    product_id TEXT NOT NULL REFERENCES products(id),
                    position INTEGER NOT NULL,
                    available BIGINT NOT NULL,
                    activated BIGINT NOT NULL,
                    PRIMARY KEY (entitlement_id, product_id),
                    CHECK (available > 0 AND activated >= 0 AND activated <= available)
                )
                """,
                "CREATE INDEX entitlement_lines_product ON entitlement_lines (product_id)",
                """
                CREATE TABLE activations (
                    id TEXT PRIMARY KEY,
                    org_id TEXT NOT NULL,
                    entitlement_id TEXT NOT NULL,
                    product_id TEXT NOT NULL,
                    product_name TEXT NOT NULL,
                    quantity BIGINT NOT NULL,
                    project_name TEXT NOT NULL,
                    project_manager TEXT NOT NULL,
                    serial_number TEXT NOT NULL,
                    activated_by TEXT NOT NULL,
                    activated_by_member_id TEXT NOT NULL,
                    activated_at BIGINT NOT NULL,
                    idempotency_key TEXT NOT NULL
                )
                """,
                "CREATE UNIQUE INDEX activations_idempotency ON activations (org_id, idempotency_key)",
                "CREATE INDEX activations_org_date ON activations (org_id, activated_at, id)",
            ] + Outbox.schema, postgres: postgresSchema),
        SQLMigration(
            version: 2, name: "activation counters and an index per sortable column",
            statements: [
                "CREATE TABLE activation_counts (org_id TEXT NOT NULL, product_id TEXT NOT NULL, n BIGINT NOT NULL, PRIMARY KEY (org_id, product_id))",
                "INSERT INTO activation_counts SELECT org_id, product_id, COUNT(*) FROM activations GROUP BY org_id, product_id",
                "CREATE INDEX activations_org_product_date ON activations (org_id, product_id, activated_at, id)",
                "CREATE INDEX activations_org_product_name ON activations (org_id, lower(product_name), id)",
                "CREATE INDEX activations_org_quantity ON activations (org_id, quantity, id)",
                "CREATE INDEX activations_org_project ON activations (org_id, lower(project_name), id)",
                "CREATE INDEX activations_org_manager ON activations (org_id, lower(project_manager), id)",
                "CREATE INDEX activations_org_activated_by ON activations (org_id, lower(activated_by), id)",
                "CREATE INDEX activations_org_entitlement ON activations (org_id, entitlement_id, id)",
                "CREATE INDEX activations_org_serial ON activations (org_id, lower(serial_number), id)",
            ], postgres: []),
        SQLMigration(version: 3, name: "rebuild indexes with Unicode lower()", statements: ["REINDEX"], postgres: []),
        SQLMigration(
            version: 4, name: "substring index over the activations log's text columns",
            statements: [
                // A trigram index finds any substring of 3+ characters without scanning; the document holds
                // the searchable columns separated by char(1) (so no match spans two of them) and the
                // organization as `o<hex>z` (so one organization's token is never inside another's).
                "CREATE VIRTUAL TABLE activations_fts USING fts5(doc, org, tokenize='trigram case_sensitive 0', content='')",
                """
                INSERT INTO activations_fts (rowid, doc, org)
                SELECT rowid, product_name || char(1) || project_name || char(1) || project_manager || char(1) || activated_by || char(1)
                              || serial_number || char(1) || entitlement_id, 'o' || hex(org_id) || 'z'
                FROM activations
                """,
                """
                CREATE TRIGGER activations_index_text AFTER INSERT ON activations BEGIN
                    INSERT INTO activations_fts (rowid, doc, org)
                    VALUES (new.rowid, new.product_name || char(1) || new.project_name || char(1) || new.project_manager || char(1)
                            || new.activated_by || char(1) || new.serial_number || char(1) || new.entitlement_id, 'o' || hex(new.org_id) || 'z');
                END
                """,
            ], postgres: []),
        SQLMigration(
            version: 5, name: "one lowercase search document per activation, indexed by trigrams",
            statements: [
                // `search_doc` holds the searchable columns, lowercased, separated by char(1) so no match
                // spans two of them: a search checks one LIKE per row instead of six lower() calls. The
                // trigram index over it has no tenant token; tenancy is checked on the activations, as
                // for every other query.
                "ALTER TABLE activations ADD COLUMN search_doc TEXT NOT NULL DEFAULT ''",
                """
                UPDATE activations SET search_doc = lower(product_name || char(1) || project_name || char(1) || project_manager || char(1)
                                                          || activated_by || char(1) || serial_number || char(1) || entitlement_id)
                """,
                "DROP TRIGGER activations_index_text",
                "DROP TABLE activations_fts",
                "CREATE VIRTUAL TABLE activations_search USING fts5(search_doc, tokenize='trigram case_sensitive 0', content='')",
                "INSERT INTO activations_search (rowid, search_doc) SELECT rowid, search_doc FROM activations",
                """
                CREATE TRIGGER activations_index_search AFTER INSERT ON activations BEGIN
                    INSERT INTO activations_search (rowid, search_doc) VALUES (new.rowid, new.search_doc);
                END
                """,
            ], postgres: []),
        SQLMigration(
            version: 6, name: "fewer, larger merges of the search index",
            statements: [
                // Every activation batch adds a segment to the index; merging 8 at a time instead of 4
                // writes each posting fewer times (about 20% more activations a second) for a few more
                // segments per lookup.
                "INSERT INTO activations_search (activations_search, rank) VALUES ('automerge', 8)"
            ], postgres: []),
        SQLMigration(
            version: 7, name: "the date index carries the search document",
            statements: [
                // A search with dense matches walks the log newest first and checks each row; with the
                // search document in the index the check needs no table lookup, only the matches do.
                "CREATE INDEX activations_org_date_search ON activations (org_id, activated_at, id, search_doc)",
                "DROP INDEX activations_org_date",
            ], postgres: []),
        SQLMigration(
            version: 8, name: "per-product totals for each organization",
            statements: [
                // Licenses available and activated, and activations, per organization and product: the
                // products list, the summary and the log's total_size read these few rows instead of
                // summing every entitlement line. Transfers and activations keep them in their transaction.
                """
                CREATE TABLE product_totals (
                    org_id TEXT NOT NULL,
                    product_id TEXT NOT NULL,
                    available BIGINT NOT NULL,
                    activated BIGINT NOT NULL,
                    activations BIGINT NOT NULL,
                    PRIMARY KEY (org_id, product_id)
                )
                """,
                """
                INSERT INTO product_totals (org_id, product_id, available, activated, activations)
                SELECT e.org_id, l.product_id, SUM(l.available), SUM(l.activated),
                       COALESCE((SELECT c.n FROM activation_counts c WHERE c.org_id = e.org_id AND c.product_id = l.product_id), 0)
                FROM entitlement_lines l JOIN entitlements e ON e.id = l.entitlement_id
                GROUP BY e.org_id, l.product_id
                """,
                "DROP TABLE activation_counts",
            ], postgres: []),
        SQLMigration(
            version: 9, name: "entitlements carry their listing columns",
            statements: [
                // The entitlements list sorts by the first product (by name) and the total available;
                // kept on the entitlement (refreshed by transfers and catalog changes) they need no
                // per-row subqueries.
                "ALTER TABLE entitlements ADD COLUMN first_product_name TEXT NOT NULL DEFAULT ''",
                "ALTER TABLE entitlements ADD COLUMN first_product_description TEXT NOT NULL DEFAULT ''",
                "ALTER TABLE entitlements ADD COLUMN total_available BIGINT NOT NULL DEFAULT 0",
                """
                UPDATE entitlements SET
                    first_product_name = COALESCE((SELECT p.name FROM entitlement_lines l JOIN products p ON p.id = l.product_id
                                                   WHERE l.entitlement_id = entitlements.id ORDER BY lower(p.name), p.id LIMIT 1), ''),
                    first_product_description = COALESCE((SELECT p.description FROM entitlement_lines l JOIN products p ON p.id = l.product_id
                                                          WHERE l.entitlement_id = entitlements.id ORDER BY lower(p.name), p.id LIMIT 1), ''),
                    total_available = COALESCE((SELECT SUM(l.available) FROM entitlement_lines l WHERE l.entitlement_id = entitlements.id), 0)
                """,
            ], postgres: []),
        SQLMigration(
            version: 10, name: "activations keyed by a stable integer sequence",
            statements: [
                // The search index is keyed by the activation's row id; a table without an INTEGER
                // PRIMARY KEY may have its row ids renumbered by VACUUM, which would silently detach it.
                // `seq` keeps today's row ids, so the index stays valid as it is.
                """
                CREATE TABLE activations_keyed (
                    seq INTEGER PRIMARY KEY,
                    id TEXT NOT NULL UNIQUE,
                    org_id TEXT NOT NULL,
                    entitlement_id TEXT NOT NULL,
                    product_id TEXT NOT NULL,
                    product_name TEXT NOT NULL,
                    quantity BIGINT NOT NULL,
                    project_name TEXT NOT NULL,
                    project_manager TEXT NOT NULL,
                    serial_number TEXT NOT NULL,
                    activated_by TEXT NOT NULL,
                    activated_by_member_id TEXT NOT NULL,
                    activated_at BIGINT NOT NULL,
                    idempotency_key TEXT NOT NULL,
                    search_doc TEXT NOT NULL
                )
                """,
                """
                INSERT INTO activations_keyed (seq, id, org_id, entitlement_id, product_id, product_name, quantity, project_name, project_manager,
                                               serial_number, activated_by, activated_by_member_id, activated_at, idempotency_key, search_doc)
                SELECT rowid, id, org_id, entitlement_id, product_id, product_name, quantity, project_name, project_manager,
                       serial_number, activated_by, activated_by_member_id, activated_at, idempotency_key, search_doc
                FROM activations ORDER BY rowid
                """,
                "DROP TABLE activations",
                "ALTER TABLE activations_keyed RENAME TO activations",
                "CREATE UNIQUE INDEX activations_idempotency ON activations (org_id, idempotency_key)",
                "CREATE INDEX activations_org_date_search ON activations (org_id, activated_at, id, search_doc)",
                "CREATE INDEX activations_org_product_date ON activations (org_id, product_id, activated_at, id)",
                "CREATE INDEX activations_org_product_name ON activations (org_id, lower(product_name), id)",
                "CREATE INDEX activations_org_quantity ON activations (org_id, quantity, id)",
                "CREATE INDEX activations_org_project ON activations (org_id, lower(project_name), id)",
                "CREATE INDEX activations_org_manager ON activations (org_id, lower(project_manager), id)",
                "CREATE INDEX activations_org_activated_by ON activations (org_id, lower(activated_by), id)",
                "CREATE INDEX activations_org_entitlement ON activations (org_id, entitlement_id, id)",
                "CREATE INDEX activations_org_serial ON activations (org_id, lower(serial_number), id)",
                """
                CREATE TRIGGER activations_index_search AFTER INSERT ON activations BEGIN
                    INSERT INTO activations_search (rowid, search_doc) VALUES (new.seq, new.search_doc);
                END
                """,
            ], postgres: []),
        SQLMigration(
            version: 11, name: "outbox messages carry the trace context of the change they record",
            statements: Outbox.traceContextColumn),
        SQLMigration(
            version: 12, name: "statistics of the activations' search trigrams, for choosing a search's plan",
            statements: [],
            postgres: [
                // ANALYZE keeps the most common trigrams and their frequencies (pg_stats_ext_exprs),
                // which tell a search which of its trigrams are rare enough to look up (PostgreSQL 14+).
                "CREATE STATISTICS activations_trigrams ON (show_trgm(search_doc)) FROM activations",
                "ANALYZE activations",
            ]),
        SQLMigration(
            version: 13, name: "expiry notices sent, once per entitlement and threshold",
            statements: [
                """
                CREATE TABLE expiry_notices (
                    entitlement_id TEXT NOT NULL,
                    threshold_days INTEGER NOT NULL,
                    noticed_at BIGINT NOT NULL,
                    PRIMARY KEY (entitlement_id, threshold_days)
                )
                """
            ]),
    ]

    /// Today's schema in PostgreSQL's terms, created by migration 1: PostgreSQL support came after
    /// migrations 2–10, which reshaped SQLite files step by step and have nothing to do there.
    static let postgresSchema: [String] =
        [
            "CREATE EXTENSION IF NOT EXISTS pg_trgm",
            """
            CREATE TABLE products (
                id TEXT PRIMARY KEY,
                name TEXT NOT NULL,
                license_type TEXT NOT NULL,
                description TEXT NOT NULL,
                deployment_type TEXT NOT NULL,
                updated_at BIGINT NOT NULL
            )
            """,
            """
            CREATE TABLE entitlements (
                id TEXT PRIMARY KEY,
                org_id TEXT NOT NULL,
                sales_order TEXT NOT NULL,
                po_number TEXT NOT NULL,
                order_date BIGINT NOT NULL,
                expiration_date BIGINT,
                transferred_at BIGINT NOT NULL,
                expiry_recorded_at BIGINT,
                first_product_name TEXT NOT NULL DEFAULT '',
                first_product_description TEXT NOT NULL DEFAULT '',
                total_available BIGINT NOT NULL DEFAULT 0
            )
            """,
            "CREATE INDEX entitlements_org_order ON entitlements (org_id, order_date, id)",
            "CREATE INDEX entitlements_expiry ON entitlements (expiry_recorded_at, expiration_date)",
            """
            CREATE TABLE entitlement_lines (
                entitlement_id TEXT NOT NULL REFERENCES entitlements(id),
                product_id TEXT NOT NULL REFERENCES products(id),
                position INTEGER NOT NULL,
                available BIGINT NOT NULL,
                activated BIGINT NOT NULL,
                PRIMARY KEY (entitlement_id, product_id),
                CHECK (available > 0 AND activated >= 0 AND activated <= available)
            )
            """,
            "CREATE INDEX entitlement_lines_product ON entitlement_lines (product_id)",
            """
            CREATE TABLE activations (
                seq BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
                id TEXT NOT NULL UNIQUE,
                org_id TEXT NOT NULL,
                entitlement_id TEXT NOT NULL,
                product_id TEXT NOT NULL,
                product_name TEXT NOT NULL,
                quantity BIGINT NOT NULL,
                project_name TEXT NOT NULL,
                project_manager TEXT NOT NULL,
                serial_number TEXT NOT NULL,
                activated_by TEXT NOT NULL,
                activated_by_member_id TEXT NOT NULL,
                activated_at BIGINT NOT NULL,
                idempotency_key TEXT NOT NULL,
                search_doc TEXT NOT NULL
            )
            """,
            "CREATE UNIQUE INDEX activations_idempotency ON activations (org_id, idempotency_key)",
            "CREATE INDEX activations_org_date ON activations (org_id, activated_at, id)",
            "CREATE INDEX activations_org_product_date ON activations (org_id, product_id, activated_at, id)",
            "CREATE INDEX activations_org_product_name ON activations (org_id, lower(product_name), id)",
            "CREATE INDEX activations_org_quantity ON activations (org_id, quantity, id)",
            "CREATE INDEX activations_org_project ON activations (org_id, lower(project_name), id)",
            "CREATE INDEX activations_org_manager ON activations (org_id, lower(project_manager), id)",
            "CREATE INDEX activations_org_activated_by ON activations (org_id, lower(activated_by), id)",
            "CREATE INDEX activations_org_entitlement ON activations (org_id, entitlement_id, id)",
            "CREATE INDEX activations_org_serial ON activations (org_id, lower(serial_number), id)",
            "CREATE INDEX activations_search ON activations USING GIN (search_doc gin_trgm_ops)",
            """
            CREATE TABLE product_totals (
                org_id TEXT NOT NULL,
                product_id TEXT NOT NULL,
                available BIGINT NOT NULL,
                activated BIGINT NOT NULL,
                activations BIGINT NOT NULL,
                PRIMARY KEY (org_id, product_id)
            )
            """,
        ] + Outbox.postgresSchema
}
