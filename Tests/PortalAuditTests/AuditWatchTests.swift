import Foundation
import PortalAPI
import PortalRPC
import PortalTestSupport
import Testing

@Suite("Audit event stream: live, in order, resumable")
struct AuditWatchTests {
    /// Reads a watch stream message by message.
    struct Watch {
        var messages: ResponseStream<Portal_Audit_V1_WatchEventsResponse>.AsyncIterator

        init(_ harness: AuditHarness, _ request: Portal_Audit_V1_WatchEventsRequest) async throws {
            messages = try await harness.client.watchEvents(request).makeAsyncIterator()
        }

        /// The next event, skipping heartbeats; nil when the stream ended.
        mutating func nextEvent() async throws -> Portal_Audit_V1_WatchEventsResponse? {
            while let message = try await messages.next() {
                if !message.heartbeat { return message }
            }
            return nil
        }
    }

    static func watch(
        _ organizationID: String, cursor: String, types: [Portal_Audit_V1_EventType] = []
    )
        -> Portal_Audit_V1_WatchEventsRequest
    {
        .with {
            $0.organizationID = organizationID
            $0.cursor = cursor
            $0.eventTypes = types
            $0.heartbeatSeconds = 1
        }
    }

    @Test(arguments: TestBackend.available) func eventsArriveInOrderLiveAndResumeFromTheLastCursor(
        backend: TestBackend
    ) async throws {
        try await AuditHarness.run(on: backend) { harness in
            _ = try await harness.append(
                (1...3).map { AuditHarness.event("org-1", message: "past \($0)", id: "e\($0)") })
            _ = try await harness.append([AuditHarness.event("org-2", message: "other organization", id: "x1")])
            var watch = try await Watch(harness, Self.watch("org-1", cursor: "0"))
            var cursor = ""
            for index in 1...3 {
                let message = try #require(try await watch.nextEvent())
                #expect(message.event?.eventID == "e\(index)")
                #expect(message.event?.sequence == Int64(index))
                cursor = message.cursor
            }
            // Live: recorded after the stream caught up.
            _ = try await harness.append(
                (4...5).map { AuditHarness.event("org-1", message: "live \($0)", id: "e\($0)") })
            for index in 4...5 {
                let message = try #require(try await watch.nextEvent())
                #expect(message.event?.eventID == "e\(index)")
                cursor = message.cursor
            }
            // Disconnected: what is recorded meanwhile arrives on resuming, once.
            watch = try await Watch(harness, Self.watch("org-1", cursor: cursor))
            _ = try await harness.append(
                (6...7).map { AuditHarness.event("org-1", message: "later \($0)", id: "e\($0)") })
            #expect(try await watch.nextEvent()?.event?.eventID == "e6")
            #expect(try await watch.nextEvent()?.event?.eventID == "e7")
        }
    }

    @Test(arguments: TestBackend.available) func nowSkipsThePastAndATypeFilterStillMovesTheCursor(
        backend: TestBackend
    ) async throws {
        try await AuditHarness.run(on: backend) { harness in
            _ = try await harness.append([AuditHarness.event("org-1", message: "before the stream", id: "old")])
            let stream = try await harness.client.watchEvents(Self.watch("org-1", cursor: "", types: [.activations]))
            var messages = stream.makeAsyncIterator()
            let first = try #require(try await messages.next())  // a heartbeat: nothing matched yet
            #expect(first.heartbeat)
            #expect(first.cursor == "1")
            _ = try await harness.append([
                AuditHarness.event("org-1", message: "a member", type: .members, id: "m1"),
                AuditHarness.event("org-1", message: "an activation", type: .activations, id: "a1"),
                AuditHarness.event("org-1", message: "another member", type: .members, id: "m2"),
            ])
            var received: [Portal_Audit_V1_WatchEventsResponse] = []
            while received.last?.cursor != "4" {
                received.append(try #require(try await messages.next()))
            }
            #expect(received.compactMap { $0.heartbeat ? nil : $0.event?.eventID } == ["a1"])
            #expect(received.first { !$0.heartbeat }?.cursor == "3")
            #expect(received.last?.heartbeat == true)
        }
    }

    @Test func invalidRequestsAreRefusedNamingTheField() async throws {
        try await AuditHarness.run { harness in
            _ = try await harness.append([AuditHarness.event("org-1", message: "one", id: "e1")])
            var slowHeartbeat = Self.watch("org-1", cursor: "")
            slowHeartbeat.heartbeatSeconds = 301
            let cases: [(Portal_Audit_V1_WatchEventsRequest, String)] = [
                (Self.watch("", cursor: ""), "organization_id"),
                (Self.watch("org-1", cursor: "abc"), "cursor"),
                (Self.watch("org-1", cursor: "-1"), "cursor"),
                (Self.watch("org-1", cursor: "2"), "cursor"),
                (Self.watch("org-1", cursor: "", types: [.unspecified]), "event_types"),
                (slowHeartbeat, "heartbeat_seconds"),
            ]
            for (request, field) in cases {
                let error = try await #require(throws: RPCError.self) {
                    var messages = try await harness.client.watchEvents(request).makeAsyncIterator()
                    _ = try await messages.next()
                }
                #expect(error.code == .invalidArgument)
                #expect(error.message.hasPrefix(field), "\(error.message)")
            }
        }
    }

    @Test func shuttingDownEndsStreamsWithUnavailable() async throws {
        try await AuditHarness.run { harness in
            var messages = try await harness.client.watchEvents(Self.watch("org-1", cursor: "0")).makeAsyncIterator()
            #expect(try await messages.next()?.heartbeat == true)
            harness.component.liveStreams.close()
            let error = try await #require(throws: RPCError.self) {
                while try await messages.next() != nil {}
            }
            #expect(error.code == .unavailable)
            #expect(error.message.contains("last cursor"))
        }
    }
}
