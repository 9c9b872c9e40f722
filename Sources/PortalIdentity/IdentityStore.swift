import Foundation
import PortalAPI
import PortalAuditOutbox
import PortalCrypto
import PortalRPC
import PortalStorage
import SQLKit

/// The identity service's data: organizations, members, invites and sessions, with every change's
/// audit event and invite mail written to the outbox in the same transaction.
///
/// Rules that must hold under concurrency (one pending invite per email, the last Admin) are checked
/// inside write transactions and backed by unique indexes.
final class IdentityStore: Sendable {
    /// How long an invite secret works.
    static let inviteLifetime: Milliseconds = 7 * 24 * 3600 * 1000

    let database: ServiceDatabase
    let sessionPolicy: SessionPolicy

    init(database: ServiceDatabase, sessionPolicy: SessionPolicy) {
        self.database = database
        self.sessionPolicy = sessionPolicy
    }

    // MARK: Organizations

    /// Creates an organization and invites its first Admin; a repeated idempotency key returns the first result.
    func createOrganization(
        name: String, firstAdminEmail: String, idempotencyKey: String, now: Milliseconds
    )
        async throws -> (OrganizationRecord, InviteRecord)
    {
        try await database.transaction { database in
            if let existing = try await database.raw(
                "SELECT * FROM organizations WHERE idempotency_key = \(bind: idempotencyKey)"
            ).first() {
                // The first result again, whatever became of the invite since (accepted, revoked).
                let organization = try OrganizationRecord(row: existing)
                let row = try await database.raw(
                    """
                    SELECT \(unsafeRaw: InviteRecord.columns) FROM invites WHERE id = \(bind: organization.firstInviteID)
                    """
                ).first()!
                let invite = try InviteRecord(row: row)
                // A key stands for one whole request.
                let differing =
                    organization.name != name
                    ? "name"
                    : IdentityValidation.emailKey(invite.email) != IdentityValidation.emailKey(firstAdminEmail)
                        ? "first_admin_email" : nil
                if let differing {
                    throw IdentityError.organizationIdempotencyKeyReused(differingField: differing)
                }
                return (organization, invite)
            }
            let organizationID = Self.newID("org")
            let inviteID = Self.newID("inv")
            try await database.raw(
                """
                INSERT INTO organizations (id, name, idempotency_key, first_invite_id, created_at)
                VALUES (\(bind: organizationID), \(bind: name), \(bind: idempotencyKey), \(bind: inviteID), \(bind: now))
                """
            ).run()
            let invite = try await Self.insertInvite(
                database, id: inviteID, organizationID: organizationID, organizationName: name, email: firstAdminEmail,
                phone: "",
                role: .admin, actor: .system, now: now)
            let organization = try OrganizationRecord(
                row: try await database.raw("SELECT * FROM organizations WHERE id = \(bind: organizationID)").first()!)
            return (organization, invite)
        }
    }

    // MARK: Invites

    /// Invites `email`; a member or pending invite with that email (any case) is `ALREADY_EXISTS`.
    func createInvite(
        organizationID: String, email: String, phone: String, role: MemberRole, actor: Actor, now: Milliseconds
    ) async throws -> InviteRecord {
        try await database.transaction(serializing: [Self.organizationKey(organizationID)]) { database in
            let organization = try await Self.organization(database, id: organizationID)
            return try await Self.insertInvite(
                database, id: Self.newID("inv"), organizationID: organizationID, organizationName: organization.name,
                email: email,
                phone: phone, role: role, actor: actor, now: now)
        }
    }

    /// Gives a pending invite a new secret and expiry (the old secret stops working) and mails it again.
    func resendInvite(
        organizationID: String, inviteID: String, actor: Actor, now: Milliseconds
    ) async throws -> InviteRecord {
        try await database.transaction(serializing: [Self.organizationKey(organizationID)]) { database in
            let organization = try await Self.organization(database, id: organizationID)
            let invite = try await Self.invite(database, organizationID: organizationID, inviteID: inviteID)
            let secret = SecretHashing.newToken()
            try await database.raw(
                """
                UPDATE invites SET secret_hash = \(bind: Data(SecretHashing.sha256(secret))), added_on = \(bind: now),
                    expires_at = \(bind: now + Self.inviteLifetime)
                WHERE id = \(bind: inviteID) AND org_id = \(bind: organizationID) AND state = 'pending'
                """
            ).run()
            let updated = try await Self.invite(database, organizationID: organizationID, inviteID: inviteID)
            try await Self.queueInviteMail(
                database, invite: updated, organizationName: organization.name, secret: secret, now: now)
            try await Self.audit(
                database, organizationID: organizationID, action: .inviteResent,
                message: "Resent the invite to \(invite.email)",
                actor: actor, subjectKind: .invite, subjectID: inviteID, now: now)
            return updated
        }
    }

    /// Revokes a pending invite.
    func revokeInvite(organizationID: String, inviteID: String, actor: Actor, now: Milliseconds) async throws {
        try await database.transaction(serializing: [Self.organizationKey(organizationID)]) { database in
            _ = try await Self.organization(database, id: organizationID)
            let invite = try await Self.invite(database, organizationID: organizationID, inviteID: inviteID)
            try await database.raw(
                "UPDATE invites SET state = 'revoked' WHERE id = \(bind: inviteID) AND org_id = \(bind: organizationID)"
            ).run()
            try await Self.audit(
                database, organizationID: organizationID, action: .inviteRevoked,
                message: "Revoked the invite to \(invite.email)",
                actor: actor, subjectKind: .invite, subjectID: inviteID, now: now)
        }
    }

    /// Turns the invite whose secret this is into a member.
    ///
    /// A secret that matches no invite (never issued, or replaced by a resend) is `UNAUTHENTICATED`;
    /// one whose invite was already used, revoked or has expired is `FAILED_PRECONDITION`.
    func acceptInvite(
        secret: String, firstName: String, lastName: String, passwordHash: String, now: Milliseconds
    ) async throws -> MemberRecord {
        try await database.transaction { database in
            let secretHash = Data(SecretHashing.sha256(secret))
            guard
                let row = try await database.raw(
                    """
                    SELECT \(unsafeRaw: InviteRecord.columns), state FROM invites WHERE secret_hash = \(bind: secretHash)
                    """
                ).first()
            else {
                throw IdentityError.unknownInviteSecret
            }
            switch try row.decode(column: "state", as: String.self) {
            case "accepted": throw IdentityError.inviteAlreadyUsed
            case "revoked": throw IdentityError.inviteRevoked
            default: break
            }
            let invite = try InviteRecord(row: row)
            guard invite.expiresAt > now else {
                throw IdentityError.inviteExpired
            }
            let emailKey = IdentityValidation.emailKey(invite.email)
            if try await database.raw(
                "SELECT 1 AS found FROM members WHERE org_id = \(bind: invite.organizationID) AND email_key = \(bind: emailKey)"
            ).first() != nil {
                throw IdentityError.inviteeAlreadyMember(email: invite.email)
            }
            let memberID = Self.newID("mem")
            try await database.raw(
                """
                INSERT INTO members (id, org_id, email, email_key, first_name, last_name, phone, role, password_hash, created_at)
                VALUES (\(bind: memberID), \(bind: invite.organizationID), \(bind: invite.email), \(bind: emailKey), \(bind: firstName),
                        \(bind: lastName), \(bind: invite.phone), \(bind: invite.role.rawValue), \(bind: passwordHash), \(bind: now))
                """
            ).run()
            try await database.raw("UPDATE invites SET state = 'accepted' WHERE id = \(bind: invite.id)").run()
            let member = try await Self.member(database, organizationID: invite.organizationID, memberID: memberID)
            try await Self.audit(
                database, organizationID: invite.organizationID, action: .inviteAccepted,
                message:
                    "\(member.displayName) (\(member.email)) accepted the invite and joined as \(member.role.title)",
                actor: Actor(memberID: memberID, displayName: member.displayName), subjectKind: .member,
                subjectID: memberID, now: now)
            return member
        }
    }

    // MARK: Members

    /// Changes the fields that are set; demoting the last Admin is `FAILED_PRECONDITION`.
    func updateMember(
        organizationID: String, memberID: String, changes: MemberChanges, actor: Actor, now: Milliseconds
    ) async throws -> MemberRecord {
        try await database.transaction(serializing: [Self.organizationKey(organizationID)]) { database in
            let before = try await Self.member(database, organizationID: organizationID, memberID: memberID)
            if before.role == .admin, let role = changes.role, role != .admin,
                try await Self.adminCount(database, organizationID: organizationID) <= 1
            {
                throw IdentityError.lastAdminDemoted(displayName: before.displayName)
            }
            let firstName = changes.firstName ?? before.firstName
            let lastName = changes.lastName ?? before.lastName
            let phone = changes.phone ?? before.phone
            let role = changes.role ?? before.role
            try await database.raw(
                """
                UPDATE members SET first_name = \(bind: firstName), last_name = \(bind: lastName), phone = \(bind: phone), role = \(bind: role.rawValue)
                WHERE id = \(bind: memberID) AND org_id = \(bind: organizationID)
                """
            ).run()
            let after = try await Self.member(database, organizationID: organizationID, memberID: memberID)
            var described: [String] = []
            if after.firstName != before.firstName || after.lastName != before.lastName {
                described.append("name to \(after.displayName)")
            }
            if after.phone != before.phone {
                described.append(after.phone.isEmpty ? "removed the phone" : "phone to \(after.phone)")
            }
            if after.role != before.role { described.append("role from \(before.role.title) to \(after.role.title)") }
            if !described.isEmpty {
                try await Self.audit(
                    database, organizationID: organizationID, action: .memberUpdated,
                    message: "Changed \(before.displayName)'s \(described.joined(separator: ", "))", actor: actor,
                    subjectKind: .member, subjectID: memberID, now: now)
            }
            return after
        }
    }

    /// Deletes a member and their sessions; deleting the last Admin is `FAILED_PRECONDITION`.
    func deleteMember(organizationID: String, memberID: String, actor: Actor, now: Milliseconds) async throws {
        try await database.transaction(serializing: [Self.organizationKey(organizationID)]) { database in
            let member = try await Self.member(database, organizationID: organizationID, memberID: memberID)
            if member.role == .admin, try await Self.adminCount(database, organizationID: organizationID) <= 1 {
                throw IdentityError.lastAdminDeleted(displayName: member.displayName)
            }
            try await database.raw("DELETE FROM sessions WHERE member_id = \(bind: memberID)").run()
            try await database.raw(
                "DELETE FROM members WHERE id = \(bind: memberID) AND org_id = \(bind: organizationID)"
            ).run()
            try await Self.audit(
                database, organizationID: organizationID, action: .memberDeleted,
                message: "Deleted \(member.displayName) (\(member.email))",
                actor: actor, subjectKind: .member, subjectID: memberID, now: now)
        }
    }

    /// One member of the organization (`NOT_FOUND` for another organization's member).
    func member(organizationID: String, memberID: String) async throws -> MemberRecord {
        try await database.read { database in
            try await Self.member(database, organizationID: organizationID, memberID: memberID)
        }
    }

    /// Member counts: total, Admins, Viewers.
    func countMembers(organizationID: String) async throws -> (total: Int64, admins: Int64, viewers: Int64) {
        try await database.read { database in
            _ = try await Self.organization(database, id: organizationID)
            let rows = try await database.raw(
                "SELECT role, COUNT(*) AS n FROM members WHERE org_id = \(bind: organizationID) GROUP BY role"
            ).all()
            var admins: Int64 = 0
            var viewers: Int64 = 0
            for row in rows {
                let count = try row.decode(column: "n", as: Int64.self)
                if try row.decode(column: "role", as: String.self) == MemberRole.admin.rawValue {
                    admins = count
                } else {
                    viewers += count
                }
            }
            return (admins + viewers, admins, viewers)
        }
    }

    // MARK: Helpers used inside transactions

    static func newID(_ prefix: String) -> String {
        "\(prefix)_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
    }

    static func organization(_ database: any SQLDatabase, id: String) async throws -> OrganizationRecord {
        guard let row = try await database.raw("SELECT * FROM organizations WHERE id = \(bind: id)").first() else {
            throw IdentityError.organizationNotFound(organizationID: id)
        }
        return try OrganizationRecord(row: row)
    }

    /// The serialization key of an organization's members and invites: changes to one organization
    /// take turns on PostgreSQL (the last-Admin and one-invite-per-email rules read what others write).
    static func organizationKey(_ organizationID: String) -> String {
        "identity-organization:" + organizationID
    }

    static func member(
        _ database: any SQLDatabase, organizationID: String, memberID: String
    ) async throws -> MemberRecord {
        guard
            let row = try await database.raw(
                """
                SELECT \(unsafeRaw: MemberRecord.columns) FROM members WHERE id = \(bind: memberID) AND org_id = \(bind: organizationID)
                """
            ).first()
        else {
            throw IdentityError.memberNotFound(memberID: memberID)
        }
        return try MemberRecord(row: row)
    }

    static func invite(
        _ database: any SQLDatabase, organizationID: String, inviteID: String
    ) async throws -> InviteRecord {
        guard
            let row = try await database.raw(
                """
                SELECT \(unsafeRaw: InviteRecord.columns) FROM invites
                WHERE id = \(bind: inviteID) AND org_id = \(bind: organizationID) AND state = 'pending'
                """
            ).first()
        else {
            throw IdentityError.pendingInviteNotFound(inviteID: inviteID)
        }
        return try InviteRecord(row: row)
    }

    static func adminCount(_ database: any SQLDatabase, organizationID: String) async throws -> Int {
        try await database.raw(
            "SELECT COUNT(*) AS n FROM members WHERE org_id = \(bind: organizationID) AND role = 'ADMIN'"
        ).first()?
        .decode(column: "n", as: Int.self) ?? 0
    }

    /// Inserts a pending invite with a fresh secret, queues its mail and its audit event.
    static func insertInvite(
        _ database: any SQLDatabase, id: String, organizationID: String, organizationName: String, email: String,
        phone: String,
        role: MemberRole, actor: Actor, now: Milliseconds
    ) async throws -> InviteRecord {
        let emailKey = IdentityValidation.emailKey(email)
        if try await database.raw(
            "SELECT 1 AS found FROM members WHERE org_id = \(bind: organizationID) AND email_key = \(bind: emailKey)"
        ).first() != nil {
            throw IdentityError.alreadyMember(email: email)
        }
        if try await database.raw(
            """
            SELECT 1 AS found FROM invites WHERE org_id = \(bind: organizationID) AND email_key = \(bind: emailKey) AND state = 'pending'
            """
        ).first() != nil {
            throw IdentityError.inviteAlreadyPending(email: email)
        }
        let secret = SecretHashing.newToken()
        try await database.raw(
            """
            INSERT INTO invites (id, org_id, email, email_key, phone, role, secret_hash, added_on, expires_at, invited_by, invited_by_member_id, state)
            VALUES (\(bind: id), \(bind: organizationID), \(bind: email), \(bind: emailKey), \(bind: phone), \(bind: role.rawValue),
                    \(bind: Data(SecretHashing.sha256(secret))), \(bind: now), \(bind: now + inviteLifetime), \(bind: actor.displayName),
                    \(bind: actor.memberID), 'pending')
            """
        ).run()
        let invite = try await Self.invite(database, organizationID: organizationID, inviteID: id)
        try await queueInviteMail(
            database, invite: invite, organizationName: organizationName, secret: secret, now: now)
        try await audit(
            database, organizationID: organizationID, action: .memberInvited,
            message: "Invited \(email) as \(role.title)",
            actor: actor, subjectKind: .invite, subjectID: id, now: now)
        return invite
    }

    static func queueInviteMail(
        _ database: any SQLDatabase, invite: InviteRecord, organizationName: String, secret: String, now: Milliseconds
    ) async throws {
        let mail = InviteMail(
            to: invite.email, organizationID: invite.organizationID, organizationName: organizationName,
            role: invite.role.title,
            invitedBy: invite.invitedBy, secret: secret, expiresAt: invite.expiresAt)
        try await Outbox.append(
            database, topic: InviteMail.topic, eventID: newID("mail"), organizationID: invite.organizationID,
            payload: Array(try JSONEncoder().encode(mail)), now: now)
    }

    /// Writes an audit event (type MEMBERS) to the outbox.
    static func audit(
        _ database: any SQLDatabase, organizationID: String, action: Portal_Audit_V1_EventAction, message: String,
        actor: Actor,
        subjectKind: Portal_Audit_V1_SubjectKind, subjectID: String, now: Milliseconds
    ) async throws {
        try await AuditOutbox.append(
            database, organizationID: organizationID, type: .members, action: action, message: message,
            actor: actor, subjectKind: subjectKind,
            subjectID: subjectID, now: now)
    }
}

/// The fields of a member an update changes; nil leaves one as it is.
struct MemberChanges: Sendable {
    var firstName: String?
    var lastName: String?
    var phone: String?
    var role: MemberRole?
}
