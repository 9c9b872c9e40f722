import Foundation
import Logging
import PortalAPI
import PortalApp
import PortalHTTP2
import PortalRPC
import PortalStorage
import PortalTestSupport

@testable import PortalAudit

/// A real audit service on a loopback port with a fresh database, and a client to it.
struct AuditHarness: Sendable {
    let client: Portal_Audit_V1_AuditClient
    let channel: RPCClientChannel
    let component: AuditComponent
    let dataDirectory: String

    /// Runs `body` against a fresh service and database on `backend`; everything is torn down afterwards.
    static func run<Result: Sendable>(
        on backend: TestBackend = .sqlite, _ body: @Sendable (AuditHarness) async throws -> Result
    ) async throws -> Result {
        let box = ComponentBox<AuditComponent>()
        let database = try await backend.freshDatabase()
        return try await withServiceServer(
            .audit,
            start: { directory, logger in
                let component = try await AuditComponent.start(
                    dataDirectory: directory, database: database, logger: logger)
                box.value = component
                return ServiceComponent(services: [component.service], database: component.database)
            }
        ) { channel, directory in
            try await body(
                AuditHarness(
                    client: Portal_Audit_V1_AuditClient(channel: channel), channel: channel, component: box.value!,
                    dataDirectory: directory))
        }
    }

    /// A valid event of `organizationID`.
    static func event(
        _ organizationID: String, message: String, type: Portal_Audit_V1_EventType = .members,
        user: String = "Ada Lovelace",
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
