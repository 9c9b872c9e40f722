import PortalAPI
import PortalRPC

extension PortalGatewayService {
    // MARK: Audit & event log

    public func listAuditEvents(
        request: Portal_Gateway_V1_ListAuditEventsRequest, context: ServerContext
    ) async throws -> Portal_Gateway_V1_ListAuditEventsResponse {
        let (caller, call) = try await authorize(context, .viewPortal)
        let page = try await call.run("audit") { metadata, options in
            try await backends.audit.listEvents(
                request.scoped(to: caller.organizationID), metadata: metadata, options: options)
        }
        return .init(answering: page)
    }

    public func exportAuditEventsCsv(
        request: Portal_Gateway_V1_ExportAuditEventsCsvRequest,
        responses: ResponseWriter<Portal_Gateway_V1_ExportAuditEventsCsvResponse>,
        context: ServerContext
    ) async throws {
        let (caller, call) = try await authorize(context, .exportCSV)
        try await call.stream("audit", to: responses) { metadata, options in
            try await backends.audit.exportEventsCsv(
                request.scoped(to: caller.organizationID), metadata: metadata, options: options)
        } chunk: { piece in
            .init(answering: piece)
        }
    }

    /// Most seconds between heartbeats through the gateway: the caller's session and role are checked
    /// again with every message, and at least this often.
    static let maxWatchHeartbeatSeconds: Int32 = 30

    public func watchAuditEvents(
        request: Portal_Gateway_V1_WatchAuditEventsRequest,
        responses: ResponseWriter<Portal_Gateway_V1_WatchAuditEventsResponse>,
        context: ServerContext
    ) async throws {
        let (caller, call) = try await authorize(context, .watchEvents)
        guard (0...Self.maxWatchHeartbeatSeconds).contains(request.heartbeatSeconds) else {
            throw RPCError.invalidArgument(
                field: "heartbeat_seconds", "must be between 0 (15 seconds) and \(Self.maxWatchHeartbeatSeconds)")
        }
        try await liveStreams.run {
            try await call.run("audit") { metadata, _ in
                let events = try await backends.audit.watchEvents(
                    request.scoped(to: caller.organizationID), metadata: metadata, options: call.streamOptions)
                var checked = ContinuousClock.now
                for try await message in events {
                    // A session that ended or a member no longer Admin ends the stream.
                    if ContinuousClock.now - checked >= .seconds(1) {
                        _ = try await authorize(context, .watchEvents)
                        checked = .now
                    }
                    try await responses.write(.init(answering: message))
                }
            }
        }
    }
}
