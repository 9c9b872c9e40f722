import Foundation
import PortalAPI
import PortalAuditOutbox
import SQLKit

/// Milliseconds since the Unix epoch, as every identity table stores time.
typealias Milliseconds = Int64

/// A stored organization.
struct OrganizationRecord: Sendable {
    let id: String
    let name: String
    let firstInviteID: String
    let createdAt: Milliseconds

    init(row: any SQLRow) throws {
        id = try row.decode(column: "id", as: String.self)
        name = try row.decode(column: "name", as: String.self)
        firstInviteID = try row.decode(column: "first_invite_id", as: String.self)
        createdAt = try row.decode(column: "created_at", as: Int64.self)
    }

    var api: Portal_Identity_V1_Organization {
        var organization = Portal_Identity_V1_Organization()
        organization.organizationID = id
        organization.name = name
        organization.createdAt = Google_Protobuf_Timestamp(milliseconds: createdAt)
        return organization
    }
}

/// A stored member (without the password hash).
struct MemberRecord: Sendable {
    let id: String
    let organizationID: String
    let email: String
    let firstName: String
    let lastName: String
    let phone: String
    let role: MemberRole
    let createdAt: Milliseconds

    static let columns = "id, org_id, email, first_name, last_name, phone, role, created_at"

    init(row: any SQLRow) throws {
        id = try row.decode(column: "id", as: String.self)
        organizationID = try row.decode(column: "org_id", as: String.self)
        email = try row.decode(column: "email", as: String.self)
        firstName = try row.decode(column: "first_name", as: String.self)
        lastName = try row.decode(column: "last_name", as: String.self)
        phone = try row.decode(column: "phone", as: String.self)
        role = MemberRole(stored: try row.decode(column: "role", as: String.self)) ?? .viewer
        createdAt = try row.decode(column: "created_at", as: Int64.self)
    }

    /// "First Last".
    var displayName: String { "\(firstName) \(lastName)" }

    var api: Portal_Identity_V1_Member {
        var member = Portal_Identity_V1_Member()
        member.memberID = id
        member.organizationID = organizationID
        member.firstName = firstName
        member.lastName = lastName
        member.displayName = displayName
        member.email = email
        member.phone = phone
        member.role = role.api
        member.createdAt = Google_Protobuf_Timestamp(milliseconds: createdAt)
        return member
    }

    var principal: Portal_Identity_V1_Principal {
        var principal = Portal_Identity_V1_Principal()
        principal.memberID = id
        principal.organizationID = organizationID
        principal.role = role.api
        principal.displayName = displayName
        principal.email = email
        return principal
    }
}

/// A membership an email and password may sign in to: the member, their password hash and the
/// organization's name.
struct SignInCandidate: Sendable {
    let member: MemberRecord
    let passwordHash: String
    let organizationName: String

    init(row: any SQLRow) throws {
        member = try MemberRecord(row: row)
        passwordHash = try row.decode(column: "password_hash", as: String.self)
        organizationName = try row.decode(column: "org_name", as: String.self)
    }

    /// The organization as a sign-in offers it to choose from.
    var choice: Portal_Identity_V1_OrganizationChoice {
        .with {
            $0.organizationID = member.organizationID
            $0.name = organizationName
        }
    }
}

/// One organization a person (an email) is a member of, and their role there.
struct MembershipRecord: Sendable {
    let organizationID: String
    let organizationName: String
    let role: MemberRole

    init(row: any SQLRow) throws {
        organizationID = try row.decode(column: "org_id", as: String.self)
        organizationName = try row.decode(column: "org_name", as: String.self)
        role = MemberRole(stored: try row.decode(column: "role", as: String.self)) ?? .viewer
    }

    /// The membership as the API shows it; `current` marks the organization asked about.
    func api(currentOrganizationID: String) -> Portal_Identity_V1_Membership {
        .with {
            $0.organizationID = organizationID
            $0.organizationName = organizationName
            $0.role = role.api
            $0.current = organizationID == currentOrganizationID
        }
    }
}

/// A stored invite (without its secret hash).
struct InviteRecord: Sendable {
    let id: String
    let organizationID: String
    let email: String
    let phone: String
    let role: MemberRole
    let addedOn: Milliseconds
    let expiresAt: Milliseconds
    let invitedBy: String
    let invitedByMemberID: String

    static let columns = "id, org_id, email, phone, role, added_on, expires_at, invited_by, invited_by_member_id"

    init(row: any SQLRow) throws {
        id = try row.decode(column: "id", as: String.self)
        organizationID = try row.decode(column: "org_id", as: String.self)
        email = try row.decode(column: "email", as: String.self)
        phone = try row.decode(column: "phone", as: String.self)
        role = MemberRole(stored: try row.decode(column: "role", as: String.self)) ?? .viewer
        addedOn = try row.decode(column: "added_on", as: Int64.self)
        expiresAt = try row.decode(column: "expires_at", as: Int64.self)
        invitedBy = try row.decode(column: "invited_by", as: String.self)
        invitedByMemberID = try row.decode(column: "invited_by_member_id", as: String.self)
    }

    func api(now: Milliseconds) -> Portal_Identity_V1_Invite {
        var invite = Portal_Identity_V1_Invite()
        invite.inviteID = id
        invite.organizationID = organizationID
        invite.email = email
        invite.phone = phone
        invite.role = role.api
        invite.addedOn = Google_Protobuf_Timestamp(milliseconds: addedOn)
        invite.expiresAt = Google_Protobuf_Timestamp(milliseconds: expiresAt)
        invite.invitedBy = invitedBy
        invite.invitedByMemberID = invitedByMemberID
        invite.status = expiresAt <= now ? .expired : .pending
        return invite
    }
}

/// Who performs a change: a member (from call metadata) or an internal caller ("system").
typealias Actor = AuditOutbox.Actor
