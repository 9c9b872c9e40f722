import PortalAPI
import PortalRPC

extension AuditServiceHandler {
    /// Events read per step of a stream.
    static let watchStep = 200
    /// How often a waiting stream looks for events recorded by other instances.
    static let watchPoll: Duration = .seconds(1)
    /// Seconds between heartbeats when the request names none.
    static let defaultHeartbeatSeconds: Int32 = 15

    public func watchEvents(
        request: Portal_Audit_V1_WatchEventsRequest, responses: ResponseWriter<Portal_Audit_V1_WatchEventsResponse>,
        context: ServerContext
    ) async throws {
        let organizationID = try Self.required(request.organizationID, field: "organization_id")
        let types = Set(try Self.storedTypes(request.eventTypes))
        guard (0...300).contains(request.heartbeatSeconds) else {
            throw RPCError.invalidArgument(field: "heartbeat_seconds", "must be between 0 (15 seconds) and 300")
        }
        let requestedCursor: Int64?
        if request.cursor.isEmpty {
            requestedCursor = nil
        } else {
            guard let cursor = Int64(request.cursor), cursor >= 0 else {
                throw RPCError.invalidArgument(field: "cursor", "is not a cursor this stream sent")
            }
            requestedCursor = cursor
        }
        let heartbeat = Duration.seconds(
            request.heartbeatSeconds == 0 ? Self.defaultHeartbeatSeconds : request.heartbeatSeconds)
        let (store, feed) = (store, feed)
        try await liveStreams.run {
            let subscription = feed.subscribe(to: organizationID)
            defer { feed.unsubscribe(subscription) }
            let head = try await store.lastSequence(organizationID: organizationID)
            var cursor = requestedCursor ?? head
            guard cursor <= head else {
                throw RPCError.invalidArgument(
                    field: "cursor", "is past the organization's last event; it was not sent by this stream")
            }
            var lastSent = ContinuousClock.now
            while true {
                try context.checkLive()
                feed.markSeen(subscription)
                let events = try await store.events(
                    organizationID: organizationID, after: cursor, limit: Self.watchStep)
                for event in events {
                    cursor = event.organizationSequence
                    guard types.isEmpty || types.contains(event.eventType) else { continue }
                    try await responses.write(
                        .with {
                            $0.event = event.api
                            $0.cursor = String(cursor)
                        })
                    lastSent = .now
                }
                if events.count == Self.watchStep { continue }
                let untilHeartbeat = heartbeat - (ContinuousClock.now - lastSent)
                if untilHeartbeat <= .zero {
                    try await responses.write(
                        .with {
                            $0.heartbeat = true
                            $0.cursor = String(cursor)
                        })
                    lastSent = .now
                    continue
                }
                await feed.wait(subscription, timeout: min(untilHeartbeat, Self.watchPoll))
            }
        }
    }
}
