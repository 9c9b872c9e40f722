import Foundation
import Logging
import PortalAPI
import PortalApp
import PortalHTTP2
import PortalRPC
import PortalTestSupport
import SQLKit

@testable import PortalEntitlements

/// A real entitlements service on a loopback port with a fresh database, and a client to it.
struct EntitlementsHarness: Sendable {
    let client: Portal_Entitlements_V1_EntitlementsClient
    let component: EntitlementsComponent

    static let admin = PrincipalMetadata.metadata(memberID: "mem_ada", displayName: "Ada Lovelace")

    /// Runs `body` against a fresh service and database on `backend`; everything is torn down afterwards.
    static func run<Result: Sendable>(
        on backend: TestBackend = .sqlite, searchLimits: EntitlementsStore.SearchLimits = .init(),
        _ body: @Sendable (EntitlementsHarness) async throws -> Result
    ) async throws -> Result {
        let box = ComponentBox<EntitlementsComponent>()
        let database = try await backend.freshDatabase()
        return try await withServiceServer(
            .entitlements,
            start: { directory, logger in
                let component = try await EntitlementsComponent.start(
                    dataDirectory: directory, database: database, logger: logger, searchLimits: searchLimits)
                box.value = component
                return ServiceComponent(
                    services: [component.service], database: component.database, workers: component.workers)
            }
        ) { channel, _ in
            try await body(
                EntitlementsHarness(
                    client: Portal_Entitlements_V1_EntitlementsClient(channel: channel), component: box.value!))
        }
    }

    /// Upserts catalog products `P1`, `P2`, `P3`.
    func catalog() async throws {
        for (id, name) in [("P1", "Nexus Core"), ("P2", "Vision Edge"), ("P3", "Suite Pro")] {
            _ = try await client.upsertProduct(
                .with {
                    $0.product = .with {
                        $0.productID = id
                        $0.name = name
                        $0.licenseType = "Subscription"
                        $0.productDescription = "\(name) licenses"
                        $0.deploymentType = "Cloud"
                    }
                })
        }
    }

    /// Transfers an entitlement of `lines` to `organizationID`.
    @discardableResult
    func transfer(
        _ id: String, to organizationID: String, lines: [(String, Int64)], expires: Int64? = nil,
        orderedAt: Int64 = 1_772_000_000
    )
        async throws -> Portal_Entitlements_V1_TransferEntitlementResponse
    {
        try await client.transferEntitlement(
            .with {
                $0.entitlementID = id
                $0.organizationID = organizationID
                $0.salesOrder = "SO-\(id)"
                $0.poNumber = "PO-\(id)"
                $0.orderDate = Google_Protobuf_Timestamp(seconds: orderedAt)
                if let expires { $0.expirationDate = Google_Protobuf_Timestamp(seconds: expires) }
                $0.lines = lines.map { line in
                    .with {
                        $0.productID = line.0
                        $0.quantity = line.1
                    }
                }
            })
    }

    /// Activates `quantity` of `product` from `entitlement`.
    func activate(
        _ quantity: Int64, of product: String, from entitlement: String, organizationID: String = "org-1",
        key: String = UUID().uuidString,
        serialNumber: String = "SN-1"
    ) async throws -> Portal_Entitlements_V1_Activation {
        try await client.activate(
            .with {
                $0.organizationID = organizationID
                $0.entitlementID = entitlement
                $0.productID = product
                $0.quantity = quantity
                $0.projectName = "Apollo"
                $0.projectManager = "Grace Hopper"
                $0.serialNumber = serialNumber
                $0.idempotencyKey = key
            }, metadata: Self.admin
        ).activation!
    }

    /// The audit events queued in the outbox, oldest first.
    func auditEvents() async throws -> [Portal_Audit_V1_NewEvent] {
        try await component.database.read { database in
            try await database.raw("SELECT payload FROM outbox WHERE topic = 'audit' ORDER BY seq").all().map { row in
                try Portal_Audit_V1_NewEvent(serializedBytes: [UInt8](try row.decode(column: "payload", as: Data.self)))
            }
        }
    }
}
