import PortalAPI
import PortalRPC
import PortalTime

/// The portal facade (`portal.gateway.v1.PortalService`): authenticates each caller from their
/// bearer token, applies the role table, and serves every screen from the backends, always scoped
/// to the caller's own organization.
public struct PortalGatewayService: Portal_Gateway_V1_PortalService {
    let backends: GatewayBackends
    let sessions: SessionCache
    /// Concurrent dashboards of one organization share their backend reads.
    let dashboards = SharedReads<String, DashboardData>()
    /// The event streams passed through (WatchAuditEvents); close them when shutdown begins.
    public let liveStreams = LiveStreams(
        closingMessage: "the portal is shutting down; reconnect with the last cursor received")

    /// A gateway over `backends`; a resolved token is trusted for at most `sessionCacheLifetime` of `clock`'s time.
    public init(
        backends: GatewayBackends, sessionCacheLifetime: Duration = .seconds(1), clock: any ServiceClock = .system
    ) {
        self.backends = backends
        sessions = SessionCache(lifetime: sessionCacheLifetime, clock: clock)
    }

    // MARK: Authentication

    /// The bearer token of the call, or `UNAUTHENTICATED`.
    static func bearerToken(_ context: ServerContext) throws -> String {
        guard let header = context.requestMetadata.firstString(forKey: "authorization") else {
            throw RPCError(.unauthenticated, "authorization: no bearer token; sign in with Login first")
        }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer", !parts[1].isEmpty else {
            throw RPCError(.unauthenticated, "authorization: expected \"Bearer <token>\"")
        }
        return String(parts[1])
    }

    /// The caller, once their token resolves and their role holds `capability`.
    func authorize(_ context: ServerContext, _ capability: Capability) async throws -> (Caller, BackendCall) {
        let token = try Self.bearerToken(context)
        let lookup = BackendCall.shared(startedBy: context)  // concurrent lookups of one token share it
        let caller = try await sessions.caller(for: token) { [backends] token in
            let session = try await lookup.run("identity") { metadata, options in
                try await backends.identity.authenticate(
                    .with { $0.sessionToken = token }, metadata: metadata, options: options)
            }
            guard let principal = session.principal else {
                throw RPCError(.unauthenticated, "authorization: the session has ended")
            }
            return Caller(principal: principal, expiresAt: session.expiresAt)
        }
        // The access log names the caller's organization (never the token).
        context.principal = RPCPrincipal(
            subject: caller.principal.memberID, organizationID: caller.organizationID,
            role: caller.isAdmin ? "ADMIN" : "VIEWER",
            displayName: caller.principal.displayName)
        try RoleTable.require(capability, of: caller)
        return (caller, try BackendCall(context, caller: caller))
    }

    // MARK: Sign-in

    public func login(
        request: Portal_Gateway_V1_LoginRequest, context: ServerContext
    ) async throws -> Portal_Gateway_V1_LoginResponse {
        let call = try BackendCall(context, caller: nil)
        let answer = try await call.run("identity") { metadata, options in
            try await backends.identity.login(
                .with {
                    $0.organizationID = request.organizationID
                    $0.email = request.email
                    $0.password = request.password
                    $0.choiceToken = request.choiceToken
                }, metadata: metadata, options: options)
        }
        return .init(answering: answer)
    }

    public func acceptInvite(
        request: Portal_Gateway_V1_AcceptInviteRequest, context: ServerContext
    ) async throws -> Portal_Gateway_V1_AcceptInviteResponse {
        let call = try BackendCall(context, caller: nil)
        let accepted = try await call.run("identity") { metadata, options in
            try await backends.identity.acceptInvite(
                .with {
                    $0.inviteSecret = request.inviteSecret
                    $0.firstName = request.firstName
                    $0.lastName = request.lastName
                    $0.password = request.password
                }, metadata: metadata, options: options)
        }
        guard let member = accepted.member else {
            throw RPCError(.internal, "identity accepted the invite without returning the member")
        }
        let session = try await openSession(
            organizationID: member.organizationID, email: member.email, password: request.password, call: call)
        return .with {
            $0.member = member
            $0.sessionToken = session.sessionToken
            $0.expiresAt = session.expiresAt
        }
    }

    /// Logs a member in at identity.
    private func openSession(
        organizationID: String, email: String, password: String, call: BackendCall
    ) async throws -> Portal_Identity_V1_LoginResponse {
        try await call.run("identity") { metadata, options in
            try await backends.identity.login(
                .with {
                    $0.organizationID = organizationID
                    $0.email = email
                    $0.password = password
                }, metadata: metadata, options: options)
        }
    }

    public func logout(
        request: Portal_Gateway_V1_LogoutRequest, context: ServerContext
    ) async throws -> Portal_Gateway_V1_LogoutResponse {
        let token = try Self.bearerToken(context)
        let (_, call) = try await authorize(context, .viewPortal)
        _ = try await call.run("identity") { metadata, options in
            try await backends.identity.logout(.with { $0.sessionToken = token }, metadata: metadata, options: options)
        }
        await sessions.forget(token: token)
        return .init()
    }

    public func whoAmI(
        request: Portal_Gateway_V1_WhoAmIRequest, context: ServerContext
    ) async throws -> Portal_Gateway_V1_WhoAmIResponse {
        let (caller, call) = try await authorize(context, .viewPortal)
        let memberships: Portal_Identity_V1_ListMembershipsResponse
        do {
            memberships = try await call.run("identity") { metadata, options in
                try await backends.identity.listMemberships(
                    .with {
                        $0.organizationID = caller.organizationID
                        $0.memberID = caller.principal.memberID
                    }, metadata: metadata, options: options)
            }
        } catch let error as RPCError where error.code == .notFound {
            // Deleted since the token was last resolved: the session has ended.
            await sessions.forget(token: try Self.bearerToken(context))
            throw RPCError(.unauthenticated, "authorization: the session has ended", cause: error)
        }
        return .with {
            $0.principal = caller.principal
            $0.expiresAt = caller.expiresAt
            $0.organizations = memberships.memberships
        }
    }

    // MARK: Dashboard

    /// How many recent activations and events the dashboard shows.
    static let dashboardRecentCount: Int32 = 5

    /// What the dashboard reads from the backends for one organization; a section is nil when its
    /// backend could not answer.
    struct DashboardData: Sendable {
        let licenses: Portal_Entitlements_V1_GetSummaryResponse?
        let events: [Portal_Audit_V1_Event]?
        let memberCount: Int64?
    }

    public func getDashboard(
        request: Portal_Gateway_V1_GetDashboardRequest, context: ServerContext
    ) async throws -> Portal_Gateway_V1_GetDashboardResponse {
        let (caller, _) = try await authorize(context, .viewPortal)
        // Shared with other callers, so the read carries no one's deadline; this call's own deadline
        // still ends it (the transport enforces it).
        let shared = BackendCall.shared(startedBy: context)
        let data = try await dashboards.value(for: caller.organizationID) { [backends] in
            try await Self.readDashboard(caller.organizationID, shared, backends)
        }
        let seesMembers = RoleTable.allows(caller.principal.role, .seeMemberCount)
        return .with {
            $0.availableLicenses = data.licenses?.availableLicenses ?? 0
            $0.activatedLicenses = data.licenses?.activatedLicenses ?? 0
            $0.unactivatedLicenses = data.licenses?.unactivatedLicenses ?? 0
            $0.totalMembers = seesMembers ? data.memberCount : nil
            $0.recentActivations = data.licenses?.recentActivations ?? []
            $0.recentEvents = data.events ?? []
            $0.quickActions = RoleTable.allows(caller.principal.role, .manageMembers) ? [.inviteMember] : []
            $0.unavailableSections =
                (data.licenses == nil ? [.licenses] : []) + (data.events == nil ? [.recentEvents] : [])
                + (seesMembers && data.memberCount == nil ? [.members] : [])
        }
    }

    /// Asks the three backends concurrently, each within the caller's deadline. A backend that is down
    /// or too slow leaves its section out; only when all three fail does the dashboard fail.
    private static func readDashboard(
        _ organizationID: String, _ call: BackendCall, _ backends: GatewayBackends
    ) async throws -> DashboardData {
        async let summary = call.section("entitlements") { metadata, options in
            try await backends.entitlements.getSummary(
                .with {
                    $0.organizationID = organizationID
                    $0.recentActivationsLimit = Self.dashboardRecentCount
                }, metadata: metadata, options: options)
        }
        async let events = call.section("audit") { metadata, options in
            try await backends.audit.recentEvents(
                .with {
                    $0.organizationID = organizationID
                    $0.limit = Self.dashboardRecentCount
                }, metadata: metadata, options: options
            ).events
        }
        async let members = call.section("identity") { metadata, options in
            try await backends.identity.countMembers(
                .with { $0.organizationID = organizationID }, metadata: metadata, options: options
            ).totalMembers
        }
        let (licenses, recent, count) = (try await summary, try await events, try await members)
        if case .failure(let error) = licenses, case .failure = recent, case .failure = count { throw error }
        return DashboardData(licenses: try? licenses.get(), events: try? recent.get(), memberCount: try? count.get())
    }
}
