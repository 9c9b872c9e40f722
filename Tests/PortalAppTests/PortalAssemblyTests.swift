import Foundation
import Logging
import PortalApp
import PortalClient
import PortalHTTP2
import PortalTestSupport
import ServiceLifecycle
import Testing

@Suite("The portal assembled in one process")
struct PortalAssemblyTests {
    @Test func aNewAdminSignsInThroughTheClientLibraryAndSeesTheRelayedAuditTrail() async throws {
        try await PortalStack.run { portal in
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
