import Foundation
import PortalAPI
import PortalRPC
import PortalTestSupport
import SQLKit
import Testing

@Suite("Audit log: append, query, export and tamper evidence")
struct AuditServiceTests {
    @Test(arguments: TestBackend.available) func aRedeliveredEventIsStoredOnce(backend: TestBackend) async throws {
        try await AuditHarness.run(on: backend) { harness in
            let first = AuditHarness.event("org-1", message: "Invited a@example.com as Viewer", id: "event-1")
            #expect(try await harness.append([first]) == (1, 0))
            #expect(
                try await harness.append([first, AuditHarness.event("org-1", message: "second", id: "event-2")]) == (
                    1, 1
                ))
            let list = try await harness.client.listEvents(.with { $0.organizationID = "org-1" })
            #expect(list.totalSize == 2)
        }
    }

    @Test(arguments: TestBackend.available) func textWithTabsNewlinesAndBackslashesIsStoredExactly(
        backend: TestBackend
    ) async throws {
        try await AuditHarness.run(on: backend) { harness in
            let messages = [
                "tab\there", "line\nbreak", "carriage\rreturn", "back\\slash \\N \\x00", "ünïcödé ✓ 名前", "\\.",
            ]
            let events = messages.enumerated().map { index, message in
                AuditHarness.event("org-1", message: message, user: "Ada\tLovelace\\", id: "event-\(index)")
            }
            #expect(try await harness.append(events) == (Int32(messages.count), 0))
            let listed = try await harness.client.listEvents(
                .with {
                    $0.organizationID = "org-1"
                    $0.orderBy = "time asc"
                })
            #expect(Set(listed.events.map(\.message)) == Set(messages))
            #expect(listed.events.allSatisfy { $0.user == "Ada\tLovelace\\" })
            let verdict = try await harness.client.verifyChain(.with { $0.organizationID = "org-1" })
            #expect(verdict.ok, "\(verdict.reason)")
            #expect(verdict.eventsChecked == Int64(messages.count))
        }
    }

    @Test(arguments: TestBackend.available) func invalidEventsAreRefusedNamingTheFieldAndNothingIsStored(
        backend: TestBackend
    ) async throws {
        try await AuditHarness.run(on: backend) { harness in
            var untyped = AuditHarness.event("org-1", message: "x")
            untyped.eventType = .unspecified
            var timeless = AuditHarness.event("org-1", message: "x")
            timeless.time = nil
            let cases: [(Portal_Audit_V1_NewEvent, String)] = [
                (untyped, "events[1].event_type"), (timeless, "events[1].time"),
                (AuditHarness.event("", message: "x"), "events[1].organization_id"),
            ]
            for (bad, field) in cases {
                let error = try await #require(throws: RPCError.self) {
                    try await harness.append([AuditHarness.event("org-1", message: "fine"), bad])
                }
                #expect(error.code == .invalidArgument)
                #expect(error.message.hasPrefix(field))
            }
            #expect(try await harness.client.listEvents(.with { $0.organizationID = "org-1" }).totalSize == 0)
        }
    }

    @Test(arguments: TestBackend.available) func listsFilterSearchSortAndPageWithoutLosingRows(
        backend: TestBackend
    ) async throws {
        try await AuditHarness.run(on: backend) { harness in
            var events: [Portal_Audit_V1_NewEvent] = []
            for index in 0..<30 {
                let type: Portal_Audit_V1_EventType = index % 3 == 0 ? .activations : .members
                events.append(
                    AuditHarness.event(
                        "org-1", message: "Change number \(index) by license team", type: type,
                        user: index % 2 == 0 ? "Ada" : "Bob", at: 1_772_719_629 + Int64(index)))
            }
            events.append(AuditHarness.event("org-2", message: "Another tenant's change", at: 1_772_719_700))
            _ = try await harness.append(events)

            var seen: [String] = []
            var token = ""
            repeat {
                let page = try await harness.client.listEvents(
                    .with {
                        $0.organizationID = "org-1"
                        $0.pageSize = 7
                        $0.pageToken = token
                        $0.orderBy = "time asc"
                    })
                #expect(page.totalSize == 30)
                seen += page.events.map(\.message)
                token = page.nextPageToken
            } while !token.isEmpty
            #expect(seen == (0..<30).map { "Change number \($0) by license team" })

            let activations = try await harness.client.listEvents(
                .with {
                    $0.organizationID = "org-1"
                    $0.eventTypes = [.activations]
                })
            #expect(activations.totalSize == 10)
            let byBob = try await harness.client.listEvents(
                .with {
                    $0.organizationID = "org-1"
                    $0.user = "Bob"
                })
            #expect(byBob.totalSize == 15)
            let search = try await harness.client.listEvents(
                .with {
                    $0.organizationID = "org-1"
                    $0.searchText = "number 12"
                })
            #expect(search.events.map(\.message).contains("Change number 12 by license team"))
            let window = try await harness.client.listEvents(
                .with {
                    $0.organizationID = "org-1"
                    $0.timeStart = Google_Protobuf_Timestamp(seconds: 1_772_719_629 + 10)
                    $0.timeEnd = Google_Protobuf_Timestamp(seconds: 1_772_719_629 + 20)
                })
            #expect(window.totalSize == 10)
            #expect(window.events.first?.message == "Change number 19 by license team")  // newest first by default
            let otherTenant = try await harness.client.listEvents(
                .with {
                    $0.organizationID = "org-1"
                    $0.searchText = "tenant"
                })
            #expect(otherTenant.totalSize == 0)
        }
    }

    @Test(arguments: TestBackend.available) func exportsStreamEveryMatchingRowAsCSV(backend: TestBackend) async throws {
        try await AuditHarness.run(on: backend) { harness in
            let events = (0..<3_000).map { index in
                AuditHarness.event(
                    "org-1", message: index == 0 ? "=HYPERLINK(\"x\")" : "Event \(index)", user: "Ada, L.",
                    at: 1_772_719_629 + Int64(index))
            }
            for start in stride(from: 0, to: events.count, by: 1000) {
                _ = try await harness.append(Array(events[start..<(start + 1000)]))
            }
            var csv: [UInt8] = []
            var chunks = 0
            for try await chunk in try await harness.client.exportEventsCsv(
                .with {
                    $0.organizationID = "org-1"
                    $0.orderBy = "time asc"
                })
            {
                csv += chunk.chunk
                chunks += 1
            }
            let lines = String(decoding: csv, as: UTF8.self).components(separatedBy: "\r\n").dropLast()
            #expect(lines.count == 3_001)
            #expect(chunks > 1)
            #expect(lines[0] == "Date & Time,Message,Type,User")
            #expect(lines[1] == "\"05 Mar 2026, 14:07:09\",\"'=HYPERLINK(\"\"x\"\")\",Members,\"Ada, L.\"")
        }
    }

    @Test(arguments: TestBackend.available) func concurrentAppendersKeepTheChainUnbroken(
        backend: TestBackend
    ) async throws {
        try await AuditHarness.run(on: backend) { harness in
            // Eight appenders at once, each with its own batches of the same two organizations' events,
            // and some of the same events twice (a relay redelivering).
            try await withThrowingTaskGroup(of: Void.self) { group in
                for appender in 0..<8 {
                    group.addTask {
                        for batch in 0..<5 {
                            let events = (0..<10).flatMap { index in
                                ["org-a", "org-b"].map {
                                    AuditHarness.event(
                                        $0, message: "Event \(appender)-\(batch)-\(index)",
                                        id: "\($0)-\(appender)-\(batch)-\(index)")
                                }
                            }
                            _ = try await harness.append(events)
                            _ = try await harness.append(Array(events.prefix(3)))
                        }
                    }
                }
                try await group.waitForAll()
            }
            for organization in ["org-a", "org-b"] {
                let verdict = try await harness.client.verifyChain(.with { $0.organizationID = organization })
                #expect(verdict.ok, "\(organization): \(verdict.reason)")
                #expect(verdict.eventsChecked == 400)
                #expect(
                    try await harness.client.listEvents(.with { $0.organizationID = organization }).totalSize == 400)
            }
        }
    }

    @Test(arguments: TestBackend.available) func theChainVerifiesAndAnEditedRowIsDetected(
        backend: TestBackend
    ) async throws {
        try await AuditHarness.run(on: backend) { harness in
            _ = try await harness.append(
                (0..<20).map { AuditHarness.event("org-1", message: "Event \($0)", id: "event-\($0)") })
            let healthy = try await harness.client.verifyChain(.with { $0.organizationID = "org-1" })
            #expect(healthy.ok)
            #expect(healthy.eventsChecked == 20)

            // Someone with access to the database file rewrites history.
            try await harness.component.database.transaction { database in
                try await database.raw(
                    backend == .postgres ? "DROP TRIGGER events_no_change ON events" : "DROP TRIGGER events_no_update"
                ).run()
                try await database.raw("UPDATE events SET message = 'Nothing happened' WHERE event_id = 'event-7'")
                    .run()
            }
            let broken = try await harness.client.verifyChain(.with { $0.organizationID = "org-1" })
            #expect(!broken.ok)
            #expect(broken.firstBrokenEventID == "event-7")
            #expect(broken.eventsChecked == 7)
        }
    }

    @Test(arguments: TestBackend.available) func storedEventsCannotBeChangedThroughTheDatabase(
        backend: TestBackend
    ) async throws {
        try await AuditHarness.run(on: backend) { harness in
            _ = try await harness.append([AuditHarness.event("org-1", message: "Kept", id: "kept")])
            await #expect(throws: (any Error).self) {
                try await harness.component.database.transaction { database in
                    try await database.raw("DELETE FROM events WHERE event_id = 'kept'").run()
                }
            }
            #expect(try await harness.client.listEvents(.with { $0.organizationID = "org-1" }).totalSize == 1)
        }
    }

    @Test func postgresSessionsScanLargeTablesFromTheirFirstPage() async throws {
        guard TestBackend.available.contains(.postgres) else { return }
        try await AuditHarness.run(on: .postgres) { harness in
            // A capped search count then reads the same rows every time (see PostgresEngine.sessionSettings).
            let setting = try await harness.component.database.read { database in
                try await database.raw("SHOW synchronize_seqscans").first()?.decode(
                    column: "synchronize_seqscans", as: String.self)
            }
            #expect(setting == "off")
        }
    }
}
