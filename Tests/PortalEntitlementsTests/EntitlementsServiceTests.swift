import Foundation
import PortalAPI
import PortalRPC
import PortalTestSupport
import Testing

@testable import PortalEntitlements

@Suite("Entitlements: transfers, activations and the licensing views")
struct EntitlementsServiceTests {
    @Test(arguments: TestBackend.available)
    func twoHundredConcurrentActivationsAgainstFiftyLicensesActivateExactlyFifty(backend: TestBackend) async throws {
        try await EntitlementsHarness.run(on: backend) { harness in
            try await harness.catalog()
            try await harness.transfer("ENT-1", to: "org-1", lines: [("P1", 50)])
            let outcomes = try await withThrowingTaskGroup(of: RPCStatusCode.self) { group in
                for _ in 0..<200 {
                    group.addTask {
                        do {
                            _ = try await harness.activate(1, of: "P1", from: "ENT-1")
                            return .ok
                        } catch let error as RPCError {
                            return error.code
                        }
                    }
                }
                return try await group.reduce(into: [RPCStatusCode]()) { $0.append($1) }
            }
            #expect(outcomes.filter { $0 == .ok }.count == 50)
            #expect(outcomes.filter { $0 == .failedPrecondition }.count == 150)
            let summary = try await harness.client.getSummary(.with { $0.organizationID = "org-1" })
            #expect(summary.activatedLicenses == 50)
            #expect(summary.unactivatedLicenses == 0)
        }
    }

    @Test(arguments: TestBackend.available) func activatingMoreThanIsUnactivatedIsRefusedWithTheNumbers(
        backend: TestBackend
    ) async throws {
        try await EntitlementsHarness.run(on: backend) { harness in
            try await harness.catalog()
            try await harness.transfer("ENT-1", to: "org-1", lines: [("P1", 10)])
            _ = try await harness.activate(7, of: "P1", from: "ENT-1")
            let error = try await #require(throws: RPCError.self) {
                try await harness.activate(4, of: "P1", from: "ENT-1")
            }
            #expect(error.code == .failedPrecondition)
            #expect(error.message.contains("4 requested but only 3 of 10"))
        }
    }

    @Test(arguments: TestBackend.available) func anExpiredEntitlementCannotBeActivated(
        backend: TestBackend
    ) async throws {
        try await EntitlementsHarness.run(on: backend) { harness in
            try await harness.catalog()
            try await harness.transfer("ENT-OLD", to: "org-1", lines: [("P1", 10)], expires: 1_772_100_000)
            let error = try await #require(throws: RPCError.self) {
                try await harness.activate(1, of: "P1", from: "ENT-OLD")
            }
            #expect(error.code == .failedPrecondition)
            #expect(error.message.contains("expired"))
            let entitlement = try await harness.client.getEntitlement(
                .with {
                    $0.organizationID = "org-1"
                    $0.entitlementID = "ENT-OLD"
                }
            ).entitlement!
            #expect(entitlement.status == .expired)
        }
    }

    @Test(arguments: TestBackend.available) func aRetriedActivationReturnsTheFirstResultAndActivatesNothingMore(
        backend: TestBackend
    ) async throws {
        try await EntitlementsHarness.run(on: backend) { harness in
            try await harness.catalog()
            try await harness.transfer("ENT-1", to: "org-1", lines: [("P1", 10)])
            let first = try await harness.activate(3, of: "P1", from: "ENT-1", key: "retry-me")
            let again = try await harness.activate(3, of: "P1", from: "ENT-1", key: "retry-me")
            #expect(again.activationID == first.activationID)
            #expect(try await harness.client.getSummary(.with { $0.organizationID = "org-1" }).activatedLicenses == 3)
            let misuse = try await #require(throws: RPCError.self) {
                try await harness.activate(4, of: "P1", from: "ENT-1", key: "retry-me")
            }
            #expect(misuse.code == .invalidArgument)
            #expect(misuse.message.hasPrefix("idempotency_key"))
        }
    }

    @Test(arguments: TestBackend.available) func transfersAreIdempotentAndMayOnlyAddQuantity(
        backend: TestBackend
    ) async throws {
        try await EntitlementsHarness.run(on: backend) { harness in
            try await harness.catalog()
            #expect(try await harness.transfer("ENT-1", to: "org-1", lines: [("P1", 10), ("P2", 5)]).created)
            let repeated = try await harness.transfer("ENT-1", to: "org-1", lines: [("P1", 10), ("P2", 5)])
            #expect(!repeated.created)
            #expect(repeated.entitlement?.totalAvailableLicenses == 15)
            let grown = try await harness.transfer("ENT-1", to: "org-1", lines: [("P1", 12), ("P2", 5)])
            #expect(grown.entitlement?.totalAvailableLicenses == 17)
            let shrunk = try await #require(throws: RPCError.self) {
                try await harness.transfer("ENT-1", to: "org-1", lines: [("P1", 9), ("P2", 5)])
            }
            #expect(shrunk.code == .failedPrecondition)
            let moved = try await #require(throws: RPCError.self) {
                try await harness.transfer("ENT-1", to: "org-2", lines: [("P1", 12), ("P2", 5)])
            }
            #expect(moved.code == .failedPrecondition)
            #expect(moved.message.hasPrefix("organization_id"))
            let events = try await harness.auditEvents()
            #expect(events.map(\.eventType) == [.licenses, .licenses])
            #expect(events.map(\.action) == [.entitlementTransferred, .entitlementTransferred])
        }
    }

    @Test(arguments: TestBackend.available) func activationsAreLoggedAuditedAndListed(backend: TestBackend) async throws
    {
        try await EntitlementsHarness.run(on: backend) { harness in
            try await harness.catalog()
            try await harness.transfer("ENT-1", to: "org-1", lines: [("P1", 10), ("P2", 20)])
            try await harness.transfer("ENT-2", to: "org-1", lines: [("P1", 5)])
            try await harness.transfer("ENT-X", to: "org-2", lines: [("P1", 99)])
            _ = try await harness.activate(2, of: "P1", from: "ENT-1")
            _ = try await harness.activate(4, of: "P2", from: "ENT-1")
            _ = try await harness.activate(1, of: "P1", from: "ENT-2")

            let products = try await harness.client.listProducts(.with { $0.organizationID = "org-1" })
            #expect(products.products.map(\.product!.name) == ["Nexus Core", "Vision Edge"])
            #expect(products.products.map(\.availableLicenses) == [15, 20])
            #expect(products.products.map(\.activatedLicenses) == [3, 4])
            let detail = try await harness.client.getProduct(
                .with {
                    $0.organizationID = "org-1"
                    $0.productID = "P1"
                })
            #expect(Set(detail.entitlements.map(\.entitlementID)) == ["ENT-1", "ENT-2"])
            let entitlements = try await harness.client.listEntitlements(
                .with {
                    $0.organizationID = "org-1"
                    $0.orderBy = "total_available_licenses desc"
                })
            #expect(entitlements.entitlements.map(\.entitlementID) == ["ENT-1", "ENT-2"])
            let log = try await harness.client.listActivations(
                .with {
                    $0.organizationID = "org-1"
                    $0.orderBy = "quantity asc"
                })
            #expect(log.activations.map(\.quantity) == [1, 2, 4])
            #expect(log.activations.allSatisfy { $0.activatedBy == "Ada Lovelace" && $0.serialNumber == "SN-1" })
            let searched = try await harness.client.listActivations(
                .with {
                    $0.organizationID = "org-1"
                    $0.searchText = "vision"
                })
            #expect(searched.totalSize == 1)
            let events = try await harness.auditEvents().filter { $0.eventType == .activations }
            #expect(events.count == 3)
            #expect(events[0].message == "Activated 2 licenses of Nexus Core for project Apollo")
            let otherTenant = try await #require(throws: RPCError.self) {
                try await harness.client.getEntitlement(
                    .with {
                        $0.organizationID = "org-1"
                        $0.entitlementID = "ENT-X"
                    })
            }
            #expect(otherTenant.code == .notFound)
        }
    }

    @Test(arguments: TestBackend.available) func activationsExportAsCSVWithEveryColumn(
        backend: TestBackend
    ) async throws {
        try await EntitlementsHarness.run(on: backend) { harness in
            try await harness.catalog()
            try await harness.transfer("ENT-1", to: "org-1", lines: [("P1", 100)])
            for _ in 0..<3 { _ = try await harness.activate(1, of: "P1", from: "ENT-1") }
            var csv: [UInt8] = []
            for try await chunk in try await harness.client.exportActivationsCsv(.with { $0.organizationID = "org-1" })
            { csv += chunk.chunk }
            let lines = String(decoding: csv, as: UTF8.self).components(separatedBy: "\r\n").dropLast()
            #expect(lines.count == 4)
            #expect(
                lines[0]
                    == "Activation Date,Product Name,Quantity,Project Name,Project Manager,Activated By,Entitlement ID,Serial Number"
            )
            #expect(lines[1].hasSuffix(",Nexus Core,1,Apollo,Grace Hopper,Ada Lovelace,ENT-1,SN-1"))
        }
    }
}

/// The entitlements list's sortable columns follow transfers and catalog changes.
@Suite("Entitlements: listing columns")
struct EntitlementListingTests {
    @Test(arguments: TestBackend.available) func sortingFollowsRenamedProductsAndGrownQuantities(
        backend: TestBackend
    ) async throws {
        try await EntitlementsHarness.run(on: backend) { harness in
            try await harness.catalog()
            try await harness.transfer("ENT-1", to: "org-1", lines: [("P1", 10)])
            try await harness.transfer("ENT-2", to: "org-1", lines: [("P2", 5), ("P3", 6)])
            func order(_ orderBy: String) async throws -> [String] {
                try await harness.client.listEntitlements(
                    .with {
                        $0.organizationID = "org-1"
                        $0.orderBy = orderBy
                    }
                ).entitlements.map(\.entitlementID)
            }
            #expect(try await order("product_name asc") == ["ENT-1", "ENT-2"])  // Nexus Core < Suite Pro
            #expect(try await order("total_available_licenses asc") == ["ENT-1", "ENT-2"])  // 10 < 11
            _ = try await harness.client.upsertProduct(
                .with {
                    $0.product = .with {
                        $0.productID = "P1"
                        $0.name = "Zeta Core"
                        $0.licenseType = "Subscription"
                        $0.productDescription = "Renamed"
                        $0.deploymentType = "Cloud"
                    }
                })
            #expect(try await order("product_name asc") == ["ENT-2", "ENT-1"])  // Suite Pro < Zeta Core
            try await harness.transfer("ENT-1", to: "org-1", lines: [("P1", 12)])
            #expect(try await order("total_available_licenses desc") == ["ENT-1", "ENT-2"])  // 12 > 11
        }
    }
}

/// Activations that share one transaction (group commit) are decided exactly as if they ran one after another.
@Suite("Entitlements: activations batched into one transaction")
struct ActivationBatchTests {
    @Test(arguments: TestBackend.available) func eachActivationInABatchGetsItsOwnOutcome(
        backend: TestBackend
    ) async throws {
        try await EntitlementsHarness.run(on: backend) { harness in
            try await harness.catalog()
            try await harness.transfer("ENT-1", to: "org-1", lines: [("P1", 10), ("P2", 5)])
            try await harness.transfer("ENT-OLD", to: "org-1", lines: [("P1", 10)], expires: 1_772_100_000)
            try await harness.transfer("ENT-X", to: "org-2", lines: [("P1", 10)])
            let now = Int64(Date().timeIntervalSince1970 * 1000)
            func pending(_ quantity: Int64, _ product: String, _ entitlement: String, key: String) -> PendingActivation
            {
                PendingActivation(
                    request: .init(
                        organizationID: "org-1", entitlementID: entitlement, productID: product, quantity: quantity,
                        projectName: "Apollo",
                        projectManager: "Grace Hopper", serialNumber: "", idempotencyKey: key),
                    actor: .init(memberID: "mem_ada", displayName: "Ada Lovelace"), now: now)
            }
            let batch = [
                pending(4, "P1", "ENT-1", key: "a"),
                pending(7, "P1", "ENT-1", key: "b"),
                pending(4, "P1", "ENT-1", key: "a"),
                pending(3, "P1", "ENT-1", key: "a"),
                pending(6, "P1", "ENT-1", key: "c"),
                pending(1, "P1", "ENT-X", key: "d"),
                pending(1, "P1", "ENT-OLD", key: "e"),
                pending(1, "P3", "ENT-1", key: "f"),
                pending(5, "P2", "ENT-1", key: "g"),
            ]
            let outcomes = try await harness.component.database.transaction { database in
                try await ActivationBatch(batch).run(database)
            }
            func code(_ index: Int) -> RPCStatusCode? {
                if case .failure(let error as any RPCErrorConvertible) = outcomes[index] { return error.rpcError.code }
                return nil
            }
            let first = try outcomes[0].get()
            #expect(first.quantity == 4)
            #expect(code(1) == .failedPrecondition)
            if case .failure(let error as any RPCErrorConvertible) = outcomes[1] {
                #expect(error.rpcError.message.contains("only 6 of 10"))
            }
            #expect(try outcomes[2].get().id == first.id)
            #expect(code(3) == .invalidArgument)
            #expect(try outcomes[4].get().quantity == 6)
            #expect(code(5) == .notFound)
            #expect(code(6) == .failedPrecondition)
            #expect(code(7) == .notFound)
            #expect(try outcomes[8].get().productName == "Vision Edge")

            let entitlement = try await harness.client.getEntitlement(
                .with {
                    $0.organizationID = "org-1"
                    $0.entitlementID = "ENT-1"
                }
            ).entitlement!
            #expect(entitlement.lines.map(\.activatedLicenses) == [10, 5])
            let log = try await harness.client.listActivations(.with { $0.organizationID = "org-1" })
            #expect(log.totalSize == 3)
            #expect(Set(log.activations.map(\.activationID)) == Set([0, 4, 8].map { try! outcomes[$0].get().id }))
            #expect(
                try await harness.auditEvents().filter { $0.eventType == .activations }.map(\.subjectID)
                    == [0, 4, 8].map { try! outcomes[$0].get().id })

            let retried = try await harness.activate(4, of: "P1", from: "ENT-1", key: "a", serialNumber: "")
            #expect(retried.activationID == first.id)
            // A key stands for the whole request: any other field is a different activation.
            await #expect(throws: RPCError.self) {
                try await harness.activate(4, of: "P1", from: "ENT-1", key: "a", serialNumber: "SN-9")
            }
        }
    }
}

@Suite("Entitlements: searching the activations log")
struct ActivationSearchTests {
    @Test(arguments: TestBackend.available) func searchPagesCoverEveryMatchOnceWithTheSameTotal(
        backend: TestBackend
    ) async throws {
        try await EntitlementsHarness.run(on: backend) { harness in
            try await harness.catalog()
            try await harness.transfer("ENT-1", to: "org-1", lines: [("P1", 100), ("P2", 100)])
            try await harness.transfer("ENT-X", to: "org-2", lines: [("P2", 100)])
            for _ in 0..<25 { _ = try await harness.activate(1, of: "P2", from: "ENT-1") }
            for _ in 0..<5 { _ = try await harness.activate(1, of: "P1", from: "ENT-1") }
            for _ in 0..<7 { _ = try await harness.activate(1, of: "P2", from: "ENT-X", organizationID: "org-2") }
            for text in ["vision", "VISION EDGE", "sion ed"] {
                var seen: [String] = []
                var token = ""
                repeat {
                    let page = try await harness.client.listActivations(
                        .with {
                            $0.organizationID = "org-1"
                            $0.searchText = text
                            $0.pageSize = 10
                            $0.pageToken = token
                        })
                    #expect(page.totalSize == 25, "\(text)")
                    #expect(
                        page.activations.allSatisfy { $0.productName == "Vision Edge" && $0.organizationID == "org-1" })
                    seen += page.activations.map(\.activationID)
                    token = page.nextPageToken
                } while !token.isEmpty
                #expect(seen.count == 25 && Set(seen).count == 25, "\(text)")
                let oldestFirst = try await harness.client.listActivations(
                    .with {
                        $0.organizationID = "org-1"
                        $0.searchText = text
                        $0.pageSize = 10
                        $0.orderBy = "activation_date asc"
                    })
                #expect(oldestFirst.activations.map(\.activationID) == Array(seen.suffix(10).reversed()), "\(text)")
            }
            let none = try await harness.client.listActivations(
                .with {
                    $0.organizationID = "org-1"
                    $0.searchText = "vision edgeX"
                })
            #expect(none.totalSize == 0 && none.activations.isEmpty)
        }
    }

    /// Every match exactly once across the pages of `text`, and the total each page reports.
    static func pages(
        _ text: String, _ harness: EntitlementsHarness
    ) async throws -> (ids: [String], totals: Set<Int64>) {
        var ids: [String] = []
        var totals = Set<Int64>()
        var token = ""
        repeat {
            let page = try await harness.client.listActivations(
                .with {
                    $0.organizationID = "org-1"
                    $0.searchText = text
                    $0.pageSize = 4
                    $0.pageToken = token
                })
            #expect(page.activations.allSatisfy { $0.organizationID == "org-1" })
            ids += page.activations.map(\.activationID)
            totals.insert(page.totalSize)
            token = page.nextPageToken
        } while !token.isEmpty
        return (ids, totals)
    }

    @Test(arguments: TestBackend.available) func everySearchPlanFindsEachMatchOnce(backend: TestBackend) async throws {
        // Small limits reach every plan with a few rows: common trigrams (the whole phrase), dense
        // matches (the count reaches its cap and pages walk the log), and rare trigrams.
        try await EntitlementsHarness.run(on: backend, searchLimits: .init(rareTrigram: 3, countCap: 8, ownRowsScan: 0))
        { harness in
            try await harness.catalog()
            try await harness.transfer("ENT-1", to: "org-1", lines: [("P1", 100), ("P2", 100)])
            try await harness.transfer("ENT-X", to: "org-2", lines: [("P2", 100)])
            for _ in 0..<20 { _ = try await harness.activate(1, of: "P2", from: "ENT-1") }
            for _ in 0..<5 { _ = try await harness.activate(1, of: "P1", from: "ENT-1") }
            for _ in 0..<7 { _ = try await harness.activate(1, of: "P2", from: "ENT-X", organizationID: "org-2") }
            let unique = try await harness.activate(1, of: "P1", from: "ENT-1", serialNumber: "QX-7731")

            let dense = try await Self.pages("vision", harness)
            #expect(dense.ids.count == 20 && Set(dense.ids).count == 20)
            #expect(dense.totals == [8])  // the cap
            let common = try await Self.pages("nexus", harness)
            #expect(common.ids.count == 6 && Set(common.ids).count == 6)
            #expect(common.totals == [6])
            let rare = try await Self.pages("qx-773", harness)
            #expect(rare.ids == [unique.activationID])
            #expect(rare.totals == [1])
            #expect(try await Self.pages("qx-7739", harness).ids.isEmpty)
        }
    }

    @Test(arguments: TestBackend.available) func aSmallOrganizationSearchesItsOwnRowsWhenEveryTrigramIsCommon(
        backend: TestBackend
    ) async throws {
        try await EntitlementsHarness.run(
            on: backend, searchLimits: .init(rareTrigram: 3, countCap: 8, ownRowsScan: 100)
        ) { harness in
            try await harness.catalog()
            try await harness.transfer("ENT-1", to: "org-1", lines: [("P1", 100), ("P2", 100)])
            try await harness.transfer("ENT-X", to: "org-2", lines: [("P2", 100)])
            for _ in 0..<3 { _ = try await harness.activate(1, of: "P2", from: "ENT-1") }
            for _ in 0..<30 { _ = try await harness.activate(1, of: "P2", from: "ENT-X", organizationID: "org-2") }
            let found = try await Self.pages("vision", harness)
            #expect(found.ids.count == 3 && Set(found.ids).count == 3)
            #expect(found.totals == [3])
        }
    }
}
