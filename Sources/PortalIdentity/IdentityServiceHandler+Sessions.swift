import PortalAPI
import PortalCrypto
import PortalRPC

/// Sign-in, sessions and a member's organizations.
extension IdentityServiceHandler {
    /// The one answer to a wrong password and to an email nobody has.
    static var incorrectCredentials: RPCError { RPCError(.unauthenticated, "email or password is incorrect") }

    public func login(
        request: Portal_Identity_V1_LoginRequest, context: ServerContext
    ) async throws -> Portal_Identity_V1_LoginResponse {
        if !request.choiceToken.isEmpty { return try await loginWithChoice(request, context) }
        guard !request.email.isEmpty else { throw RPCError.invalidArgument(field: "email", "is required") }
        guard !request.password.isEmpty else { throw RPCError.invalidArgument(field: "password", "is required") }
        let emailKey = IdentityValidation.emailKey(request.email)
        let source = "source:\(Self.clientAddress(context))"
        // A sign-in without an organization spends the email's budget; one with an organization spends
        // that account's, and its failures count against the email's too.
        if request.organizationID.isEmpty {
            let keys = ["account:\(emailKey)", source]
            try requireBudget(keys)
            return try await loginByEmail(request, failureKeys: keys)
        }
        let organizationID = try IdentityValidation.id(request.organizationID, field: "organization_id")
        let keys = ["account:\(organizationID):\(emailKey)", source]
        try requireBudget(keys)
        let found = try await store.credentials(organizationID: organizationID, email: request.email)
        // Unknown accounts are checked against a decoy hash, so both answers take the same time.
        let matches = try await passwords.verify(
            request.password, against: found?.passwordHash ?? SecretHashing.decoyPasswordHash)
        guard let (member, _) = found, matches else {
            limiter.recordFailure(keys + ["account:\(emailKey)"])
            throw Self.incorrectCredentials
        }
        return try await sessionResponse(member)
    }

    /// Email and password alone: checks the password against every membership of the email (against
    /// the decoy hash once when there is none), then opens the one session or offers the choice.
    private func loginByEmail(
        _ request: Portal_Identity_V1_LoginRequest, failureKeys: [String]
    ) async throws -> Portal_Identity_V1_LoginResponse {
        let candidates = try await store.credentials(email: request.email)
        if candidates.isEmpty {
            _ = try await passwords.verify(request.password, against: SecretHashing.decoyPasswordHash)
        }
        var valid: [SignInCandidate] = []
        for candidate in candidates {
            if try await passwords.verify(request.password, against: candidate.passwordHash) { valid.append(candidate) }
        }
        guard let only = valid.first else {
            limiter.recordFailure(failureKeys)
            throw Self.incorrectCredentials
        }
        guard valid.count > 1 else { return try await sessionResponse(only.member) }
        let choice = try await store.openChoice(among: valid, now: clock.milliseconds())
        var response = Portal_Identity_V1_LoginResponse()
        response.choiceToken = choice.token
        response.choiceExpiresAt = Google_Protobuf_Timestamp(milliseconds: choice.expiresAt)
        response.organizationChoices = valid.map(\.choice)
        return response
    }

    /// A choice token and the organization chosen: opens the session there.
    private func loginWithChoice(
        _ request: Portal_Identity_V1_LoginRequest, _ context: ServerContext
    ) async throws -> Portal_Identity_V1_LoginResponse {
        let token = try IdentityValidation.id(request.choiceToken, field: "choice_token")
        let organizationID = try IdentityValidation.id(request.organizationID, field: "organization_id")
        let keys = ["source:\(Self.clientAddress(context))"]
        try requireBudget(keys)
        do {
            let session = try await store.openSession(
                choiceToken: token, organizationID: organizationID, now: clock.milliseconds())
            return Self.response(member: session.member, token: session.token, expiresAt: session.expiresAt)
        } catch let error as IdentityError where error.isAuthenticationFailure {
            limiter.recordFailure(keys)
            throw error
        }
    }

    private func requireBudget(_ keys: [String]) throws {
        guard limiter.allows(keys) else {
            throw RPCError(.resourceExhausted, "too many failed sign-in attempts; wait a few minutes and try again")
        }
    }

    private func sessionResponse(_ member: MemberRecord) async throws -> Portal_Identity_V1_LoginResponse {
        let session = try await store.openSession(member: member, now: clock.milliseconds())
        return Self.response(member: member, token: session.token, expiresAt: session.expiresAt)
    }

    private static func response(
        member: MemberRecord, token: String, expiresAt: Milliseconds
    ) -> Portal_Identity_V1_LoginResponse {
        var response = Portal_Identity_V1_LoginResponse()
        response.sessionToken = token
        response.expiresAt = Google_Protobuf_Timestamp(milliseconds: expiresAt)
        response.principal = member.principal
        return response
    }

    public func logout(
        request: Portal_Identity_V1_LogoutRequest, context: ServerContext
    ) async throws -> Portal_Identity_V1_LogoutResponse {
        guard !request.sessionToken.isEmpty else {
            throw RPCError.invalidArgument(field: "session_token", "is required")
        }
        try await store.closeSession(token: request.sessionToken)
        return Portal_Identity_V1_LogoutResponse()
    }

    public func authenticate(
        request: Portal_Identity_V1_AuthenticateRequest, context: ServerContext
    ) async throws -> Portal_Identity_V1_AuthenticateResponse {
        guard !request.sessionToken.isEmpty else { throw RPCError(.unauthenticated, "session_token: is required") }
        let (member, expiresAt) = try await store.authenticate(token: request.sessionToken, now: clock.milliseconds())
        var response = Portal_Identity_V1_AuthenticateResponse()
        response.principal = member.principal
        response.expiresAt = Google_Protobuf_Timestamp(milliseconds: expiresAt)
        return response
    }

    public func listMemberships(
        request: Portal_Identity_V1_ListMembershipsRequest, context: ServerContext
    ) async throws -> Portal_Identity_V1_ListMembershipsResponse {
        let organizationID = try IdentityValidation.id(request.organizationID, field: "organization_id")
        let memberID = try IdentityValidation.id(request.memberID, field: "member_id")
        // A member's organizations are theirs alone: an acting member may ask only about themselves.
        if let acting = context.requestMetadata.firstString(forKey: PrincipalMetadata.memberID), !acting.isEmpty,
            acting != memberID
        {
            throw RPCError(.permissionDenied, "member_id: a member may list only their own organizations")
        }
        let memberships = try await store.memberships(organizationID: organizationID, memberID: memberID)
        var response = Portal_Identity_V1_ListMembershipsResponse()
        response.memberships = memberships.map { $0.api(currentOrganizationID: organizationID) }
        return response
    }
}

extension IdentityServiceHandler {
    /// Where a sign-in comes from: the client's address the gateway vouches for (the policies refuse
    /// the key from anyone else), or the caller's own address for a direct internal call.
    static func clientAddress(_ context: ServerContext) -> String {
        context.requestMetadata.firstString(forKey: PrincipalMetadata.clientAddress) ?? context.peerAddress
    }
}
