@_exported import PortalAPI
import PortalHTTP2
import PortalRPC
@_exported import PortalRPC
import Synchronization

@_exported import struct PortalHTTP2.TLSConfigurationError

/// A connection to the portal gateway for Swift programs: sign in once, then call every portal RPC
/// through `portal` with typed async methods; each call carries the session's bearer token.
///
/// ```swift
/// let client = PortalClient(host: "127.0.0.1", port: 50050)
/// let signIn = try await client.login(email: "ada@example.com", password: "…")
/// if let choice = signIn.organizationChoices.first {  // a member of several organizations chooses one
///     try await client.login(choiceToken: signIn.choiceToken, organizationID: choice.organizationID)
/// }
/// let dashboard = try await client.portal.getDashboard(.init())
/// ```
public final class PortalClient: Sendable {
    /// The typed calls of `portal.gateway.v1.PortalService`.
    public let portal: Portal_Gateway_V1_PortalClient
    private let channel: RPCClientChannel
    private let token: SessionToken

    /// A client of the gateway at `host:port` in cleartext (connects on the first call, reconnects when needed).
    public convenience init(host: String = "127.0.0.1", port: Int = 50050, sessionToken: String? = nil) {
        self.init(channel: RPCClientChannel(host: host, port: port), sessionToken: sessionToken)
    }

    /// A client of the gateway at `host:port` over TLS: the gateway's certificate must chain to the PEM CA
    /// in `caFile` and name `host`; `certificateFile` and `keyFile` present a client certificate.
    ///
    /// Throws a `TLSConfigurationError` naming a file that cannot be used.
    public convenience init(
        host: String, port: Int = 50050, caFile: String, certificateFile: String? = nil, keyFile: String? = nil,
        sessionToken: String? = nil
    ) throws {
        var configuration = RPCClientChannel.Configuration()
        configuration.tls = try .client(
            TLSClientSettings(caFile: caFile, certificateFile: certificateFile, keyFile: keyFile))
        self.init(
            channel: RPCClientChannel(host: host, port: port, configuration: configuration), sessionToken: sessionToken)
    }

    private init(channel: RPCClientChannel, sessionToken: String?) {
        self.channel = channel
        token = SessionToken(sessionToken)
        portal = Portal_Gateway_V1_PortalClient(channel: BearerTokenChannel(base: channel, token: token))
    }

    /// The bearer token calls carry: set by `login`, or by the program (a saved session).
    public var sessionToken: String? {
        get { token.value }
        set { token.value = newValue }
    }

    /// Signs in to one organization and keeps the session token for the calls that follow.
    @discardableResult
    public func login(
        organizationID: String, email: String, password: String, options: CallOptions = .init()
    ) async throws -> Portal_Gateway_V1_LoginResponse {
        try await keepSession(
            portal.login(
                .with {
                    $0.organizationID = organizationID
                    $0.email = email
                    $0.password = password
                }, options: options))
    }

    /// Signs in with email and password alone. A member of one organization is signed in (the token
    /// is kept); a member of several gets no session but `choiceToken` and `organizationChoices`:
    /// finish with `login(choiceToken:organizationID:)` within 5 minutes.
    @discardableResult
    public func login(
        email: String, password: String, options: CallOptions = .init()
    ) async throws -> Portal_Gateway_V1_LoginResponse {
        try await keepSession(
            portal.login(
                .with {
                    $0.email = email
                    $0.password = password
                }, options: options))
    }

    /// Finishes a sign-in that offered a choice, in the organization chosen, and keeps the session token.
    @discardableResult
    public func login(
        choiceToken: String, organizationID: String, options: CallOptions = .init()
    ) async throws -> Portal_Gateway_V1_LoginResponse {
        try await keepSession(
            portal.login(
                .with {
                    $0.choiceToken = choiceToken
                    $0.organizationID = organizationID
                }, options: options))
    }

    private func keepSession(_ response: Portal_Gateway_V1_LoginResponse) -> Portal_Gateway_V1_LoginResponse {
        if !response.sessionToken.isEmpty { token.value = response.sessionToken }
        return response
    }

    /// Ends the session at the gateway and forgets its token.
    public func logout(options: CallOptions = .init()) async throws {
        _ = try await portal.logout(.init(), options: options)
        token.value = nil
    }

    /// Closes the connection.
    public func close() async {
        await channel.close()
    }
}

/// The session token shared by a client's calls.
final class SessionToken: Sendable {
    private let state: Locked<String?>

    init(_ value: String?) {
        state = Locked(value)
    }

    var value: String? {
        get { state.withLock { $0 } }
        set { state.withLock { $0 = newValue } }
    }
}

/// Adds `authorization: Bearer <token>` to every call that goes through it.
struct BearerTokenChannel: RPCChannel {
    let base: any RPCChannel
    let token: SessionToken

    func openCall(
        _ method: MethodDescriptor, metadata: Metadata, options: CallOptions
    ) async throws -> any ClientCallStream {
        var metadata = metadata
        if let value = token.value, metadata.firstString(forKey: "authorization") == nil {
            metadata.addString("Bearer \(value)", forKey: "authorization")
        }
        return try await base.openCall(method, metadata: metadata, options: options)
    }
}
