import Foundation
import Logging
import PortalAPI
import PortalApp
import PortalHTTP2
import PortalRPC
import ServiceLifecycle

/// The four services assembled in one process exactly as `portal` assembles them, each on its own
/// loopback port with its own data folder.
public struct PortalStack: Sendable {
    /// The gateway's port.
    public let gatewayPort: Int
    /// Identity's port, for internal calls (creating organizations).
    public let identityPort: Int
    /// The folder holding each service's data folder.
    public let dataDirectory: String

    /// Runs `body` with the four services running, then shuts them down.
    public static func run(_ body: @Sendable (PortalStack) async throws -> Void) async throws {
        let directory = NSTemporaryDirectory() + "portal-assembly-test-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var logger = Logger(label: "portal-assembly-test")
        logger.logLevel = .critical
        func settings(_ kind: PortalServiceKind) -> ServiceSettings {
            ServiceSettings(kind: kind, host: "127.0.0.1", port: 0, dataDirectory: directory + "/" + kind.rawValue)
        }
        var services: [any Service] = []
        let audit = try await PortalRuntime.assemble(settings(.audit), logger: logger)
        services += audit.services
        let auditAddress = "127.0.0.1:\(try await audit.server.boundAddress().port!)"
        var backends: [PortalServiceKind: String] = [:]
        for kind in [PortalServiceKind.identity, .entitlements] {
            var backend = settings(kind)
            backend.auditAddress = auditAddress
            let assembled = try await PortalRuntime.assemble(backend, logger: logger)
            services += assembled.services
            backends[kind] = "127.0.0.1:\(try await assembled.server.boundAddress().port!)"
        }
        var gatewaySettings = settings(.gateway)
        gatewaySettings.auditAddress = auditAddress
        gatewaySettings.identityAddress = backends[.identity]!
        gatewaySettings.entitlementsAddress = backends[.entitlements]!
        let gateway = try await PortalRuntime.assemble(gatewaySettings, logger: logger)
        services += gateway.services
        let portal = PortalStack(
            gatewayPort: try await gateway.server.boundAddress().port!,
            identityPort: Int(backends[.identity]!.split(separator: ":").last!)!, dataDirectory: directory)
        let group = ServiceGroup(configuration: .init(services: services.map { .init(service: $0) }, logger: logger))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            do {
                try await body(portal)
            } catch {
                await group.triggerGracefulShutdown()
                throw error
            }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
    }

    /// The invite code mailed to `email` (from `organizationID` when given), once identity's mail
    /// relay has put it in the spool.
    public func inviteCode(for email: String, organizationID: String? = nil) async throws -> String {
        let spool = dataDirectory + "/identity/mail-spool"
        let giveUp = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < giveUp {
            for name in (try? FileManager.default.contentsOfDirectory(atPath: spool)) ?? [] {
                guard let text = try? String(contentsOfFile: spool + "/" + name, encoding: .utf8),
                    text.contains("To: \(email)\r\n"),
                    organizationID.map({ text.contains("X-Portal-Organization: \($0)\r\n") }) ?? true,
                    let line = text.components(separatedBy: "\r\n").first(where: { $0.hasPrefix("Invite code: ") })
                else { continue }
                return String(line.dropFirst("Invite code: ".count))
            }
            await Task.yield()
        }
        throw RPCError(.deadlineExceeded, "no invite mail to \(email) reached the spool")
    }

    /// A new organization whose first Admin, `email`, has accepted the invite with `password`
    /// (through the gateway, as a person would); returns the organization's id.
    @discardableResult
    public func organization(_ name: String, admin email: String, password: String) async throws -> String {
        let channel = RPCClientChannel(host: "127.0.0.1", port: identityPort)
        defer { Task { await channel.close() } }
        let created = try await Portal_Identity_V1_IdentityClient(channel: channel).createOrganization(
            .with {
                $0.name = name
                $0.firstAdminEmail = email
                $0.idempotencyKey = UUID().uuidString
            })
        let organizationID = created.organization?.organizationID ?? ""
        let code = try await inviteCode(for: email, organizationID: organizationID)
        let gateway = RPCClientChannel(host: "127.0.0.1", port: gatewayPort)
        defer { Task { await gateway.close() } }
        _ = try await Portal_Gateway_V1_PortalClient(channel: gateway).acceptInvite(
            .with {
                $0.inviteSecret = code
                $0.firstName = "Ada"
                $0.lastName = "Lovelace"
                $0.password = password
            })
        return organizationID
    }
}
