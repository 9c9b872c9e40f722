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
        organizationID: String, paging: ListPaging, role: MemberRole?, searchField: Portal_Identity_V1_MemberSearchField, searchText: String
    ) async throws -> (members: [MemberRecord], nextPageToken: String, totalSize: Int64) {
        try await store.read { database in
            _ = try await Self.organization(database, id: organizationID)
            var filter: SQLQueryString = "org_id = \(bind: organizationID)"
            if let role { filter = "\(filter) AND role = \(bind: role.rawValue)" }
            if !searchText.isEmpty {
                let pattern = containsPattern(searchText)
                let columns: [String] = switch searchField {
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
                    conditions = "\(conditions)\(unsafeRaw: separator)lower(\(unsafeRaw: column)) LIKE \(bind: pattern) ESCAPE '\\'"
                }
                filter = "\(filter) AND (\(conditions))"
            }
            return try await Self.page(
                database, table: "members", columns: MemberRecord.columns, filter: filter, paging: paging,
                make: MemberRecord.init(row:)) { member in
                switch paging.column.name {
                case "first_name": .text(member.firstName.lowercased())
                case "last_name": .text(member.lastName.lowercased())
                case "email": .text(member.email.lowercased())
                case "role": .text(member.role.rawValue)
                case "phone": .text(member.phone)
                default: .integer(member.createdAt)
                }
            }
        }
    }

    /// A page of pending (and expired, not yet resent) invites, and how many match in all.
    func listInvites(organizationID: String, paging: ListPaging, role: MemberRole?, emailText: String)
        async throws -> (invites: [InviteRecord], nextPageToken: String, totalSize: Int64)
    {
        try await store.read { database in
            _ = try await Self.organization(database, id: organizationID)
            var filter: SQLQueryString = "org_id = \(bind: organizationID) AND state = 'pending'"
            if let role { filter = "\(filter) AND role = \(bind: role.rawValue)" }
            if !emailText.isEmpty { filter = "\(filter) AND email_key LIKE \(bind: containsPattern(emailText)) ESCAPE '\\'" }
            return try await Self.page(
                database, table: "invites", columns: InviteRecord.columns, filter: filter, paging: paging,
                make: InviteRecord.init(row:)) { invite in
                switch paging.column.name {
                case "email": .text(invite.email.lowercased())
                case "role": .text(invite.role.rawValue)
                default: .integer(invite.addedOn)
                }
            }
        }
    }

    /// Runs a keyset-paged query and its count.
    private static func page<Record>(
        _ database: any SQLDatabase, table: String, columns: String, filter: SQLQueryString, paging: ListPaging,
        make: (any SQLRow) throws -> Record, key: (Record) -> SortValue
    ) async throws -> ([Record], String, Int64) where Record: HasID {
        let total = try await database.raw("SELECT COUNT(*) AS n FROM \(unsafeRaw: table) WHERE \(filter)").first()?
            .decode(column: "n", as: Int64.self) ?? 0
        var condition = filter
        if let keyset = paging.keysetCondition(idColumn: "id") { condition = "\(condition) AND \(keyset)" }
        let rows = try await database.raw("""
            SELECT \(unsafeRaw: columns) FROM \(unsafeRaw: table) WHERE \(condition) \(paging.orderAndLimit(idColumn: "id"))
            """).all().map(make)
        let (page, next) = paging.page(rows) { (key($0), $0.id) }
        return (page, next, total)
    }
}

/// A record with a string id, the tie-breaker of every sort.
protocol HasID { var id: String { get } }
extension MemberRecord: HasID {}
extension InviteRecord: HasID {}
