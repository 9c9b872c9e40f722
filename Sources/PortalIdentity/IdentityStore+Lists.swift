import PortalAPI
import PortalRPC
import PortalStorage
import SQLKit

extension IdentityStore {
    /// Sortable member columns (case-insensitive for text).
    static let memberColumns = [
        SortColumn("first_name", expression: "lower(first_name)", isText: true),
        SortColumn("last_name", expression: "lower(last_name)", isText: true),
        SortColumn("email", expression: "email_key", isText: true),
        SortColumn("role", isText: true),
        SortColumn("phone", isText: true),
        SortColumn("created_at", isText: false),
    ]

    /// Sortable invite columns.
    static let inviteColumns = [
        SortColumn("added_on", isText: false),
        SortColumn("email", expression: "email_key", isText: true),
        SortColumn("role", isText: true),
    ]

    /// A page of members matching the filters, and how many match in all.
    func listMembers(
        organizationID: String, paging: ListPaging, role: MemberRole?,
        searchField: Portal_Identity_V1_MemberSearchField, searchText: String
    ) async throws -> (members: [MemberRecord], nextPageToken: String, totalSize: Int64) {
        try await database.read { database in
            _ = try await Self.organization(database, id: organizationID)
            var filter: SQLQueryString = "org_id = \(bind: organizationID)"
            if let role { filter = "\(filter) AND role = \(bind: role.rawValue)" }
            if !searchText.isEmpty {
                let pattern = containsPattern(searchText)
                let columns: [String] =
                    switch searchField {
                    case .name: ["first_name", "last_name"]
                    case .firstName: ["first_name"]
                    case .lastName: ["last_name"]
                    case .email: ["email_key"]
                    case .phone: ["phone"]
                    default: ["first_name", "last_name", "email_key", "phone"]
                    }
                var conditions: SQLQueryString = ""
                for (index, column) in columns.enumerated() {
                    let separator = index == 0 ? "" : " OR "
                    conditions =
                        "\(conditions)\(unsafeRaw: separator)lower(\(unsafeRaw: column)) LIKE \(bind: pattern) ESCAPE '\\'"
                }
                filter = "\(filter) AND (\(conditions))"
            }
            return try await Self.page(
                database, table: "members", columns: MemberRecord.columns, filter: filter, paging: paging,
                make: MemberRecord.init(row:))
        }
    }

    /// A page of pending (and expired, not yet resent) invites, and how many match in all.
    func listInvites(
        organizationID: String, paging: ListPaging, role: MemberRole?, emailText: String
    )
        async throws -> (invites: [InviteRecord], nextPageToken: String, totalSize: Int64)
    {
        try await database.read { database in
            _ = try await Self.organization(database, id: organizationID)
            var filter: SQLQueryString = "org_id = \(bind: organizationID) AND state = 'pending'"
            if let role { filter = "\(filter) AND role = \(bind: role.rawValue)" }
            if !emailText.isEmpty {
                filter = "\(filter) AND email_key LIKE \(bind: containsPattern(emailText)) ESCAPE '\\'"
            }
            return try await Self.page(
                database, table: "invites", columns: InviteRecord.columns, filter: filter, paging: paging,
                make: InviteRecord.init(row:))
        }
    }

    /// Runs a keyset-paged query and its count.
    private static func page<Record>(
        _ database: any SQLDatabase, table: String, columns: String, filter: SQLQueryString, paging: ListPaging,
        make: (any SQLRow) throws -> Record
    ) async throws -> ([Record], String, Int64) {
        let total =
            try await database.raw("SELECT COUNT(*) AS n FROM \(unsafeRaw: table) WHERE \(filter)").first()?
            .decode(column: "n", as: Int64.self) ?? 0
        var condition = filter
        if let keyset = paging.keysetCondition(idColumn: "id") { condition = "\(condition) AND \(keyset)" }
        let rows = try await database.raw(
            """
            SELECT \(unsafeRaw: columns), \(paging.sortKeyColumn) FROM \(unsafeRaw: table) WHERE \(condition) \(paging.orderAndLimit(idColumn: "id"))
            """
        ).all()
        let (page, next) = try paging.page(rows, idColumn: "id")
        return (try page.map(make), next, total)
    }
}
