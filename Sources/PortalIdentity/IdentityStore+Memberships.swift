import Foundation
import PortalRPC
import SQLKit

extension IdentityStore {
    /// The organizations whose members include the email of `memberID` (of `organizationID`), by
    /// name; `NOT_FOUND` when that member does not exist there.
    func memberships(organizationID: String, memberID: String) async throws -> [MembershipRecord] {
        try await database.read { database in
            let member = try await Self.member(database, organizationID: organizationID, memberID: memberID)
            return try await database.raw(
                """
                SELECT m.org_id, m.role, o.name AS org_name
                FROM members m JOIN organizations o ON o.id = m.org_id
                WHERE m.email_key = \(bind: IdentityValidation.emailKey(member.email))
                ORDER BY lower(o.name), o.id
                """
            ).all().map(MembershipRecord.init(row:))
        }
    }
}
