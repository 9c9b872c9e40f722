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
}
