import ArgumentParser
import Foundation
import PortalClient

/// `portalctl`: the End Customer Portal from the command line, for people and scripts.
///
/// Exit codes: 0 success, 1 the portal could not be reached or failed, 3 not signed in (or the
/// session ended), 4 the role does not allow it, 5 not found, 6 refused (invalid or conflicting
/// request, precondition not met), 64 bad command line.
@main
struct PortalCtl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "portalctl",
        abstract: "The End Customer Portal from the command line.",
        discussion: """
            Sign in once with `portalctl login --email EMAIL`; the session, the gateway and its TLS CA are \
            kept in ~/.config/portalctl/session (or --session / PORTALCTL_SESSION) until it expires or \
            you log out, so later commands need no --gateway or --tls-ca. Options go before or after \
            the command: `portalctl --gateway localhost:50050 --tls-ca ca.crt login --email EMAIL`.
            Exit codes: 0 success, 1 unreachable or failed, 3 not signed in, 4 not allowed for your role, \
            5 not found, 6 refused, 64 bad command line.
            """,
        subcommands: [
            Login.self, AcceptInvite.self, Logout.self, WhoAmI.self, SwitchOrganization.self, Dashboard.self,
            Products.self, Product.self, Entitlements.self, Entitlement.self, Activate.self, Activations.self,
            AuditLog.self, Events.self, Webhooks.self, Members.self, Invites.self, InviteMember.self, ResendInvite.self,
            RevokeInvite.self,
            UpdateMember.self, DeleteMember.self,
        ])

    /// The options given before the command (`portalctl --gateway H:P login …`); every command reads
    /// them through its own `GlobalOptions`, which ArgumentParser fills from either place.
    @OptionGroup var global: GlobalOptions
}

/// Options every command takes: where the gateway is, where the session lives, how to print.
struct GlobalOptions: ParsableArguments {
    @Option(
        help: "The gateway's host:port (env PORTAL_GATEWAY; default: the one you signed in to, else 127.0.0.1:50050).")
    var gateway: String?

    @Option(
        help:
            "File holding the session: token, gateway and TLS CA (env PORTALCTL_SESSION; default ~/.config/portalctl/session)."
    )
    var session: String?

    @Option(
        name: .customLong("tls-ca"),
        help:
            "Connect over TLS, trusting gateways whose certificate this PEM CA issued (env PORTAL_TLS_CA; default: the one you signed in with)."
    )
    var tlsCA: String?

    @Flag(help: "Print JSON instead of tables.")
    var json = false

    @Option(help: "Seconds to wait for an answer (exports wait as long as they stream).")
    var timeout: Double = 30

    func validate() throws {
        guard address != nil else { throw ValidationError("--gateway: expected host:port, not \(gatewayAddress)") }
        guard timeout > 0 else { throw ValidationError("--timeout: must be positive") }
    }

    /// The session saved by the last sign-in, if any.
    var savedSession: SavedSession? { SavedSession.load(from: sessionFile) }

    /// The gateway to call: `--gateway`, `PORTAL_GATEWAY`, the one signed in to, else this machine's default.
    var gatewayAddress: String {
        gateway ?? ProcessInfo.processInfo.environment["PORTAL_GATEWAY"] ?? savedSession?.gateway ?? "127.0.0.1:50050"
    }

    /// The CA to trust: `--tls-ca`, `PORTAL_TLS_CA`, or the one signed in with when calling that same gateway.
    var caFile: String? {
        if let given = tlsCA ?? ProcessInfo.processInfo.environment["PORTAL_TLS_CA"] { return given }
        guard let saved = savedSession, saved.gateway == gatewayAddress else { return nil }
        return saved.tlsCA
    }

    var address: (host: String, port: Int)? {
        let parts = gatewayAddress.split(separator: ":")
        guard parts.count == 2, let port = Int(parts[1]), (1...65535).contains(port) else { return nil }
        return (String(parts[0]), port)
    }

    var sessionFile: String {
        if let session { return session }
        if let path = ProcessInfo.processInfo.environment["PORTALCTL_SESSION"] { return path }
        return (NSHomeDirectory() as NSString).appendingPathComponent(".config/portalctl/session")
    }

    var callOptions: CallOptions { CallOptions(timeout: .milliseconds(Int64(timeout * 1000))) }

    /// A client carrying the saved session (or `PORTAL_TOKEN`), over TLS when there is a CA to trust.
    func client() throws -> PortalClient {
        let token = ProcessInfo.processInfo.environment["PORTAL_TOKEN"] ?? savedSession?.token
        guard let ca = caFile else {
            return PortalClient(host: address!.host, port: address!.port, sessionToken: token)
        }
        return try PortalClient(host: address!.host, port: address!.port, caFile: ca, sessionToken: token)
    }

    /// Keeps a new session for later commands, with the gateway and CA it was opened with.
    func save(sessionToken: String) throws {
        let ca = caFile.map { path in
            path.hasPrefix("/")
                ? path : (FileManager.default.currentDirectoryPath as NSString).appendingPathComponent(path)
        }
        try SavedSession(
            token: sessionToken, gateway: gatewayAddress, tlsCA: ca.map { ($0 as NSString).standardizingPath }
        ).save(to: sessionFile)
    }

    /// Runs `body` with a client, turning a portal refusal into its message and exit code.
    func run(_ body: (PortalClient) async throws -> Void) async throws {
        let client: PortalClient
        do {
            client = try self.client()
        } catch {
            FileHandle.standardError.write(Data("portalctl: \(error)\n".utf8))
            throw ExitCode(1)
        }
        do {
            try await body(client)
            await client.close()
        } catch let error as RPCError
            where error.code == .unauthenticated && error.message.hasPrefix(TransportPolicyInterceptor.cleartextRefusal)
        {
            await client.close()
            FileHandle.standardError.write(
                Data(
                    "portalctl: the gateway accepts only TLS; connect with --tls-ca FILE (its CA certificate; env PORTAL_TLS_CA)\n"
                        .utf8))
            throw ExitCode(1)
        } catch let error as RPCError {
            await client.close()
            FileHandle.standardError.write(Data("portalctl: \(Self.explain(error))\n".utf8))
            throw ExitCode(Self.exitCode(error.code))
        } catch {
            await client.close()
            throw error
        }
    }

    static func explain(_ error: RPCError) -> String {
        switch error.code {
        case .unauthenticated: "not signed in: \(error.message) (run `portalctl login`)"
        case .permissionDenied: "not allowed: \(error.message)"
        case .notFound: "not found: \(error.message)"
        case .unavailable: "the portal cannot be reached: \(error.message)"
        default: "\(error.code): \(error.message)"
        }
    }

    static func exitCode(_ code: RPCStatusCode) -> Int32 {
        switch code {
        case .unauthenticated: 3
        case .permissionDenied: 4
        case .notFound: 5
        case .invalidArgument, .failedPrecondition, .alreadyExists, .outOfRange, .resourceExhausted, .aborted: 6
        default: 1
        }
    }
}

/// Paging options of list commands.
struct PagingOptions: ParsableArguments {
    @Option(help: "Rows per page (default 50, at most 500).")
    var pageSize: Int32 = 0

    @Option(help: "The next page's token, printed under the previous page.")
    var pageToken: String = ""

    @Option(help: "Sort column and direction, e.g. \"activation_date desc\".")
    var sort: String = ""
}
