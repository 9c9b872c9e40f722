/// Why the identity store refused a sign-in, an invite or a change; the handlers' edge states the
/// status each answers with (`IdentityError+RPC.swift`).
enum IdentityError: Error, Equatable {
    /// The idempotency key was used before for an organization whose `field` differs.
    case organizationIdempotencyKeyReused(differingField: String)
    /// No invite has this secret.
    case unknownInviteSecret
    /// The invite was accepted already.
    case inviteAlreadyUsed
    /// The invite was revoked.
    case inviteRevoked
    /// The invite expired before it was accepted.
    case inviteExpired
    /// The invited email became a member meanwhile.
    case inviteeAlreadyMember(email: String)
    /// The change would leave the organization without an Admin (a demotion).
    case lastAdminDemoted(displayName: String)
    /// The change would leave the organization without an Admin (a deletion).
    case lastAdminDeleted(displayName: String)
    /// No such organization.
    case organizationNotFound(organizationID: String)
    /// No such member in the organization.
    case memberNotFound(memberID: String)
    /// No such pending invite in the organization.
    case pendingInviteNotFound(inviteID: String)
    /// The email is a member of the organization already.
    case alreadyMember(email: String)
    /// The email has a pending invite already.
    case inviteAlreadyPending(email: String)
    /// The choice token was used, never issued, or its member is gone.
    case invalidChoice
    /// The choice token expired.
    case choiceExpired
    /// The organization chosen was not one the sign-in offered.
    case organizationNotOffered(organizationID: String)
    /// No session has this token.
    case invalidSession
    /// The session expired or was idle too long.
    case sessionEnded

    /// Whether the caller failed to prove who it is (a sign-in attempt that counts as failed).
    var isAuthenticationFailure: Bool {
        switch self {
        case .unknownInviteSecret, .invalidChoice, .choiceExpired, .organizationNotOffered, .invalidSession,
            .sessionEnded:
            true
        default: false
        }
    }
}
