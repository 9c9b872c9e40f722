import Foundation
import PortalAPI
import PortalCrypto
import PortalRPC
import PortalStorage
import PortalStorageRPC
import PortalTime

/// `portal.identity.v1.IdentityService`: validates every request, applies the rules and answers
/// with the right status; the data lives in `IdentityStore`.
public final class IdentityServiceHandler: Portal_Identity_V1_IdentityService {
    let store: IdentityStore
    let limiter: LoginRateLimiter
    let passwords: any PasswordChecking
    let clock: any ServiceClock
    private let pageTokens: PageTokenKeys

    init(store: IdentityStore, passwords: any PasswordChecking, clock: any ServiceClock, pageTokens: PageTokenKeys) {
        self.store = store
        self.pageTokens = pageTokens
        self.passwords = passwords
        self.clock = clock
        limiter = LoginRateLimiter(clock: clock)
    }

    // MARK: Organizations and invites

    public func createOrganization(
        request: Portal_Identity_V1_CreateOrganizationRequest, context: ServerContext
    ) async throws -> Portal_Identity_V1_CreateOrganizationResponse {
        let name = try IdentityValidation.name(request.name, field: "name")
        let email = try IdentityValidation.email(request.firstAdminEmail, field: "first_admin_email")
        let key = try IdentityValidation.id(request.idempotencyKey, field: "idempotency_key")
        let now = clock.milliseconds()
        let (organization, invite) = try await store.createOrganization(
            name: name, firstAdminEmail: email, idempotencyKey: key, now: now)
        var response = Portal_Identity_V1_CreateOrganizationResponse()
        response.organization = organization.api
        response.firstAdminInvite = invite.api(now: now)
        return response
    }

    public func createInvite(
        request: Portal_Identity_V1_CreateInviteRequest, context: ServerContext
    ) async throws -> Portal_Identity_V1_CreateInviteResponse {
        let organizationID = try IdentityValidation.id(request.organizationID, field: "organization_id")
        let email = try IdentityValidation.email(request.email)
        let phone = try IdentityValidation.phone(request.phone)
        let role = try IdentityValidation.role(request.role)
        let now = clock.milliseconds()
        let invite = try await store.createInvite(
            organizationID: organizationID, email: email, phone: phone, role: role, actor: Self.actor(context), now: now
        )
        var response = Portal_Identity_V1_CreateInviteResponse()
        response.invite = invite.api(now: now)
        return response
    }

    public func resendInvite(
        request: Portal_Identity_V1_ResendInviteRequest, context: ServerContext
    ) async throws -> Portal_Identity_V1_ResendInviteResponse {
        let organizationID = try IdentityValidation.id(request.organizationID, field: "organization_id")
        let inviteID = try IdentityValidation.id(request.inviteID, field: "invite_id")
        let now = clock.milliseconds()
        let invite = try await store.resendInvite(
            organizationID: organizationID, inviteID: inviteID, actor: Self.actor(context), now: now)
        var response = Portal_Identity_V1_ResendInviteResponse()
        response.invite = invite.api(now: now)
        return response
    }

    public func revokeInvite(
        request: Portal_Identity_V1_RevokeInviteRequest, context: ServerContext
    ) async throws -> Portal_Identity_V1_RevokeInviteResponse {
        let organizationID = try IdentityValidation.id(request.organizationID, field: "organization_id")
        let inviteID = try IdentityValidation.id(request.inviteID, field: "invite_id")
        try await store.revokeInvite(
            organizationID: organizationID, inviteID: inviteID, actor: Self.actor(context), now: clock.milliseconds())
        return Portal_Identity_V1_RevokeInviteResponse()
    }

    public func acceptInvite(
        request: Portal_Identity_V1_AcceptInviteRequest, context: ServerContext
    ) async throws -> Portal_Identity_V1_AcceptInviteResponse {
        let secret = try IdentityValidation.id(request.inviteSecret, field: "invite_secret")
        let firstName = try IdentityValidation.name(request.firstName, field: "first_name")
        let lastName = try IdentityValidation.name(request.lastName, field: "last_name")
        let password = try IdentityValidation.password(request.password)
        let passwordHash = try await passwords.hash(password)
        let member = try await store.acceptInvite(
            secret: secret, firstName: firstName, lastName: lastName, passwordHash: passwordHash,
            now: clock.milliseconds())
        var response = Portal_Identity_V1_AcceptInviteResponse()
        response.member = member.api
        return response
    }

    // MARK: Members

    public func listMembers(
        request: Portal_Identity_V1_ListMembersRequest, context: ServerContext
    ) async throws -> Portal_Identity_V1_ListMembersResponse {
        let organizationID = try IdentityValidation.id(request.organizationID, field: "organization_id")
        let paging = try ListPaging(
            pageSize: request.pageSize, pageToken: request.pageToken, orderBy: request.orderBy,
            columns: IdentityStore.memberColumns,
            defaultOrder: "last_name asc",
            scope: PageTokenScope(
                pageTokens, list: "members",
                request: request.updating {
                    $0.pageToken = ""
                    $0.pageSize = 0
                }))
        let role = request.role == .unspecified ? nil : try IdentityValidation.role(request.role)
        if case .unrecognized(let value) = request.searchField {
            throw RPCError.invalidArgument(field: "search_field", "unknown value \(value)")
        }
        let page = try await store.listMembers(
            organizationID: organizationID, paging: paging, role: role, searchField: request.searchField,
            searchText: request.searchText)
        var response = Portal_Identity_V1_ListMembersResponse()
        response.members = page.members.map(\.api)
        response.nextPageToken = page.nextPageToken
        response.totalSize = page.totalSize
        return response
    }

    public func listInvites(
        request: Portal_Identity_V1_ListInvitesRequest, context: ServerContext
    ) async throws -> Portal_Identity_V1_ListInvitesResponse {
        let organizationID = try IdentityValidation.id(request.organizationID, field: "organization_id")
        let paging = try ListPaging(
            pageSize: request.pageSize, pageToken: request.pageToken, orderBy: request.orderBy,
            columns: IdentityStore.inviteColumns,
            defaultOrder: "added_on desc",
            scope: PageTokenScope(
                pageTokens, list: "invites",
                request: request.updating {
                    $0.pageToken = ""
                    $0.pageSize = 0
                }))
        let role = request.role == .unspecified ? nil : try IdentityValidation.role(request.role)
        let now = clock.milliseconds()
        let page = try await store.listInvites(
            organizationID: organizationID, paging: paging, role: role, emailText: request.searchText)
        var response = Portal_Identity_V1_ListInvitesResponse()
        response.invites = page.invites.map { $0.api(now: now) }
        response.nextPageToken = page.nextPageToken
        response.totalSize = page.totalSize
        return response
    }

    public func getMember(
        request: Portal_Identity_V1_GetMemberRequest, context: ServerContext
    ) async throws -> Portal_Identity_V1_GetMemberResponse {
        let organizationID = try IdentityValidation.id(request.organizationID, field: "organization_id")
        let memberID = try IdentityValidation.id(request.memberID, field: "member_id")
        var response = Portal_Identity_V1_GetMemberResponse()
        response.member = try await store.member(organizationID: organizationID, memberID: memberID).api
        return response
    }

    public func updateMember(
        request: Portal_Identity_V1_UpdateMemberRequest, context: ServerContext
    ) async throws -> Portal_Identity_V1_UpdateMemberResponse {
        let organizationID = try IdentityValidation.id(request.organizationID, field: "organization_id")
        let memberID = try IdentityValidation.id(request.memberID, field: "member_id")
        var changes = MemberChanges()
        changes.firstName = try request.firstName.map { try IdentityValidation.name($0, field: "first_name") }
        changes.lastName = try request.lastName.map { try IdentityValidation.name($0, field: "last_name") }
        changes.phone = try request.phone.map { try IdentityValidation.phone($0) }
        changes.role = try request.role.map { try IdentityValidation.role($0) }
        let member = try await store.updateMember(
            organizationID: organizationID, memberID: memberID, changes: changes, actor: Self.actor(context),
            now: clock.milliseconds())
        var response = Portal_Identity_V1_UpdateMemberResponse()
        response.member = member.api
        return response
    }

    public func deleteMember(
        request: Portal_Identity_V1_DeleteMemberRequest, context: ServerContext
    ) async throws -> Portal_Identity_V1_DeleteMemberResponse {
        let organizationID = try IdentityValidation.id(request.organizationID, field: "organization_id")
        let memberID = try IdentityValidation.id(request.memberID, field: "member_id")
        try await store.deleteMember(
            organizationID: organizationID, memberID: memberID, actor: Self.actor(context), now: clock.milliseconds())
        return Portal_Identity_V1_DeleteMemberResponse()
    }

    public func countMembers(
        request: Portal_Identity_V1_CountMembersRequest, context: ServerContext
    ) async throws -> Portal_Identity_V1_CountMembersResponse {
        let organizationID = try IdentityValidation.id(request.organizationID, field: "organization_id")
        let counts = try await store.countMembers(organizationID: organizationID)
        var response = Portal_Identity_V1_CountMembersResponse()
        response.totalMembers = counts.total
        response.adminCount = counts.admins
        response.viewerCount = counts.viewers
        return response
    }

    public func notifyAdmins(
        request: Portal_Identity_V1_NotifyAdminsRequest, context: ServerContext
    ) async throws -> Portal_Identity_V1_NotifyAdminsResponse {
        let organizationID = try IdentityValidation.id(request.organizationID, field: "organization_id")
        let noticeID = try IdentityValidation.id(request.noticeID, field: "notice_id")
        guard !request.subject.isEmpty, request.subject.count <= 200, !request.subject.contains(where: \.isNewline)
        else {
            throw RPCError.invalidArgument(field: "subject", "is required: one line of at most 200 characters")
        }
        guard !request.text.isEmpty, request.text.count <= 10_000 else {
            throw RPCError.invalidArgument(field: "text", "is required and must be at most 10,000 characters")
        }
        var response = Portal_Identity_V1_NotifyAdminsResponse()
        response.recipients = Int32(
            try await store.notifyAdmins(
                organizationID: organizationID, noticeID: noticeID, subject: request.subject, text: request.text,
                now: clock.milliseconds()))
        return response
    }

    // MARK: Helpers

    /// The acting member from the gateway's metadata, or "system" for internal callers.
    static func actor(_ context: ServerContext) -> Actor {
        guard let memberID = context.requestMetadata.firstString(forKey: PrincipalMetadata.memberID), !memberID.isEmpty
        else {
            return .system
        }
        let name = context.requestMetadata.firstString(forKey: PrincipalMetadata.displayName) ?? memberID
        return Actor(memberID: memberID, displayName: name)
    }

}
