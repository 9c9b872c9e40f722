import Foundation
import Logging
import PortalAPI
import PortalApp
@testable import PortalAudit
import PortalHTTP2
import PortalRPC
import PortalStorage

/// A real audit service on a loopback port with a fresh database, and a client to it.
struct AuditHarness: Sendable {
    let client: Portal_Audit_V1_AuditClient
    let channel: RPCClientChannel
    let component: AuditComponent
    let dataDirectory: String

    static func run<Result: Sendable>(_ body: @Sendable (AuditHarness) async throws -> Result) async throws -> Result {
        let directory = NSTemporaryDirectory() + "audit-test-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var logger = Logger(label: "audit-test")
        logger.logLevel = .critical
        let component = try await AuditComponent.start(dataDirectory: directory, logger: logger)
        let (server, _) = ServerAssembly.makeServer(
            services: [component.service], configuration: RPCServer.Configuration(host: "127.0.0.1", port: 0), logger: logger)
        return try await withThrowingTaskGroup(of: Result?.self) { group in
            group.addTask {
                try await server.run()
                return nil
            }
            let port = try await server.boundAddress().port!
            let channel = RPCClientChannel(host: "127.0.0.1", port: port)
            let harness = AuditHarness(client: Portal_Audit_V1_AuditClient(channel: channel), channel: channel, component: component, dataDirectory: directory)
            defer { server.beginGracefulShutdown() }
            do {
                let result = try await body(harness)
                await channel.close()
                server.beginGracefulShutdown()
                while let next = try await group.next() { if next != nil { break } }
                await component.store.close()
                return result
            } catch {
                await channel.close()
                server.beginGracefulShutdown()
                group.cancelAll()
                await component.store.close()
                throw error
            }
        }
    }

    /// A valid event of `organizationID`.
    static func event(
        _ organizationID: String, message: String, type: Portal_Audit_V1_EventType = .members, user: String = "Ada Lovelace",
        at seconds: Int64 = 1_772_719_629, id: String = UUID().uuidString
    ) -> Portal_Audit_V1_NewEvent {
        .with {
            $0.eventID = id
            $0.organizationID = organizationID
            $0.time = Google_Protobuf_Timestamp(seconds: seconds)
            $0.eventType = type
            $0.action = .memberInvited
            $0.message = message
            $0.user = user
        }
    }

    /// Appends events and returns (stored, duplicates).
    func append(_ events: [Portal_Audit_V1_NewEvent]) async throws -> (Int32, Int32) {
        let response = try await client.appendEvents(.with { $0.events = events })
        return (response.storedCount, response.duplicateCount)
    }
}
