import PortalRPC

extension IdentityError: RPCErrorConvertible {
    /// The status and message the caller receives, naming the field at fault.
    var rpcError: RPCError {
        switch self {
        case .organizationIdempotencyKeyReused(let field):
            .invalidArgument(
                field: "idempotency_key",
                "was already used for a different organization (its \(field) differs); use a new key for a new request")
        case .unknownInviteSecret: RPCError(.unauthenticated, "invite_secret: not a valid invite code")
        case .inviteAlreadyUsed:
            RPCError(.failedPrecondition, "invite_secret: this invite was already used; sign in instead")
        case .inviteRevoked:
            RPCError(.failedPrecondition, "invite_secret: this invite was revoked; ask an Admin for a new one")
        case .inviteExpired:
            RPCError(.failedPrecondition, "invite_secret: this invite expired; ask an Admin to resend it")
        case .inviteeAlreadyMember(let email): RPCError(.alreadyExists, "email: \(email) is already a member")
        case .lastAdminDemoted(let name):
            RPCError(
                .failedPrecondition, "role: \(name) is the organization's last Admin; make another member Admin first")
        case .lastAdminDeleted(let name):
            RPCError(.failedPrecondition, "member_id: \(name) is the organization's last Admin and cannot be deleted")
        case .organizationNotFound(let id): RPCError(.notFound, "organization_id: no organization \(id)")
        case .memberNotFound(let id): RPCError(.notFound, "member_id: no member \(id)")
        case .pendingInviteNotFound(let id): RPCError(.notFound, "invite_id: no pending invite \(id)")
        case .alreadyMember(let email):
            RPCError(.alreadyExists, "email: \(email) is already a member of this organization")
        case .inviteAlreadyPending(let email):
            RPCError(.alreadyExists, "email: \(email) already has a pending invite; resend or revoke it")
        case .invalidChoice:
            RPCError(
                .unauthenticated, "choice_token: not a valid choice (already used, or never issued); sign in again")
        case .choiceExpired: RPCError(.unauthenticated, "choice_token: the choice expired; sign in again")
        case .organizationNotOffered(let id):
            RPCError(
                .unauthenticated,
                "choice_token: organization_id \(RPCError.quote(id)) is not one of this sign-in's organizations")
        case .invalidSession: RPCError(.unauthenticated, "session_token: not a valid session")
        case .sessionEnded: RPCError(.unauthenticated, "session_token: the session has ended; sign in again")
        }
    }
}
