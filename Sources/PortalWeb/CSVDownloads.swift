import PortalAPI
import PortalHTTP2
import PortalProtoJSON
import PortalRPC

/// CSV exports as browser downloads: `GET /exports/activations.csv?…` and `/exports/audit-events.csv?…`,
/// authenticated by the session cookie, with the list's filters as query parameters (JSON field
/// names), streamed chunk by chunk from the export's server-streaming method.
struct CSVDownloads: Sendable {
    /// One download: the method streaming it and how to take the CSV bytes out of its responses.
    struct Export: Sendable {
        let methodPath: String
        let fileName: String
        let chunk: @Sendable ([UInt8]) throws -> [UInt8]
    }

    /// The downloads by path.
    static let exports: [String: Export] = [
        "/exports/activations.csv": Export(
            methodPath: "/portal.gateway.v1.PortalService/ExportActivationsCsv", fileName: "activations.csv",
            chunk: { try Portal_Gateway_V1_ExportActivationsCsvResponse(rpcBytes: $0).chunk }),
        "/exports/audit-events.csv": Export(
            methodPath: "/portal.gateway.v1.PortalService/ExportAuditEventsCsv", fileName: "audit-events.csv",
            chunk: { try Portal_Gateway_V1_ExportAuditEventsCsvResponse(rpcBytes: $0).chunk }),
    ]

    let runner: WebCallRunner
    let codec: ProtoJSONCodec
    let sessions: SessionCookies
    let connect: ConnectEndpoint

    /// Serves the download at `request.path`; false when no download lives there.
    func serve(_ request: WebRequest, responder: some WebResponder) async -> Bool {
        guard let export = Self.exports[request.path] else { return false }
        let requestID = request.header("x-request-id").flatMap(RequestID.accepting) ?? RequestIDs.next()
        guard let route = runner.routes[export.methodPath], let method = codec.method(path: export.methodPath) else {
            await connect.respond(
                error: RPCError(.unimplemented, "no export at \(request.path)"), requestID: requestID,
                responder: responder)
            return true
        }
        let input: [UInt8]
        do {
            input = try codec.binary(fromQuery: request.query, messageType: method.inputType)
        } catch {
            await connect.respond(
                error: RPCError(.invalidArgument, "\(error)"), requestID: requestID, responder: responder)
            return true
        }
        let context = ServerContext(
            method: route.method,
            requestMetadata: WebCallRunner.metadata(of: request, sessionToken: sessions.token(in: request)),
            deadline: nil, peer: request.peer, requestID: requestID, transport: request.transport)
        let headers: [(String, String)] = [
            ("content-type", "text/csv; charset=utf-8"),
            ("content-disposition", "attachment; filename=\"\(export.fileName)\""),
            ("cache-control", "no-store"), ("x-request-id", requestID),
        ]
        let stream = DeferredStream(responder: responder) { headers }
        let error = await runner.run(route, request: input, context: context) { message in
            try await stream.write(try export.chunk(message))
        }
        if stream.isOpen {
            // Headers are gone: a failure can only break the download off, so it is not mistaken for a whole file.
            if error == nil { await responder.finishStream() } else { await responder.abortStream() }
        } else if let error {
            await connect.respond(error: error, requestID: requestID, responder: responder)
        } else {
            try? await stream.open()
            await responder.finishStream()
        }
        return true
    }
}
