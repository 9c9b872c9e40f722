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
            Sign in once with `portalctl login`; the session is kept in ~/.config/portalctl/session \
            (or --session / PORTALCTL_SESSION) until it expires or you log out.
            Exit codes: 0 success, 1 unreachable or failed, 3 not signed in, 4 not allowed for your role, \
            5 not found, 6 refused, 64 bad command line.
            """,
        subcommands: [
            Login.self, AcceptInvite.self, Logout.self, WhoAmI.self, Dashboard.self,
            Products.self, Product.self, Entitlements.self, Entitlement.self, Activate.self, Activations.self,
            AuditLog.self, Members.self, Invites.self, InviteMember.self, ResendInvite.self, RevokeInvite.self,
            UpdateMember.self, DeleteMember.self,
        ])
}

/// Options every command takes: where the gateway is, where the session lives, how to print.
struct GlobalOptions: ParsableArguments {
    @Option(help: "The gateway's host:port (env PORTAL_GATEWAY).")
    var gateway: String = ProcessInfo.processInfo.environment["PORTAL_GATEWAY"] ?? "127.0.0.1:50050"

    @Option(help: "File holding the session token (env PORTALCTL_SESSION; default ~/.config/portalctl/session).")
    var session: String?

    @Option(name: .customLong("tls-ca"), help: "Connect over TLS, trusting gateways whose certificate this PEM CA issued (env PORTAL_TLS_CA).")
    var tlsCA: String?

    @Flag(help: "Print JSON instead of tables.")
    var json = false

    @Option(help: "Seconds to wait for an answer (exports wait as long as they stream).")
    var timeout: Double = 30

    func validate() throws {
        guard address != nil else { throw ValidationError("--gateway: expected host:port, not \(gateway)") }
        guard timeout > 0 else { throw ValidationError("--timeout: must be positive") }
    }

    var address: (host: String, port: Int)? {
        let parts = gateway.split(separator: ":")
        guard parts.count == 2, let port = Int(parts[1]), (1...65535).contains(port) else { return nil }
        return (String(parts[0]), port)
    }

    var sessionFile: String {
        if let session { return session }
        if let path = ProcessInfo.processInfo.environment["PORTALCTL_SESSION"] { return path }
        return (NSHomeDirectory() as NSString).appendingPathComponent(".config/portalctl/session")
    }

    var callOptions: CallOptions { CallOptions(timeout: .milliseconds(Int64(timeout * 1000))) }

    /// A client carrying the saved session (or `PORTAL_TOKEN`), over TLS with `--tls-ca`.
    func client() throws -> PortalClient {
        let token = ProcessInfo.processInfo.environment["PORTAL_TOKEN"]
            ?? (try? String(contentsOfFile: sessionFile, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
        guard let ca = tlsCA ?? ProcessInfo.processInfo.environment["PORTAL_TLS_CA"] else {
            return PortalClient(host: address!.host, port: address!.port, sessionToken: token)
        }
        return try PortalClient(host: address!.host, port: address!.port, caFile: ca, sessionToken: token)
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
        } catch let error as RPCError where error.code == .unauthenticated && error.message.hasPrefix(TransportPolicyInterceptor.cleartextRefusal) {
            await client.close()
            FileHandle.standardError.write(Data("portalctl: the gateway accepts only TLS; connect with --tls-ca FILE (its CA certificate; env PORTAL_TLS_CA)\n".utf8))
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
