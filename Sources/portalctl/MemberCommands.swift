import ArgumentParser
import Foundation
import PortalClient

/// `admin` or `viewer` as the API's role.
func parseRole(_ text: String?, option: String) throws -> Portal_Identity_V1_Role? {
    switch text?.lowercased() {
    case nil: nil
    case "admin": .admin
    case "viewer": .viewer
    case let other?: throw ValidationError("\(option): expected admin or viewer, not \(other)")
    }
}

struct Members: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Active members of your organization (Admins).")
    @OptionGroup var global: GlobalOptions
    @OptionGroup var paging: PagingOptions
    @Option(help: "Only this role: admin or viewer.") var role: String?
    @Option(help: "Search name, email and phone.") var search: String = ""

    func run() async throws {
        let role = try parseRole(role, option: "--role")
        try await global.run { client in
            let page = try await client.portal.listMembers(
                .with {
                    $0.pageSize = paging.pageSize
                    $0.pageToken = paging.pageToken
                    $0.orderBy = paging.sort
                    $0.role = role ?? .unspecified
                    $0.searchText = search
                }, options: global.callOptions)
            if global.json {
                return try Output.json(
                    JSONRecords.page(
                        "members", page.members.map(JSONRecords.member), nextPageToken: page.nextPageToken,
                        totalSize: page.totalSize))
            }
            Output.table(
                ["Member ID", "First name", "Last name", "Email", "Phone", "Role", "Created"],
                page.members.map {
                    [
                        $0.memberID, $0.firstName, $0.lastName, $0.email, $0.phone,
                        JSONRecords.role($0.role).capitalized, Output.day($0.createdAt),
                    ]
                })
            Output.pageFooter(shown: page.members.count, total: page.totalSize, nextPageToken: page.nextPageToken)
        }
    }
}

struct Invites: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Pending invites (Admins).")
    @OptionGroup var global: GlobalOptions
    @OptionGroup var paging: PagingOptions
    @Option(help: "Only this role: admin or viewer.") var role: String?
    @Option(help: "Search the email.") var search: String = ""

    func run() async throws {
        let role = try parseRole(role, option: "--role")
        try await global.run { client in
            let page = try await client.portal.listInvites(
                .with {
                    $0.pageSize = paging.pageSize
                    $0.pageToken = paging.pageToken
                    $0.orderBy = paging.sort
                    $0.role = role ?? .unspecified
                    $0.searchText = search
                }, options: global.callOptions)
            if global.json {
                return try Output.json(
                    JSONRecords.page(
                        "invites", page.invites.map(JSONRecords.invite), nextPageToken: page.nextPageToken,
                        totalSize: page.totalSize))
            }
            Output.table(
                ["Invite ID", "Email", "Role", "Added on", "Expires", "Invited by"],
                page.invites.map {
                    [
                        $0.inviteID, $0.email, JSONRecords.role($0.role).capitalized, Output.day($0.addedOn),
                        Output.day($0.expiresAt), $0.invitedBy,
                    ]
                })
            Output.pageFooter(shown: page.invites.count, total: page.totalSize, nextPageToken: page.nextPageToken)
        }
    }
}

struct InviteMember: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "invite", abstract: "Invite someone to your organization (Admins).")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "Their email.") var email: String
    @Option(help: "admin or viewer.") var role: String
    @Option(help: "Their phone (E.164, e.g. +14155550100).") var phone: String = ""

    func run() async throws {
        let role = try parseRole(role, option: "--role")!
        try await global.run { client in
            let invite =
                try await client.portal.inviteMember(
                    .with {
                        $0.email = email
                        $0.role = role
                        $0.phone = phone
                    }, options: global.callOptions
                ).invite ?? .init()
            if global.json { return try Output.json(JSONRecords.invite(invite)) }
            print(
                "Invited \(invite.email) as \(JSONRecords.role(invite.role).capitalized) (invite \(invite.inviteID), expires \(Output.day(invite.expiresAt)))."
            )
        }
    }
}

struct ResendInvite: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "resend-invite", abstract: "Send an invite again with a new code (Admins).")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "The invite id.") var inviteID: String

    func run() async throws {
        try await global.run { client in
            let invite =
                try await client.portal.resendInvite(.with { $0.inviteID = inviteID }, options: global.callOptions)
                .invite ?? .init()
            if global.json { return try Output.json(JSONRecords.invite(invite)) }
            print("Sent the invite to \(invite.email) again; it expires \(Output.day(invite.expiresAt)).")
        }
    }
}

struct RevokeInvite: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "revoke-invite", abstract: "Revoke a pending invite (Admins).")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "The invite id.") var inviteID: String

    func run() async throws {
        try await global.run { client in
            _ = try await client.portal.revokeInvite(.with { $0.inviteID = inviteID }, options: global.callOptions)
            if global.json { return try Output.json(["revoked": inviteID]) }
            print("Revoked invite \(inviteID).")
        }
    }
}

struct UpdateMember: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "update-member", abstract: "Change a member's name, phone or role (Admins).")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "The member id.") var memberID: String
    @Option(help: "New first name.") var firstName: String?
    @Option(help: "New last name.") var lastName: String?
    @Option(help: "New phone (E.164), or \"\" to remove it.") var phone: String?
    @Option(help: "New role: admin or viewer.") var role: String?

    func run() async throws {
        let role = try parseRole(role, option: "--role")
        try await global.run { client in
            let member =
                try await client.portal.updateMember(
                    .with {
                        $0.memberID = memberID
                        $0.firstName = firstName
                        $0.lastName = lastName
                        $0.phone = phone
                        $0.role = role
                    }, options: global.callOptions
                ).member ?? .init()
            if global.json { return try Output.json(JSONRecords.member(member)) }
            print("Updated \(member.displayName) (\(JSONRecords.role(member.role).capitalized)).")
        }
    }
}

struct DeleteMember: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "delete-member", abstract: "Remove a member from your organization (Admins).")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "The member id.") var memberID: String

    func run() async throws {
        try await global.run { client in
            _ = try await client.portal.deleteMember(.with { $0.memberID = memberID }, options: global.callOptions)
            if global.json { return try Output.json(["deleted": memberID]) }
            print("Deleted member \(memberID).")
        }
    }
}
