import Foundation
import Logging
import PortalApp
import PortalClient
import PortalHTTP2
import ServiceLifecycle
import Testing

/// The four services assembled in one process exactly as `portal` assembles them, each on its own
/// loopback port with its own data folder.
private struct Portal: Sendable {
    let gatewayPort: Int
    let identityPort: Int
    let dataDirectory: String

    static func run(_ body: @Sendable (Portal) async throws -> Void) async throws {
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
        let portal = Portal(
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

    /// The invite code mailed to `email`, once identity's mail relay has put it in the spool.
    func inviteCode(for email: String) async throws -> String {
        let spool = dataDirectory + "/identity/mail-spool"
        let giveUp = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < giveUp {
            for name in (try? FileManager.default.contentsOfDirectory(atPath: spool)) ?? [] {
                guard let text = try? String(contentsOfFile: spool + "/" + name, encoding: .utf8),
                    text.contains("To: \(email)\r\n"),
                    let line = text.components(separatedBy: "\r\n").first(where: { $0.hasPrefix("Invite code: ") })
                else { continue }
                return String(line.dropFirst("Invite code: ".count))
            }
            await Task.yield()
        }
        throw RPCError(.deadlineExceeded, "no invite mail to \(email) reached the spool")
    }
}

@Suite("The portal assembled in one process")
struct PortalAssemblyTests {
    @Test func aNewAdminSignsInThroughTheClientLibraryAndSeesTheRelayedAuditTrail() async throws {
        try await Portal.run { portal in
            let identity = Portal_Identity_V1_IdentityClient(
                channel: RPCClientChannel(host: "127.0.0.1", port: portal.identityPort))
            let created = try await identity.createOrganization(
                .with {
                    $0.name = "Acme Audio"
                    $0.firstAdminEmail = "ada@example.com"
                    $0.idempotencyKey = "acme-1"
                })
            let client = PortalClient(host: "127.0.0.1", port: portal.gatewayPort)
            let code = try await portal.inviteCode(for: "ada@example.com")
            let accepted = try await client.portal.acceptInvite(
                .with {
                    $0.inviteSecret = code
                    $0.firstName = "Ada"
                    $0.lastName = "Lovelace"
                    $0.password = "correct horse battery"
                })
            #expect(accepted.member?.role == .admin)
            #expect(client.sessionToken == nil, "accepting an invite does not sign the client in by itself")

            await #expect(throws: RPCError.self) {
                try await client.login(email: "ada@example.com", password: "wrong horse battery")
            }
            try await client.login(email: "ada@example.com", password: "correct horse battery")
            let me = try await client.portal.whoAmI(.init())
            #expect(me.principal?.organizationID == created.organization?.organizationID)
            #expect(me.principal?.email == "ada@example.com")

            // Identity's audit relay delivers the invite and the acceptance to the audit service.
            var messages: [String] = []
            let giveUp = ContinuousClock.now + .seconds(20)
            while messages.count < 2 && ContinuousClock.now < giveUp {
                messages = try await client.portal.listAuditEvents(.init()).events.map(\.message)
                await Task.yield()
            }
            #expect(messages.count == 2, "audit events: \(messages)")

            try await client.logout()
            #expect(client.sessionToken == nil)
            let refused = await #expect(throws: RPCError.self) { try await client.portal.whoAmI(.init()) }
            #expect(refused?.code == .unauthenticated)
            await client.close()
        }
    }

    @Test func aServiceThatCannotListenFailsNamingItselfAndTheCause() async throws {
        let directory = NSTemporaryDirectory() + "portal-assembly-test-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let logger = Logger(label: "portal-assembly-test")
        let first = try await PortalRuntime.assemble(
            ServiceSettings(kind: .audit, host: "127.0.0.1", port: 0, dataDirectory: directory + "/a"), logger: logger)
        let port = try await first.server.boundAddress().port!
        let error = await #expect(throws: StartupError.self) {
            _ = try await PortalRuntime.assemble(
                ServiceSettings(kind: .audit, host: "127.0.0.1", port: port, dataDirectory: directory + "/b"),
                logger: logger)
        }
        #expect(error?.service == .audit)
        #expect(error?.description.hasPrefix("audit: ") == true)
        #expect(error?.description.contains("\(port)") == true, "\(String(describing: error))")
        await PortalRuntime.abandon(first.services)
    }
}
