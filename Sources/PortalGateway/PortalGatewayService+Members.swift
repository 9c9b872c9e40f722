import PortalAPI
import PortalRPC

extension PortalGatewayService {
    // MARK: Members and invites

    public func listMembers(
        request: Portal_Gateway_V1_ListMembersRequest, context: ServerContext
    ) async throws -> Portal_Gateway_V1_ListMembersResponse {
        let (caller, call) = try await authorize(context, .manageMembers)
        let page = try await call.run("identity") { metadata, options in
            try await backends.identity.listMembers(
                request.scoped(to: caller.organizationID), metadata: metadata, options: options)
        }
        return .init(answering: page)
    }

    public func listInvites(
        request: Portal_Gateway_V1_ListInvitesRequest, context: ServerContext
    ) async throws -> Portal_Gateway_V1_ListInvitesResponse {
        let (caller, call) = try await authorize(context, .manageMembers)
        let page = try await call.run("identity") { metadata, options in
            try await backends.identity.listInvites(
                request.scoped(to: caller.organizationID), metadata: metadata, options: options)
        }
        return .init(answering: page)
    }

    public func inviteMember(
        request: Portal_Gateway_V1_InviteMemberRequest, context: ServerContext
    ) async throws -> Portal_Gateway_V1_InviteMemberResponse {
        let (caller, call) = try await authorize(context, .manageMembers)
        let created = try await call.run("identity") { metadata, options in
            try await backends.identity.createInvite(
                request.scoped(to: caller.organizationID), metadata: metadata, options: options)
        }
        return .init(answering: created)
    }

    public func resendInvite(
        request: Portal_Gateway_V1_ResendInviteRequest, context: ServerContext
    ) async throws -> Portal_Gateway_V1_ResendInviteResponse {
        let (caller, call) = try await authorize(context, .manageMembers)
        let resent = try await call.run("identity") { metadata, options in
            try await backends.identity.resendInvite(
                request.scoped(to: caller.organizationID), metadata: metadata, options: options)
        }
        return .init(answering: resent)
    }

    public func revokeInvite(
        request: Portal_Gateway_V1_RevokeInviteRequest, context: ServerContext
    ) async throws -> Portal_Gateway_V1_RevokeInviteResponse {
        let (caller, call) = try await authorize(context, .manageMembers)
        _ = try await call.run("identity") { metadata, options in
            try await backends.identity.revokeInvite(
                request.scoped(to: caller.organizationID), metadata: metadata, options: options)
        }
        return .init()
    }

    public func updateMember(
        request: Portal_Gateway_V1_UpdateMemberRequest, context: ServerContext
    ) async throws -> Portal_Gateway_V1_UpdateMemberResponse {
        let (caller, call) = try await authorize(context, .manageMembers)
        let updated = try await call.run("identity") { metadata, options in
            try await backends.identity.updateMember(
                request.scoped(to: caller.organizationID), metadata: metadata, options: options)
        }
        // A changed role bites on the member's next call through this gateway.
        await sessions.forget(memberID: request.memberID)
        return .init(answering: updated)
    }

    public func deleteMember(
        request: Portal_Gateway_V1_DeleteMemberRequest, context: ServerContext
    ) async throws -> Portal_Gateway_V1_DeleteMemberResponse {
        let (caller, call) = try await authorize(context, .manageMembers)
        _ = try await call.run("identity") { metadata, options in
            try await backends.identity.deleteMember(
                request.scoped(to: caller.organizationID), metadata: metadata, options: options)
        }
        await sessions.forget(memberID: request.memberID)
        return .init()
    }
}
