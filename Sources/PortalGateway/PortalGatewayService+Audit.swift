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
                .with {
                    $0.organizationID = caller.organizationID
                    $0.pageSize = request.pageSize
                    $0.pageToken = request.pageToken
                    $0.orderBy = request.orderBy
                    $0.timeStart = request.timeStart
                    $0.timeEnd = request.timeEnd
                    $0.eventTypes = request.eventTypes
                    $0.actorMemberID = request.actorMemberID
                    $0.user = request.user
                    $0.searchText = request.searchText
                }, metadata: metadata, options: options)
        }
        return .with {
            $0.events = page.events
            $0.nextPageToken = page.nextPageToken
            $0.totalSize = page.totalSize
        }
    }

    public func exportAuditEventsCsv(
        request: Portal_Gateway_V1_ExportAuditEventsCsvRequest,
        responses: ResponseWriter<Portal_Gateway_V1_ExportAuditEventsCsvResponse>,
        context: ServerContext
    ) async throws {
        let (caller, call) = try await authorize(context, .exportCSV)
        try await call.stream("audit", to: responses) { metadata, options in
            try await backends.audit.exportEventsCsv(
                .with {
                    $0.organizationID = caller.organizationID
                    $0.orderBy = request.orderBy
                    $0.timeStart = request.timeStart
                    $0.timeEnd = request.timeEnd
                    $0.eventTypes = request.eventTypes
                    $0.actorMemberID = request.actorMemberID
                    $0.user = request.user
                    $0.searchText = request.searchText
                    $0.timeZone = request.timeZone
                }, metadata: metadata, options: options)
        } chunk: { piece in
            .with { $0.chunk = piece.chunk }
        }
    }
}
